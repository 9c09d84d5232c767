output "url" {
  description = "The API's URL (point a DNS name covered by the certificate at alb_dns_name)."
  value       = "https://${aws_lb.ingress.dns_name}"
}

output "alb_dns_name" {
  description = "The load balancer's DNS name."
  value       = aws_lb.ingress.dns_name
}

output "alb_arn_suffix" {
  description = "For CloudWatch metrics of the load balancer."
  value       = aws_lb.ingress.arn_suffix
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "ecs_services" {
  description = "Every ECS service: ingress and the pools on ECS."
  value       = concat([aws_ecs_service.ingress.name], [for s in aws_ecs_service.worker : s.name])
}

output "lambda_functions" {
  description = "The pools on Lambda: pool => function name."
  value       = { for k, f in aws_lambda_function.pool : k => f.function_name }
}

output "jwt_secret_arn" {
  description = "Put the JWT secret here (README.md)."
  value       = aws_secretsmanager_secret.jwt.arn
}

output "ingress_task_definition_arn" {
  description = "The ingress revision this apply registered: the deploy workflow hands it to CodeDeploy."
  value       = aws_ecs_task_definition.ingress.arn
}

output "worker_task_definition_arns" {
  description = "Pool on ECS => the revision its service now rolls to."
  value       = { for k, t in aws_ecs_task_definition.worker : k => t.arn }
}

output "codedeploy_app" {
  description = "The CodeDeploy application of ingress."
  value       = aws_codedeploy_app.ingress.name
}

output "codedeploy_deployment_group" {
  description = "The CodeDeploy deployment group of ingress."
  value       = aws_codedeploy_deployment_group.ingress.deployment_group_name
}

output "lambda_aliases" {
  description = "The pools on Lambda: pool => ARN of the alias `live` the queue invokes."
  value       = { for k, a in aws_lambda_alias.live : k => a.arn }
}

output "pool_log_groups" {
  description = "Pool => its CloudWatch log group (the relay's `outbox backlog` lines feed the outbox alarm)."
  value       = { for k in keys(var.pools) : k => aws_cloudwatch_log_group.service[k].name }
}

output "waf_web_acl_arn" {
  description = "The WAF web ACL on the ALB (the per-IP rate limit), or null when waf_rate_limit is null."
  value       = one(module.waf[*].web_acl_arn)
}
