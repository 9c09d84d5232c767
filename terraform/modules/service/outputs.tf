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

output "target_group_arn_suffix" {
  description = "For CloudWatch metrics of the ingress target group."
  value       = aws_lb_target_group.ingress.arn_suffix
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
