# Every DynamoDB table `usher setup` creates (infra/src/aws/dynamo/tables.rs: specs()),
# with the same keys, indexes and TTL attribute, plus what production wants on top:
# point-in-time recovery and encryption with a customer-managed KMS key.

locals {
  # The attribute DynamoDB's TTL deletes by (tables.rs: TTL_ATTRIBUTE).
  ttl_attribute = "ttl_at"

  # suffix => keys (name, type), GSIs (each with a hash and a range key, projection ALL),
  # and whether TTL is on. Keep in step with tables.rs; the comparison test checks it.
  tables = {
    "requests" = {
      hash  = ["request_id", "S"]
      range = null
      gsis  = { unqueued = { hash = ["sweep", "S"], range = ["claimed_at", "N"] } }
      ttl   = false
    }
    "idempotency-keys" = { hash = ["owner", "S"], range = ["idempotency_key", "S"], gsis = {}, ttl = true }
    "catalog" = {
      hash  = ["kind", "S"]
      range = ["id", "S"]
      gsis  = { shows_by_movie = { hash = ["movie_id", "S"], range = ["starts_at", "N"] } }
      ttl   = false
    }
    "seats"          = { hash = ["show_id", "S"], range = ["seat_id", "S"], gsis = {}, ttl = false }
    "holds"          = { hash = ["hold_id", "S"], range = null, gsis = {}, ttl = true }
    "bookings"       = { hash = ["booking_id", "S"], range = null, gsis = {}, ttl = false }
    "handled-events" = { hash = ["consumer", "S"], range = ["event_id", "S"], gsis = {}, ttl = true }
    "notifications"  = { hash = ["recipient", "S"], range = ["sort_key", "S"], gsis = {}, ttl = false }
    "show-stats"     = { hash = ["show_id", "S"], range = null, gsis = {}, ttl = false }
    "daily-stats"    = { hash = ["scope", "S"], range = ["day", "S"], gsis = {}, ttl = false }
    "ticket-stats"   = { hash = ["ticket_id", "S"], range = null, gsis = {}, ttl = false }
    "tickets" = {
      hash  = ["ticket_id", "S"]
      range = null
      gsis = {
        tickets_in_order     = { hash = ["scope", "S"], range = ["list_order", "S"] }
        tickets_by_status    = { hash = ["status", "S"], range = ["list_order", "S"] }
        tickets_by_assignee  = { hash = ["assignee", "S"], range = ["list_order", "S"] }
        tickets_by_requester = { hash = ["requester", "S"], range = ["list_order", "S"] }
      }
      ttl = false
    }
    "ticket-entries" = { hash = ["ticket_id", "S"], range = ["seq", "N"], gsis = {}, ttl = false }
    "users"          = { hash = ["user_id", "S"], range = null, gsis = {}, ttl = false }
    # The transactional outbox (events and follow-ups written with each command's effect,
    # published by the relay).
    "outbox" = { hash = ["id", "S"], range = null, gsis = {}, ttl = false }
  }

  # Every attribute a key or an index uses, once per table: name => type.
  attributes = {
    for name, t in local.tables : name => merge(
      { (t.hash[0]) = t.hash[1] },
      t.range == null ? {} : { (t.range[0]) = t.range[1] },
      merge([for g in values(t.gsis) : { (g.hash[0]) = g.hash[1], (g.range[0]) = g.range[1] }]...),
    )
  }
}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "tables_key" {
  #checkov:skip=CKV_AWS_109:This is the key's own key policy (AWS's default one): Resource "*" means this key only, and the account root principal delegates use to IAM policies, which grant it narrowly.
  #checkov:skip=CKV_AWS_111:Same: a key policy's "*" is the key itself; without the root statement the key becomes unmanageable.
  #checkov:skip=CKV_AWS_356:Same: in a key policy the only resource is the key.
  # The account administers and uses the key through IAM policies (the task roles grant
  # kms:Decrypt / kms:GenerateDataKey on it); DynamoDB uses it on their behalf.
  statement {
    sid       = "account"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "tables" {
  description             = "${var.env}: Usher's DynamoDB tables and its JWT secret"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.tables_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "tables" {
  name          = "alias/${var.env}-usher"
  target_key_id = aws_kms_key.tables.key_id
}

resource "aws_dynamodb_table" "table" {
  for_each = local.tables

  name                        = "${var.env}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash[0]
  range_key                   = each.value.range == null ? null : each.value.range[0]
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = local.attributes[each.key]
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.gsis
    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value.hash[0]
      range_key       = global_secondary_index.value.range[0]
      projection_type = "ALL"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl ? [local.ttl_attribute] : []
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.tables.arn
  }

  tags = var.tags
}
