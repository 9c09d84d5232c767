# Least privilege: execution roles (pull the image, write logs, read the JWT secret for
# ingress only) separate from task roles (what the code calls). Each pool's task role
# reaches only its queue and DLQ, the topic, and the tables its handler touches.

locals {
  # The tables each pool's handler reads and writes (infra/src/aws/dynamo/*.rs). Command
  # pools complete status documents (requests) and write their events to the outbox.
  pool_tables = {
    booking       = ["requests", "catalog", "seats", "holds", "bookings", "users", "outbox"]
    tickets       = ["requests", "tickets", "ticket-entries", "users", "outbox"]
    notifications = ["requests", "handled-events", "notifications"]
    analytics     = ["requests", "handled-events", "show-stats", "daily-stats", "ticket-stats"]
  }

  command_queues = ["booking-commands", "ticket-commands"]

  dynamodb_rw = [
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
    "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
    # ticket stats and expired idempotency keys are read with a Scan (infra/AWS.md).
    "dynamodb:Scan",
  ]
  kms_use = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
  consume = [
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage",
    "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
  ]
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# --- execution roles -------------------------------------------------------------------

resource "aws_iam_role" "execution_ingress" {
  name               = "${var.env}-usher-exec-ingress"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role" "execution_workers" {
  name               = "${var.env}-usher-exec-workers"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  for_each = {
    ingress = aws_iam_role.execution_ingress.name
    workers = aws_iam_role.execution_workers.name
  }
  role       = each.value
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_jwt_secret" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.jwt.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_ingress_secret" {
  name   = "read-jwt-secret"
  role   = aws_iam_role.execution_ingress.id
  policy = data.aws_iam_policy_document.read_jwt_secret.json
}

# --- ingress ---------------------------------------------------------------------------

data "aws_iam_policy_document" "ingress" {
  # The API reads every table, admits commands (requests, idempotency keys) and manages
  # the catalog and agents (admin routes).
  statement {
    sid       = "tables"
    actions   = local.dynamodb_rw
    resources = flatten([for arn in values(var.table_arns) : [arn, "${arn}/index/*"]])
  }
  statement {
    sid       = "admit"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = [for q in local.command_queues : var.queue_arns[q]]
  }
  statement {
    sid       = "queue_metrics"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = concat(values(var.queue_arns), values(var.dlq_arns))
  }
  statement {
    sid       = "key"
    actions   = local.kms_use
    resources = [var.kms_key_arn]
  }
  statement {
    # /health/ready pings SQS with ListQueues (prefix <env>), which has no resource scope;
    # without it the load balancer would never see a healthy task.
    sid       = "ready_ping"
    actions   = ["sqs:ListQueues"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "ingress" {
  name               = "${var.env}-usher-ingress"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "ingress" {
  name   = "usher-ingress"
  role   = aws_iam_role.ingress.id
  policy = data.aws_iam_policy_document.ingress.json
}

# --- pools (ECS task roles and Lambda roles alike) --------------------------------------

data "aws_iam_policy_document" "pool" {
  for_each = var.pools

  statement {
    sid       = "own_queue"
    actions   = local.consume
    resources = [var.queue_arns[local.pool_queue[each.key]]]
  }
  statement {
    sid       = "own_dlq"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = [var.dlq_arns[local.pool_queue[each.key]]]
  }
  statement {
    sid       = "publish_events"
    actions   = ["sns:Publish"]
    resources = [var.topic_arn]
  }
  statement {
    # The adapter finds the topic's ARN by name; ListTopics has no resource-level scope.
    sid       = "find_topic"
    actions   = ["sns:ListTopics"]
    resources = ["*"]
  }
  statement {
    sid     = "tables"
    actions = local.dynamodb_rw
    resources = flatten([
      for t in local.pool_tables[each.key] : [var.table_arns[t], "${var.table_arns[t]}/index/*"] if contains(keys(var.table_arns), t)
    ])
  }
  statement {
    sid       = "key"
    actions   = local.kms_use
    resources = [var.kms_key_arn]
  }

  # `usher worker` also runs the sweep (workers/src/sweep.rs): it re-queues admitted
  # commands, marks requests whose message the redrive moved (peeking at the DLQs) and
  # forgets expired idempotency keys. A Lambda does not sweep.
  dynamic "statement" {
    for_each = each.value.runtime == "ecs" ? [1] : []
    content {
      sid       = "sweep_tables"
      actions   = local.dynamodb_rw
      resources = flatten([for t in ["requests", "idempotency-keys"] : [var.table_arns[t], "${var.table_arns[t]}/index/*"]])
    }
  }
  dynamic "statement" {
    for_each = each.value.runtime == "ecs" ? [1] : []
    content {
      sid       = "sweep_queues"
      actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = [for q in local.command_queues : var.queue_arns[q]]
    }
  }
  dynamic "statement" {
    for_each = each.value.runtime == "ecs" ? [1] : []
    content {
      sid       = "sweep_dlqs"
      actions   = ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = values(var.dlq_arns)
    }
  }
}

resource "aws_iam_role" "pool" {
  for_each = var.pools

  name               = "${var.env}-usher-${each.key}"
  assume_role_policy = each.value.runtime == "lambda" ? data.aws_iam_policy_document.lambda_assume.json : data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "pool" {
  for_each = var.pools

  name   = "usher-${each.key}"
  role   = aws_iam_role.pool[each.key].id
  policy = data.aws_iam_policy_document.pool[each.key].json
}

data "aws_iam_policy_document" "lambda_logs" {
  for_each = local.lambda_pools

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.service[each.key].arn}:*"]
  }
  statement {
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "lambda_logs" {
  for_each = local.lambda_pools

  name   = "logs"
  role   = aws_iam_role.pool[each.key].id
  policy = data.aws_iam_policy_document.lambda_logs[each.key].json
}
