output "table_names" {
  description = "Each table's suffix (requests, seats, …) to its name."
  value       = { for k, t in aws_dynamodb_table.table : k => t.name }
}

output "table_arns" {
  description = "Each table's suffix to its ARN."
  value       = { for k, t in aws_dynamodb_table.table : k => t.arn }
}

output "kms_key_arn" {
  description = "The customer-managed key of the tables (and of the JWT secret)."
  value       = aws_kms_key.tables.arn
}
