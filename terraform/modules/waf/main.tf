# The global rate limit in front of the ALB (issue 12): USHER_RATE_LIMIT is kept in each
# ingress task, so N tasks admit N times it per caller. An AWS WAF web ACL counts every
# request the load balancer receives, whichever task would answer it, and blocks a source
# IP over var.rate_limit requests in the trailing 5 minutes with a 429 shaped like Usher's
# own `rate_limited` problem. The caller associates it with its load balancer:
# modules/service does when its waf_rate_limit is set; examples/waf-local applies it on
# moto (scripts/deploy-checks.sh apply).

locals {
  # Usher's problem document for `rate_limited` (ingress/src/problem.rs). WAF cannot send
  # `application/problem+json` (its content types are text/plain, text/html and
  # application/json, and a custom content-type header is refused), so this one is
  # application/json; the fields, and the `code` clients branch on, are the same.
  waf_rate_limited_body = jsonencode({
    type   = "https://usher.dev/problems/rate_limited"
    title  = "Rate limited"
    status = 429
    detail = "too many requests from this address across every instance; retry after Retry-After seconds"
    code   = "rate_limited"
  })
}

resource "aws_wafv2_web_acl" "ingress" {
  #checkov:skip=CKV_AWS_192:No JVM anywhere behind this ALB (Usher is Rust), so Log4Shell's JNDI lookup has nothing to reach; AWS's managed rule group for it would answer its own blocks with a bare 403 instead of a problem document.
  name        = "${var.env}-usher"
  description = "Usher ${var.env}: per source IP rate limit in front of the ALB"
  scope       = "REGIONAL"
  tags        = var.tags

  default_action {
    allow {}
  }

  custom_response_body {
    key          = "rate_limited"
    content      = local.waf_rate_limited_body
    content_type = "APPLICATION_JSON"
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 0

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "rate_limited"
          # WAF re-evaluates the rate every few seconds; the block lifts once the
          # address's count over the window falls below the limit.
          response_header {
            name  = "Retry-After"
            value = "60"
          }
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.env}-usher-rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.env}-usher-waf"
    sampled_requests_enabled   = true
  }
}

# Only the requests the web ACL blocked are logged (who was rate limited, and when), so
# the log costs nothing while nobody is. WAF log groups must be named aws-waf-logs-*.
resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_158:WAF's own log of blocked requests (the Authorization header is redacted); a CMK for logs needs a key policy for the regional logs service principal, which the default-on AWS-managed encryption makes unnecessary here.
  #checkov:skip=CKV_AWS_338:Retention is a variable (30 days by default) to keep a demo near free; raise log_retention_days for compliance.
  name              = "aws-waf-logs-${var.env}-usher"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "ingress" {
  resource_arn            = aws_wafv2_web_acl.ingress.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Bearer tokens stay out of the log.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  logging_filter {
    default_behavior = "DROP"
    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"
      condition {
        action_condition {
          action = "BLOCK"
        }
      }
    }
  }
}
