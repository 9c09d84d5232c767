output "web_acl_arn" {
  description = "The web ACL on the load balancer."
  value       = aws_wafv2_web_acl.ingress.arn
}

output "log_group_name" {
  description = "The CloudWatch log group of the requests the web ACL blocked."
  value       = aws_cloudwatch_log_group.waf.name
}
