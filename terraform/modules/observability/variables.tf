variable "env" {
  description = "The USHER_ENV prefix."
  type        = string
}

variable "queue_names" {
  description = "messaging.queue_names: logical queue => name."
  type        = map(string)
}

variable "dlq_names" {
  description = "messaging.dlq_names: logical queue => its DLQ's name."
  type        = map(string)
}

variable "alb_arn_suffix" {
  description = "service.alb_arn_suffix."
  type        = string
}

variable "cluster_name" {
  description = "service.cluster_name."
  type        = string
}

variable "ecs_services" {
  description = "service.ecs_services."
  type        = list(string)
}

variable "pool_log_groups" {
  description = "service.pool_log_groups: pool => log group, where the relay logs the outbox backlog."
  type        = map(string)
  default     = {}
}

variable "kms_key_id" {
  description = "KMS key of the alarm topic."
  type        = string
  default     = "alias/aws/sns"
}

variable "alarm_emails" {
  description = "Who gets the alarms by email (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
