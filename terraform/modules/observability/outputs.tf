output "alarm_topic_arn" {
  description = "Every alarm notifies this topic."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = "https://${data.aws_region.current.name}.console.aws.amazon.com/cloudwatch/home?region=${data.aws_region.current.name}#dashboards:name=${aws_cloudwatch_dashboard.usher.dashboard_name}"
}

output "deploy_alarm_names" {
  description = "The API alarms (5xx over 1 %, p95 over 500 ms) that roll back an ingress deployment."
  value       = [aws_cloudwatch_metric_alarm.http_5xx.alarm_name, aws_cloudwatch_metric_alarm.latency_p95.alarm_name]
}
