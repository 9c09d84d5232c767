output "queue_names" {
  description = "Each logical queue (booking-commands, …) to its name."
  value       = { for k, q in aws_sqs_queue.source : k => q.name }
}

output "queue_arns" {
  description = "Each logical queue to its ARN."
  value       = { for k, q in aws_sqs_queue.source : k => q.arn }
}

output "queue_urls" {
  description = "Each logical queue to its URL."
  value       = { for k, q in aws_sqs_queue.source : k => q.id }
}

output "dlq_names" {
  description = "Each logical queue to its DLQ's name."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.name }
}

output "dlq_arns" {
  description = "Each logical queue to its DLQ's ARN."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.arn }
}

output "topic_arn" {
  description = "The events topic."
  value       = aws_sns_topic.events.arn
}

output "topic_name" {
  description = "The events topic's name."
  value       = aws_sns_topic.events.name
}
