# The dev environment: the whole fleet under USHER_ENV=dev (see terraform/README.md).

terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
  # State in S3 (terraform/bootstrap makes the bucket), locked with an S3 lock file
  # (use_lockfile, terraform >= 1.11). The bucket, key and region come at init:
  #   terraform init -backend-config="bucket=<state bucket>" \
  #     -backend-config="key=usher/dev.tfstate" -backend-config="region=<region>"
  # (the deploy workflow does exactly that). Offline checks use -backend=false.
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}

variable "region" {
  description = "The AWS region."
  type        = string
  default     = "us-east-1"
}

variable "image" {
  description = "The Usher image URI (README.md: build and push it to ECR)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate (same region) of the HTTPS listener."
  type        = string
}

variable "alarm_emails" {
  description = "Who gets the alarms."
  type        = list(string)
  default     = []
}

variable "lambda_package" {
  description = "The usher-lambda zip, for pools that run on Lambda."
  type        = string
  default     = null
}

provider "aws" {
  region = var.region
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

locals {
  # The default VPC: public subnets, no NAT gateway (none to pay for); tasks get public
  # IPs to reach ECR and the AWS APIs, and only the load balancer may reach them.
  vpc_id          = data.aws_vpc.default.id
  public_subnets  = data.aws_subnets.default.ids
  task_subnets    = data.aws_subnets.default.ids
  public_task_ips = true
}

module "usher" {
  source = "../../modules/fleet"

  env                 = "dev"
  image               = var.image
  vpc_id              = local.vpc_id
  public_subnet_ids   = local.public_subnets
  task_subnet_ids     = local.task_subnets
  assign_public_ip    = local.public_task_ips
  certificate_arn     = var.certificate_arn
  alarm_emails        = var.alarm_emails
  lambda_package      = var.lambda_package
  deletion_protection = false

  # No WAF web ACL (waf_rate_limit unset): its fixed monthly fee buys little with one
  # ingress task, whose own USHER_RATE_LIMIT is then the global limit. Set
  # waf_rate_limit (e.g. 6000 per 5 minutes) to try the one staging and prod have.

  # Smallest footprint: one task per pool, up to two. Set a pool's runtime to "lambda"
  # (and lambda_package) to run it on usher-lambda instead.
  pools = {
    booking       = { max_tasks = 2 }
    tickets       = { max_tasks = 2 }
    notifications = { max_tasks = 2 }
    analytics     = { max_tasks = 2 }
  }
}

output "url" {
  description = "The API."
  value       = module.usher.url
}

output "alb_dns_name" {
  description = "Point the certificate's DNS name here."
  value       = module.usher.alb_dns_name
}

output "waf_web_acl_arn" {
  description = "The WAF web ACL (per-IP rate limit) on the load balancer, or null."
  value       = module.usher.waf_web_acl_arn
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = module.usher.dashboard_url
}

output "jwt_secret_arn" {
  description = "Put the JWT secret here before the first deploy."
  value       = module.usher.jwt_secret_arn
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = module.usher.cluster_name
}

output "ingress_task_definition_arn" {
  description = "The ingress revision the deploy workflow hands to CodeDeploy."
  value       = module.usher.ingress_task_definition_arn
}

output "worker_task_definition_arns" {
  description = "Pool on ECS => the revision its service rolls to."
  value       = module.usher.worker_task_definition_arns
}

output "codedeploy_app" {
  description = "The CodeDeploy application of ingress."
  value       = module.usher.codedeploy_app
}

output "codedeploy_deployment_group" {
  description = "The CodeDeploy deployment group of ingress."
  value       = module.usher.codedeploy_deployment_group
}

output "lambda_aliases" {
  description = "The pools on Lambda: pool => the alias `live` the queue invokes."
  value       = module.usher.lambda_aliases
}
