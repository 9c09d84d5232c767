# The fleet's compute: an ECS cluster with `usher ingress` behind an ALB, one service per
# worker pool (`usher worker --pool X`, each scaling on its own backlog), or the pool as
# `usher-lambda` behind an SQS event source mapping. IAM in iam.tf, the ALB in alb.tf.

data "aws_region" "current" {}

locals {
  # Which queue each pool consumes (workers::pools::PoolKind::queue).
  pool_queue = {
    booking       = "booking-commands"
    tickets       = "ticket-commands"
    notifications = "notifications"
    analytics     = "analytics"
  }

  ecs_pools    = { for k, p in var.pools : k => p if p.runtime == "ecs" }
  lambda_pools = { for k, p in var.pools : k => p if p.runtime == "lambda" }

  # What every Usher process reads from its environment (CONTRACT.md section 0).
  common_environment = [
    { name = "USHER_BACKEND", value = "aws" },
    { name = "USHER_ENV", value = var.env },
    { name = "USHER_MAX_RECEIVES", value = tostring(var.max_receives) },
    { name = "USHER_LOG", value = "info" },
    { name = "AWS_REGION", value = data.aws_region.current.name },
    # The image's root filesystem is read-only; /tmp is a task-local volume.
    { name = "USHER_DATA_DIR", value = "/tmp/usher" },
  ]
}

resource "aws_ecs_cluster" "this" {
  name = "${var.env}-usher"
  setting {
    # RunningTaskCount per service, which the backlog-per-task scaling divides by.
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "service" {
  #checkov:skip=CKV_AWS_158:Logs carry no secrets or payloads (ids and outcomes only); a CMK for logs needs a key policy for the regional logs service principal, which the default-on AWS-managed encryption makes unnecessary here.
  #checkov:skip=CKV_AWS_338:Retention is a variable (30 days by default) to keep a demo near free; raise log_retention_days for compliance.
  for_each = toset(concat(["ingress"], keys(var.pools)))

  name              = "/usher/${var.env}/${each.key}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# The JWT signing secret, as JSON {"current": "...", "previous": ""}. Terraform creates the
# secret, never its value (which would sit in the state): README.md "Rotate the JWT secret".
resource "aws_secretsmanager_secret" "jwt" {
  #checkov:skip=CKV2_AWS_57:Automatic rotation would swap the value in one step, and running tasks keep the old one until redeployed, so tokens would fail on some tasks; rotation is the documented three-step procedure (README, "Rotate the JWT secret") with USHER_JWT_PREVIOUS_SECRET accepting the old secret meanwhile.
  name                    = "${var.env}/usher/jwt"
  description             = "Usher ${var.env}: HS256 JWT secret, {\"current\": ..., \"previous\": ...}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_security_group" "tasks" {
  name        = "${var.env}-usher-tasks"
  description = "Usher tasks: HTTP from the load balancer only; HTTPS out to AWS APIs and ECR"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "usher ingress from the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "AWS APIs (SQS, SNS, DynamoDB, Secrets Manager, CloudWatch) and ECR over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- ingress ---------------------------------------------------------------------------

resource "aws_ecs_task_definition" "ingress" {
  # Earlier revisions stay ACTIVE (terraform would deregister them): a CodeDeploy rollback
  # or a by-hand `--task-definition <family>:<n-1>` goes back to one.
  skip_destroy = true

  family                   = "${var.env}-usher-ingress"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.ingress.cpu
  memory                   = var.ingress.memory
  execution_role_arn       = aws_iam_role.execution_ingress.arn
  task_role_arn            = aws_iam_role.ingress.arn

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "usher"
    image                  = var.image
    command                = ["ingress"]
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = 8080, protocol = "tcp" }]
    environment            = concat(local.common_environment, [{ name = "USHER_HTTP_ADDR", value = "0.0.0.0:8080" }])
    secrets = [
      { name = "USHER_JWT_SECRET", valueFrom = "${aws_secretsmanager_secret.jwt.arn}:current::" },
      { name = "USHER_JWT_PREVIOUS_SECRET", valueFrom = "${aws_secretsmanager_secret.jwt.arn}:previous::" },
    ]
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp" }]
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/usher", "health"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service["ingress"].name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "ingress"
      }
    }
  }])
  tags = var.tags
}

resource "aws_ecs_service" "ingress" {
  #checkov:skip=CKV_AWS_333:assign_public_ip is a variable, false by default (staging, prod); only envs/dev turns it on, to run in the default VPC without a NAT gateway. The tasks' security group admits only the load balancer.
  name            = "ingress"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.ingress.arn
  desired_count   = var.ingress.desired_count
  launch_type     = "FARGATE"

  # Blue/green through CodeDeploy (codedeploy.tf): a release starts a replacement task
  # set behind the idle target group, shifts the listener to it, and shifts back if the
  # 5xx or p95 alarm fires. (The ECS circuit breaker belongs to the ECS controller and is
  # not available here.)
  deployment_controller {
    type = "CODE_DEPLOY"
  }

  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.ingress.arn
    container_name   = "usher"
    container_port   = 8080
  }

  # CodeDeploy owns the running task definition and which target group serves: terraform
  # registers each new revision (output ingress_task_definition_arn) and the deploy
  # workflow hands it to CodeDeploy (`aws deploy create-deployment`).
  lifecycle {
    ignore_changes = [task_definition, load_balancer]
  }

  depends_on = [aws_lb_listener.https, aws_lb_listener.test]
  tags       = var.tags
}

# --- worker pools on ECS ---------------------------------------------------------------

resource "aws_ecs_task_definition" "worker" {
  for_each = local.ecs_pools

  # Earlier revisions stay ACTIVE, so the circuit breaker's rollback (and a by-hand one)
  # can return to the previous revision.
  skip_destroy = true

  family                   = "${var.env}-usher-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution_workers.arn
  task_role_arn            = aws_iam_role.pool[each.key].arn

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "usher"
    image                  = var.image
    command                = ["worker", "--pool", each.key, "--concurrency", tostring(each.value.concurrency)]
    essential              = true
    readonlyRootFilesystem = true
    environment            = local.common_environment
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp" }]
    # A worker serves /metrics and /health/* on USHER_METRICS_ADDR (127.0.0.1:9090 by
    # default: inside the task only, for the health check and a scraping sidecar).
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/usher", "health", "--addr", "127.0.0.1:9090"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = each.key
      }
    }
  }])
  tags = var.tags
}

resource "aws_ecs_service" "worker" {
  #checkov:skip=CKV_AWS_333:As for ingress: off by default; envs/dev turns it on for the default VPC. Workers accept no inbound traffic at all.
  for_each = local.ecs_pools

  name            = each.key
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.worker[each.key].arn
  desired_count   = each.value.min_tasks
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = var.assign_public_ip
  }

  # Workers serve no traffic, so they roll: new tasks start beside the old ones (100 % stay
  # up, up to 200 %), old ones drain their in-flight messages on SIGTERM within the stop
  # timeout. Tasks of the new revision that keep failing to start trip the circuit breaker,
  # and ECS rolls the service back to the last revision that reached steady state.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The autoscaling policy owns the count after the first apply.
  lifecycle {
    ignore_changes = [desired_count]
  }
  tags = var.tags
}

# Backlog per task: visible messages on the pool's queue divided by its running tasks,
# held near target_backlog_per_task (README.md explains the number).
resource "aws_appautoscaling_target" "worker" {
  for_each = local.ecs_pools

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min_tasks
  max_capacity       = each.value.max_tasks
}

resource "aws_appautoscaling_policy" "backlog_per_task" {
  for_each = local.ecs_pools

  name               = "${var.env}-${each.key}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.worker[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.worker[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target_backlog_per_task
    scale_in_cooldown  = 120
    scale_out_cooldown = 30

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "messages visible on ${var.queue_names[local.pool_queue[each.key]]}"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = var.queue_names[local.pool_queue[each.key]]
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        label       = "running tasks of ${each.key}"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker[each.key].name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "visible messages per running task"
        expression  = "visible / tasks"
        return_data = true
      }
    }
  }
}
