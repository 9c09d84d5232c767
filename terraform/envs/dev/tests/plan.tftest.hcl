# A plan of the whole environment against a mocked AWS provider (terraform test, no
# credentials, no network): it checks what validate cannot — for_each keys, the
# references between modules (the rollback alarms feeding CodeDeploy, the Lambda
# aliases), preconditions, the provider's own argument checks. Run by
# scripts/deploy-checks.sh static.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
}

variables {
  image           = "123456789012.dkr.ecr.us-east-1.amazonaws.com/usher:0000000"
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/test"
}

run "plan" {
  command = plan

  assert {
    condition     = length(output.worker_task_definition_arns) == 4
    error_message = "dev: expected 4 worker pools on ECS."
  }
  assert {
    condition     = length(output.lambda_aliases) == 0
    error_message = "dev: expected 0 pools on Lambda, each behind the alias live."
  }
  assert {
    condition     = output.codedeploy_deployment_group == "ingress"
    error_message = "dev: ingress must deploy through its CodeDeploy deployment group."
  }
  assert {
    condition     = output.waf_web_acl_arn == null
    error_message = "dev: expected no WAF web ACL (waf_rate_limit unset)."
  }
}
