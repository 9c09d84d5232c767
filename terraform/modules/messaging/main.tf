# The queues, their DLQs and the events topic, with exactly the names and attributes
# `usher setup` gives them (infra/src/aws/sqs.rs, infra/src/aws/sns.rs). The comparison
# test (scripts/compare-setup.sh) diffs the two on a moto server.

locals {
  # domain::ports::Queue::ALL
  queues = toset(["booking-commands", "ticket-commands", "notifications", "analytics"])

  # domain::ports::Queue::subscription: which queues the topic feeds, and the event
  # types each one's filter policy lets through (null: every event).
  subscriptions = {
    notifications = [
      "usher.booking.confirmed",
      "usher.ticket.assigned",
      "usher.ticket.status_changed",
      "usher.ticket.commented",
    ]
    analytics = null
  }

  # infra/src/aws/sqs.rs: VISIBILITY_TIMEOUT_SECS and DLQ_RETENTION_SECS.
  visibility_timeout_seconds = 30
  dlq_retention_seconds      = 14 * 24 * 60 * 60
}

resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                      = "${var.env}-${each.key}-dlq"
  message_retention_seconds = local.dlq_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "source" {
  for_each = local.queues

  name                       = "${var.env}-${each.key}"
  visibility_timeout_seconds = local.visibility_timeout_seconds
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receives + 1
  })
  tags = var.tags
}

# Only its own source queue may use a DLQ as its dead-letter target.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = var.redrive_allow_policy ? local.queues : toset([])

  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.source[each.key].arn]
  })
}

resource "aws_sns_topic" "events" {
  name              = "${var.env}-events"
  kms_master_key_id = var.sns_kms_key_id
  tags              = var.tags
}

# Lets the topic, and only the topic, send to a subscribed queue (sns.rs: queue_policy).
data "aws_iam_policy_document" "from_topic" {
  for_each = local.subscriptions

  statement {
    sid       = "usher-events-topic"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.source[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.events.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "from_topic" {
  for_each = local.subscriptions

  queue_url = aws_sqs_queue.source[each.key].id
  policy    = data.aws_iam_policy_document.from_topic[each.key].json
}

resource "aws_sns_topic_subscription" "queue" {
  for_each = local.subscriptions

  topic_arn            = aws_sns_topic.events.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.source[each.key].arn
  raw_message_delivery = true
  filter_policy        = each.value == null ? null : jsonencode({ type = each.value })

  depends_on = [aws_sqs_queue_policy.from_topic]
}
