# The alarms CONTRACT.md section 6 asks for (the same as the repo's Prometheus rules in
# ops/prometheus/alerts.yml: DLQ depth > 0, oldest message > 60 s, 5xx > 1 %,
# p95 > 500 ms, outbox age > 60 s) and one dashboard.

data "aws_region" "current" {}

resource "aws_sns_topic" "alarms" {
  name              = "${var.env}-usher-alarms"
  kms_master_key_id = var.kms_key_id
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = var.dlq_names

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "Messages were dead-lettered from ${var.queue_names[each.key]}: `usher dlq peek ${each.key}`, fix, then `usher dlq replay ${each.key}`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  for_each = var.queue_names

  alarm_name          = "${each.value}-oldest-message-over-60s"
  alarm_description   = "The oldest message on ${each.value} waited over 60 s: the ${each.key} pool is behind (scaling at its max, or failing)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 60
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

# The outbox lives in DynamoDB, which has no metric for its oldest item: every worker's
# relay logs `outbox backlog` with `oldest_age_seconds` once a minute, and a metric filter
# on the pools' log groups makes that a metric (no API calls, no custom-metric charges
# beyond the one metric).
resource "aws_cloudwatch_log_metric_filter" "outbox_oldest" {
  for_each = var.pool_log_groups

  name           = "${var.env}-usher-outbox-oldest-${each.key}"
  log_group_name = each.value
  pattern        = "{ $.fields.message = \"outbox backlog\" }"

  metric_transformation {
    name      = "OutboxOldestAgeSeconds"
    namespace = "Usher/${var.env}"
    value     = "$.fields.oldest_age_seconds"
    unit      = "Seconds"
  }
}

resource "aws_cloudwatch_metric_alarm" "outbox_oldest" {
  count = length(var.pool_log_groups) > 0 ? 1 : 0

  alarm_name          = "${var.env}-usher-outbox-over-60s"
  alarm_description   = "Committed events waited over 60 s for the relay: the bus (SNS) fails or is slow. Nothing is lost; subscribers are late. See the workers' `cannot publish pending events` logs."
  namespace           = "Usher/${var.env}"
  metric_name         = "OutboxOldestAgeSeconds"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 60
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags

  depends_on = [aws_cloudwatch_log_metric_filter.outbox_oldest]
}

resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  alarm_name          = "${var.env}-usher-5xx-over-1pct"
  alarm_description   = "More than 1 % of API responses were 5xx (the tasks' and the load balancer's own) over 5 minutes. It also rolls back an ingress deployment (CodeDeploy)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "ratio"
    expression  = "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests"
    label       = "5xx %"
    return_data = true
  }
  metric_query {
    id = "target5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "elb5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }
  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "latency_p95" {
  alarm_name        = "${var.env}-usher-p95-over-500ms"
  alarm_description = "The API's p95 response time was over 500 ms for 5 minutes. It also rolls back an ingress deployment (CodeDeploy)."
  namespace         = "AWS/ApplicationELB"
  metric_name       = "TargetResponseTime"
  # The whole load balancer, not one target group: blue and green alternate as the live one.
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p95"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.5
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}


resource "aws_cloudwatch_dashboard" "usher" {
  dashboard_name = "${var.env}-usher"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "Backlog (visible messages)", region = data.aws_region.current.name, view = "timeSeries", stat = "Maximum", period = 60
          metrics = [for name in values(var.queue_names) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title       = "Oldest message (s)", region = data.aws_region.current.name, view = "timeSeries", stat = "Maximum", period = 60
          metrics     = [for name in values(var.queue_names) : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", name]]
          annotations = { horizontal = [{ label = "alarm", value = 60 }] }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title   = "Dead letters", region = data.aws_region.current.name, view = "timeSeries", stat = "Maximum", period = 60
          metrics = [for name in values(var.dlq_names) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Running tasks", region = data.aws_region.current.name, view = "timeSeries", stat = "Average", period = 60
          metrics = [for s in var.ecs_services : ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", s]]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title = "API requests and 5xx", region = data.aws_region.current.name, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
            ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
            ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title = "API latency (s)", region = data.aws_region.current.name, view = "timeSeries", period = 60
          metrics = [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p50" }],
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p95" }],
          ]
          annotations = { horizontal = [{ label = "p95 alarm", value = 0.5 }] }
        }
      },
    ]
  })
}
