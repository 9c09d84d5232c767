# The staging environment: the whole fleet under USHER_ENV=staging (see terraform/README.md).

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
  #     -backend-config="key=usher/staging.tfstate" -backend-config="region=<region>"
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

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks (with a NAT gateway or VPC endpoints)."
  type        = list(string)
}

locals {
  vpc_id          = var.vpc_id
  public_subnets  = var.public_subnet_ids
  task_subnets    = var.private_subnet_ids
  public_task_ips = false
}

module "usher" {
  source = "../../modules/fleet"

  env                 = "staging"
  image               = var.image
  vpc_id              = local.vpc_id
  public_subnet_ids   = local.public_subnets
  task_subnet_ids     = local.task_subnets
  assign_public_ip    = local.public_task_ips
  certificate_arn     = var.certificate_arn
  alarm_emails        = var.alarm_emails
  deletion_protection = false

  # The global rate limit, as in prod: a WAF web ACL on the ALB blocks a source IP past
  # 6000 requests in 5 minutes with a 429 (README.md, "Limits are per instance").
  waf_rate_limit = 6000

  # The downstream pools are spiky and idle most of the time: usher-lambda costs nothing
  # while their queues are empty.
  pools = {
    booking       = { min_tasks = 1, max_tasks = 4 }
    tickets       = { min_tasks = 1, max_tasks = 2 }
    notifications = { runtime = "lambda", lambda_max_concurrency = 5 }
    analytics     = { runtime = "lambda", lambda_max_concurrency = 5 }
  }
  lambda_package = var.lambda_package
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
