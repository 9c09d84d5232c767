# The whole fleet for one environment: messaging, data, service and observability wired
# together. envs/<env> are small roots around this module.

module "messaging" {
  source       = "../messaging"
  env          = var.env
  max_receives = var.max_receives
  tags         = local.tags
}

module "data" {
  source              = "../data"
  env                 = var.env
  deletion_protection = var.deletion_protection
  tags                = local.tags
}

module "service" {
  source              = "../service"
  env                 = var.env
  image               = var.image
  vpc_id              = var.vpc_id
  public_subnet_ids   = var.public_subnet_ids
  task_subnet_ids     = var.task_subnet_ids
  assign_public_ip    = var.assign_public_ip
  certificate_arn     = var.certificate_arn
  alb_ingress_cidrs   = var.alb_ingress_cidrs
  waf_rate_limit      = var.waf_rate_limit
  deletion_protection = var.deletion_protection
  max_receives        = var.max_receives
  queue_arns          = module.messaging.queue_arns
  queue_names         = module.messaging.queue_names
  dlq_arns            = module.messaging.dlq_arns
  topic_arn           = module.messaging.topic_arn
  table_arns          = module.data.table_arns
  kms_key_arn         = module.data.kms_key_arn
  ingress             = var.ingress
  pools               = var.pools
  lambda_package      = var.lambda_package
  log_retention_days  = var.log_retention_days
  tags                = local.tags

  # Blue/green of ingress: the API alarms roll a deployment back.
  ingress_deployment_config = var.ingress_deployment_config
  termination_wait_minutes  = var.termination_wait_minutes
  test_listener_cidrs       = var.test_listener_cidrs
  rollback_alarm_names      = module.observability.deploy_alarm_names
}

module "observability" {
  source          = "../observability"
  env             = var.env
  queue_names     = module.messaging.queue_names
  dlq_names       = module.messaging.dlq_names
  alb_arn_suffix  = module.service.alb_arn_suffix
  cluster_name    = module.service.cluster_name
  ecs_services    = module.service.ecs_services
  pool_log_groups = module.service.pool_log_groups
  alarm_emails    = var.alarm_emails
  tags            = local.tags
}

locals {
  tags = merge({ app = "usher", env = var.env }, var.tags)
}
