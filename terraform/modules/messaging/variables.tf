variable "env" {
  description = "The USHER_ENV prefix: every name starts with it (<env>-booking-commands, <env>-events)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.env))
    error_message = "env must be 1 to 40 letters, digits, '-' or '_' (USHER_ENV's rule)."
  }
}

variable "max_receives" {
  description = "USHER_MAX_RECEIVES of the workers. The queues' redrive limit is one above it, as `usher setup` makes it: the worker dead-letters on its last allowed receive, the redrive is only the safety net."
  type        = number
  default     = 5
}

variable "sns_kms_key_id" {
  description = "KMS key for the topic's server-side encryption. The AWS-managed SNS key by default."
  type        = string
  default     = "alias/aws/sns"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "redrive_allow_policy" {
  description = "Restrict each DLQ to its own source queue (RedriveAllowPolicy). Off only for endpoints that lack the attribute (moto server answers InvalidAttributeName, and the provider then waits forever)."
  type        = bool
  default     = true
}
