variable "env" {
  description = "The USHER_ENV prefix."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.env))
    error_message = "env must be 1 to 40 letters, digits, '-' or '_' (USHER_ENV's rule)."
  }
}

variable "image" {
  description = "The Usher container image (the repo's Dockerfile), e.g. <account>.dkr.ecr.<region>.amazonaws.com/usher:<tag>."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the load balancer and the tasks."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing load balancer (two or more AZs)."
  type        = list(string)
}

variable "task_subnet_ids" {
  description = "Subnets of the tasks. Private subnets need a NAT gateway or VPC endpoints (ECR, logs, SQS, SNS, DynamoDB, Secrets Manager) to reach AWS APIs."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP: needed in public subnets without NAT (the default VPC), so they can pull the image and call AWS APIs."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "alb_ingress_cidrs" {
  description = "Who may reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "test_listener_port" {
  description = "Port of the ALB's test listener (HTTPS): the replacement task set of a blue/green deployment answers there."
  type        = number
  default     = 8443
}

variable "test_listener_cidrs" {
  description = "Who may reach the test listener (none by default; add your office or CI runner range to try a release before it takes traffic)."
  type        = list(string)
  default     = []
}

variable "ingress_deployment_config" {
  description = "CodeDeploy's traffic shift for ingress: CodeDeployDefault.ECSAllAtOnce, ECSCanary10Percent5Minutes, ECSLinear10PercentEvery1Minutes, ..."
  type        = string
  default     = "CodeDeployDefault.ECSAllAtOnce"
}

variable "termination_wait_minutes" {
  description = "How long the original ingress task set stays up after traffic shifted: the window in which an alarm rolls the deployment back."
  type        = number
  default     = 10
}

variable "rollback_alarm_names" {
  description = "CloudWatch alarms that stop an ingress deployment and roll it back (observability.deploy_alarm_names)."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion (prod)."
  type        = bool
  default     = false
}

variable "max_receives" {
  description = "USHER_MAX_RECEIVES; must match the messaging module's (its redrive limit is one above)."
  type        = number
  default     = 5
}

variable "queue_arns" {
  description = "messaging.queue_arns: logical queue => ARN."
  type        = map(string)
}

variable "queue_names" {
  description = "messaging.queue_names: logical queue => name."
  type        = map(string)
}

variable "dlq_arns" {
  description = "messaging.dlq_arns: logical queue => its DLQ's ARN."
  type        = map(string)
}

variable "topic_arn" {
  description = "messaging.topic_arn."
  type        = string
}

variable "table_arns" {
  description = "data.table_arns: table suffix => ARN."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "data.kms_key_arn: the tables' key, also used for the JWT secret and Lambda environments."
  type        = string
}

variable "ingress" {
  description = "The ingress service: Fargate size and task count."
  type = object({
    cpu           = optional(number, 256)
    memory        = optional(number, 512)
    desired_count = optional(number, 1)
  })
  default = {}
}

variable "pools" {
  description = <<-EOT
    Each worker pool (booking, tickets, notifications, analytics): where it runs
    (runtime "ecs" or "lambda") and how it scales. ECS: min_tasks..max_tasks on backlog per
    task (target_backlog_per_task visible messages per running task, see README.md).
    Lambda: at most lambda_max_concurrency concurrent batches of lambda_batch_size.
  EOT
  type = map(object({
    runtime                 = optional(string, "ecs")
    cpu                     = optional(number, 256)
    memory                  = optional(number, 512)
    concurrency             = optional(number, 8)
    min_tasks               = optional(number, 1)
    max_tasks               = optional(number, 4)
    target_backlog_per_task = optional(number, 100)
    lambda_memory           = optional(number, 256)
    lambda_batch_size       = optional(number, 10)
    lambda_max_concurrency  = optional(number, 5)
  }))
  default = {
    booking       = {}
    tickets       = {}
    notifications = {}
    analytics     = {}
  }
  validation {
    condition     = alltrue([for k, p in var.pools : contains(["booking", "tickets", "notifications", "analytics"], k) && contains(["ecs", "lambda"], p.runtime) && p.min_tasks >= 1 && p.max_tasks >= p.min_tasks])
    error_message = "pools: keys are booking, tickets, notifications, analytics; runtime is ecs or lambda; 1 <= min_tasks <= max_tasks (backlog per task divides by the running tasks, so never scale to zero)."
  }
}

variable "lambda_package" {
  description = "Path of the usher-lambda zip (a `bootstrap` binary for provided.al2023, see README.md); needed only when a pool runs on Lambda."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "x86_64 or arm64, as the usher-lambda binary was built."
  type        = string
  default     = "x86_64"
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the logs."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "waf_rate_limit" {
  description = "The global rate limit: requests per source IP per 5 minutes, over every ingress task, past which an AWS WAF web ACL on the ALB answers 429 rate_limited (waf.tf: modules/waf and its association). null: no web ACL. AWS accepts 10 to 2,000,000,000."
  type        = number
  default     = null
  validation {
    condition     = var.waf_rate_limit == null ? true : (var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000 && floor(var.waf_rate_limit) == var.waf_rate_limit)
    error_message = "waf_rate_limit must be null (no web ACL) or a whole number of requests per 5 minutes from 10 to 2000000000 (AWS WAF's bounds)."
  }
}
