# Applies only the messaging and data modules against a local AWS endpoint (moto server,
# LocalStack): what `usher dev --no-setup` then runs on. scripts/deploy-checks.sh applies
# it in CI; by hand:
#
#   scripts/moto.sh &    # prints the endpoint
#   terraform -chdir=terraform/examples/local init
#   terraform -chdir=terraform/examples/local apply -var endpoint=http://127.0.0.1:PORT -var env=demo
#   USHER_BACKEND=aws USHER_ENV=demo AWS_ENDPOINT_URL=http://127.0.0.1:PORT usher dev --no-setup

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
  description = "The local AWS endpoint (AWS_ENDPOINT_URL of moto or LocalStack)."
  type        = string
  default     = "http://127.0.0.1:5000"
}

variable "env" {
  description = "The USHER_ENV prefix."
  type        = string
  default     = "local"
}

variable "max_receives" {
  description = "USHER_MAX_RECEIVES of the workers that will run on these queues."
  type        = number
  default     = 5
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
    dynamodb = var.endpoint
    iam      = var.endpoint
    kms      = var.endpoint
    sns      = var.endpoint
    sqs      = var.endpoint
    sts      = var.endpoint
  }
}

module "messaging" {
  source       = "../../modules/messaging"
  env          = var.env
  max_receives = var.max_receives
  # moto server has no RedriveAllowPolicy attribute; AWS has, and the envs keep it on.
  redrive_allow_policy = false
}

module "data" {
  source = "../../modules/data"
  env    = var.env
}

output "queues" {
  description = "The queues terraform made."
  value       = module.messaging.queue_names
}

output "tables" {
  description = "The tables terraform made."
  value       = module.data.table_names
}
