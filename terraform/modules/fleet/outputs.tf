output "url" {
  description = "The API."
  value       = module.service.url
}

output "alb_dns_name" {
  description = "Point your DNS name (the certificate's) here."
  value       = module.service.alb_dns_name
}

output "waf_web_acl_arn" {
  description = "The WAF web ACL (per-IP rate limit) on the ALB, or null."
  value       = module.service.waf_web_acl_arn
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = module.observability.dashboard_url
}

output "jwt_secret_arn" {
  description = "Put the JWT secret here before the first deploy."
  value       = module.service.jwt_secret_arn
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = module.service.cluster_name
}

output "ecs_services" {
  description = "The ECS services."
  value       = module.service.ecs_services
}

output "lambda_functions" {
  description = "The pools on Lambda."
  value       = module.service.lambda_functions
}

output "ingress_task_definition_arn" {
  description = "The ingress revision to deploy through CodeDeploy."
  value       = module.service.ingress_task_definition_arn
}

output "worker_task_definition_arns" {
  description = "Pool on ECS => the revision its service rolls to."
  value       = module.service.worker_task_definition_arns
}

output "codedeploy_app" {
  description = "The CodeDeploy application of ingress."
  value       = module.service.codedeploy_app
}

output "codedeploy_deployment_group" {
  description = "The CodeDeploy deployment group of ingress."
  value       = module.service.codedeploy_deployment_group
}

output "lambda_aliases" {
  description = "The pools on Lambda: pool => the alias the queue invokes."
  value       = module.service.lambda_aliases
}
