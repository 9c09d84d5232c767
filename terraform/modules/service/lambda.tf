# Pools with runtime = "lambda": `usher-lambda` (USHER_POOL=<pool>) behind an SQS event
# source mapping that reports partial batch failures, so only transient failures return
# to the queue (poison messages are dead-lettered by the function itself).
#
# Every apply that changes the code publishes a new version and moves the alias `live` to
# it; the event source mapping invokes `live`, never $LATEST. A bad release is one alias
# move back: `aws lambda update-alias --function-name <fn> --name live --function-version <n-1>`.

resource "aws_lambda_function" "pool" {
  #checkov:skip=CKV_AWS_116:The function's input is an SQS queue with its own DLQ and redrive policy; a Lambda DLQ only applies to asynchronous invocations, which this function never gets.
  #checkov:skip=CKV_AWS_117:Running in a VPC would need a NAT gateway or VPC endpoints for SQS, SNS and DynamoDB (a fixed monthly cost); the function talks only to AWS APIs over TLS with IAM.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile; the zip is built and uploaded by the same pipeline that runs terraform.
  for_each = local.lambda_pools

  function_name                  = "${var.env}-usher-${each.key}"
  role                           = aws_iam_role.pool[each.key].arn
  filename                       = var.lambda_package
  source_code_hash               = var.lambda_package == null ? null : filebase64sha256(var.lambda_package)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.lambda_architecture]
  memory_size                    = each.value.lambda_memory
  timeout                        = 25 # below the queue's 30 s visibility timeout
  reserved_concurrent_executions = each.value.lambda_max_concurrency
  kms_key_arn                    = var.kms_key_arn
  publish                        = true

  environment {
    variables = {
      USHER_POOL         = each.key
      USHER_BACKEND      = "aws"
      USHER_ENV          = var.env
      USHER_MAX_RECEIVES = tostring(var.max_receives)
      USHER_LOG          = "info"
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.service[each.key].name
  }

  tracing_config {
    mode = "Active"
  }

  lifecycle {
    precondition {
      condition     = var.lambda_package != null
      error_message = "pool ${each.key} runs on Lambda: set lambda_package to the usher-lambda zip."
    }
  }
  tags = var.tags
}

resource "aws_lambda_alias" "live" {
  for_each = local.lambda_pools

  name             = "live"
  description      = "The version the queue invokes"
  function_name    = aws_lambda_function.pool[each.key].function_name
  function_version = aws_lambda_function.pool[each.key].version
}

resource "aws_lambda_event_source_mapping" "pool" {
  for_each = local.lambda_pools

  event_source_arn                   = var.queue_arns[local.pool_queue[each.key]]
  function_name                      = aws_lambda_alias.live[each.key].arn
  batch_size                         = each.value.lambda_batch_size
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = max(2, each.value.lambda_max_concurrency)
  }
}
