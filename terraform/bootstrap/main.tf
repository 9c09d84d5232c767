# One-time set-up of an AWS account for the deploy workflow (.github/workflows/deploy.yml):
#   - the S3 bucket that holds every environment's terraform state (versioned, encrypted,
#     private, TLS only); locking is an S3 lock file (`use_lockfile`, terraform >= 1.11),
#     so no DynamoDB lock table;
#   - the ECR repository `usher` (immutable tags: the workflow tags with the commit SHA);
#   - GitHub's OIDC provider and the role the workflow assumes, trusted only for this
#     repository's tags, main branch and deployment environments: no long-lived keys.
# Its outputs are the three repository variables the workflow reads (README.md, "Deploy
# to AWS"). Apply it once with your own credentials; its own state is local
# (terraform.tfstate here): keep it, or move it into the bucket afterwards (README.md).

terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

variable "region" {
  description = "The AWS region of the state bucket, the registry and the fleet."
  type        = string
  default     = "us-east-1"
}

variable "state_bucket_name" {
  description = "Name of the state bucket (globally unique), e.g. usher-tfstate-<account id>."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository (your fork) whose workflow may deploy."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's token.actions.githubusercontent.com OIDC provider (false if the account has one already)."
  type        = bool
  default     = true
}

variable "ecr_repository_name" {
  description = "The image repository."
  type        = string
  default     = "usher"
}

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# --- state bucket -----------------------------------------------------------------------

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:Access logs need a second bucket (with the same checks); CloudTrail records who reads and writes the state.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles the storage and needs a second bucket and role; versioning already keeps every state ever written.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the state bucket.
  bucket = var.state_bucket_name
  tags   = { app = "usher", purpose = "terraform-state" }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "state_tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.state.arn,
      "${aws_s3_bucket.state.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_tls_only.json
}

# --- image registry ---------------------------------------------------------------------

resource "aws_ecr_repository" "usher" {
  name                 = var.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
  }
  tags = { app = "usher" }
}

resource "aws_ecr_lifecycle_policy" "usher" {
  repository = aws_ecr_repository.usher.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest 100 images (older releases cannot be rolled back to)"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 100 }
      action       = { type = "expire" }
    }]
  })
}

# --- the deploy workflow's role (GitHub OIDC) -------------------------------------------

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  tags           = { app = "usher" }
}

locals {
  oidc_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/token.actions.githubusercontent.com"
  # Which workflow runs may assume the role: release tags and dispatches from main (build,
  # plan) and jobs bound to a deployment environment (apply; its protection rules gate it).
  github_subjects = [
    "repo:${var.github_repository}:ref:refs/tags/v*",
    "repo:${var.github_repository}:ref:refs/heads/main",
    "repo:${var.github_repository}:environment:*",
  ]
  account_id = data.aws_caller_identity.current.account_id
}

data "aws_iam_policy_document" "deploy_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "token.actions.githubusercontent.com:sub"
      values   = local.github_subjects
    }
  }
}

resource "aws_iam_role" "deploy" {
  name                 = "usher-deploy"
  description          = "Assumed by ${var.github_repository}'s deploy workflow (GitHub OIDC)"
  assume_role_policy   = data.aws_iam_policy_document.deploy_assume.json
  max_session_duration = 3600
  tags                 = { app = "usher" }
}

# Everything terraform manages for the fleet except IAM (PowerUserAccess has no IAM) ...
resource "aws_iam_role_policy_attachment" "deploy_power_user" {
  role       = aws_iam_role.deploy.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/PowerUserAccess"
}

# ... and IAM only for the fleet's own roles (<env>-usher-*), passed only to the services
# that use them.
data "aws_iam_policy_document" "deploy_iam" {
  statement {
    sid = "FleetRoles"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
      "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags",
      "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
      "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:role/*-usher-*"]
  }
  statement {
    sid       = "PassFleetRoles"
    actions   = ["iam:PassRole"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:role/*-usher-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com", "codedeploy.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "deploy_iam" {
  name   = "fleet-iam"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy_iam.json
}

output "AWS_DEPLOY_ROLE_ARN" {
  description = "Repository variable AWS_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.deploy.arn
}

output "AWS_REGION" {
  description = "Repository variable AWS_REGION."
  value       = var.region
}

output "TF_STATE_BUCKET" {
  description = "Repository variable TF_STATE_BUCKET."
  value       = aws_s3_bucket.state.id
}

output "ecr_repository_url" {
  description = "Where the workflow pushes the image (<account>.dkr.ecr.<region>.amazonaws.com/usher)."
  value       = aws_ecr_repository.usher.repository_url
}
