output "alarm_topic_arn" {
  description = "Every alarm notifies this topic."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = "https://${data.aws_region.current.name}.console.aws.amazon.com/cloudwatch/home?region=${data.aws_region.current.name}#dashboards:name=${aws_cloudwatch_dashboard.usher.dashboard_name}"
}
