# The global rate limit (issue 12): with waf_rate_limit set, an AWS WAF web ACL on the ALB
# blocks a source IP past that many requests in 5 minutes, over every ingress task, with
# a 429 rate_limited problem (modules/waf; README.md "Global rate limit (WAF)"). null: no
# web ACL, no WAF charge.
module "waf" {
  source = "../waf"
  count  = var.waf_rate_limit == null ? 0 : 1

  env                = var.env
  rate_limit         = var.waf_rate_limit
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

resource "aws_wafv2_web_acl_association" "ingress" {
  count = var.waf_rate_limit == null ? 0 : 1

  resource_arn = aws_lb.ingress.arn
  web_acl_arn  = module.waf[0].web_acl_arn
}
