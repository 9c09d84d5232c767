variable "env" {
  description = "The USHER_ENV prefix of every resource."
  type        = string
}

variable "image" {
  description = "The Usher image URI."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancer and tasks."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "task_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Public IPs on tasks (public subnets without NAT)."
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

variable "deletion_protection" {
  description = "Protect tables and the load balancer from deletion."
  type        = bool
  default     = false
}

variable "max_receives" {
  description = "USHER_MAX_RECEIVES."
  type        = number
  default     = 5
}

variable "ingress" {
  description = "See modules/service."
  type = object({
    cpu           = optional(number, 256)
    memory        = optional(number, 512)
    desired_count = optional(number, 1)
  })
  default = {}
}

variable "pools" {
  description = "See modules/service: runtime (ecs or lambda) and scaling per pool."
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
}

variable "ingress_deployment_config" {
  description = "CodeDeploy's traffic shift for ingress (see modules/service)."
  type        = string
  default     = "CodeDeployDefault.ECSAllAtOnce"
}

variable "termination_wait_minutes" {
  description = "The rollback window after an ingress deployment shifted traffic."
  type        = number
  default     = 10
}

variable "test_listener_cidrs" {
  description = "Who may reach the ALB's test listener (8443)."
  type        = list(string)
  default     = []
}

variable "waf_rate_limit" {
  description = "Requests per source IP per 5 minutes past which the ALB's WAF web ACL answers 429 (see modules/service); null: no web ACL."
  type        = number
  default     = null
}

variable "lambda_package" {
  description = "The usher-lambda zip, if a pool runs on Lambda."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "CloudWatch log retention."
  type        = number
  default     = 30
}

variable "alarm_emails" {
  description = "Alarm recipients."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Extra tags."
  type        = map(string)
  default     = {}
}
