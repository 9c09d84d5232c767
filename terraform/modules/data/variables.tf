variable "env" {
  description = "The USHER_ENV prefix: every table is <env>-<table>."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.env))
    error_message = "env must be 1 to 40 letters, digits, '-' or '_' (USHER_ENV's rule)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the tables (turn on for prod; off lets a demo be destroyed)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
