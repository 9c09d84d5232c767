variable "env" {
  description = "The USHER_ENV prefix."
  type        = string
}

variable "rate_limit" {
  description = "Requests per source IP per 5 minutes past which the web ACL answers 429 rate_limited. AWS accepts 10 to 2,000,000,000."
  type        = number
  validation {
    condition     = var.rate_limit >= 10 && var.rate_limit <= 2000000000 && floor(var.rate_limit) == var.rate_limit
    error_message = "rate_limit must be a whole number of requests per 5 minutes from 10 to 2000000000 (AWS WAF's bounds)."
  }
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the log of blocked requests."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
