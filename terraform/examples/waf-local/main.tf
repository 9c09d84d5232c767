# modules/waf (the rate-limit web ACL of modules/service) on a local AWS endpoint (moto
# server), associated as modules/service does with a load balancer made beforehand (the
# provider waits a minute for a new ALB on moto; boto3 makes one at once).
# scripts/deploy-checks.sh applies it in CI and reads the web ACL back through the WAF
# API (rule, 429 response, body, association, log). moto stores web ACLs but does not
# filter traffic, so this checks the configuration AWS receives, not the blocking
# itself. By hand:
#
#   scripts/moto.sh &    # prints the endpoint
#   aws --endpoint-url http://127.0.0.1:PORT elbv2 create-load-balancer --name demo \
#     --subnets <two subnet ids of `aws ec2 describe-subnets`>
#   terraform -chdir=terraform/examples/waf-local init
#   terraform -chdir=terraform/examples/waf-local apply -var endpoint=http://127.0.0.1:PORT \
#     -var alb_arn=<its LoadBalancerArn>

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

variable "endpoint" {
  description = "The local AWS endpoint (AWS_ENDPOINT_URL of moto)."
  type        = string
  default     = "http://127.0.0.1:5000"
}

variable "env" {
  description = "The USHER_ENV prefix."
  type        = string
  default     = "local"
}

variable "alb_arn" {
  description = "The load balancer to put the web ACL on."
  type        = string
}

variable "rate_limit" {
  description = "Requests per source IP per 5 minutes (as envs/staging and envs/prod)."
  type        = number
  default     = 6000
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true

  endpoints {
    cloudwatchlogs = var.endpoint
    sts            = var.endpoint
    wafv2          = var.endpoint
  }
}

module "waf" {
  source     = "../../modules/waf"
  env        = var.env
  rate_limit = var.rate_limit
}

resource "aws_wafv2_web_acl_association" "ingress" {
  resource_arn = var.alb_arn
  web_acl_arn  = module.waf.web_acl_arn
}

output "web_acl_arn" {
  description = "The web ACL."
  value       = module.waf.web_acl_arn
}

output "log_group_name" {
  description = "The log group of blocked requests."
  value       = module.waf.log_group_name
}
