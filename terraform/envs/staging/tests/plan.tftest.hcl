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

# A web ACL's ARN is only known after apply; give the mocked one a value during the plan
# so that the run can check the environment's output carries it.
override_resource {
  target          = module.usher.module.service.module.waf[0].aws_wafv2_web_acl.ingress
  override_during = plan
  values = {
    arn = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/staging-usher/test"
  }
}

variables {
  image              = "123456789012.dkr.ecr.us-east-1.amazonaws.com/usher:0000000"
  certificate_arn    = "arn:aws:acm:us-east-1:123456789012:certificate/test"
  vpc_id             = "vpc-0123456789abcdef0"
  public_subnet_ids  = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  private_subnet_ids = ["subnet-0000000000000000c", "subnet-0000000000000000d"]
  # Any file will do: the mocked plan only hashes it (the real one is the usher-lambda zip).
  lambda_package = "main.tf"
}

run "plan" {
  command = plan

  assert {
    condition     = length(output.worker_task_definition_arns) == 2
    error_message = "staging: expected 2 worker pools on ECS."
  }
  assert {
    condition     = length(output.lambda_aliases) == 2
    error_message = "staging: expected 2 pools on Lambda, each behind the alias live."
  }
  assert {
    condition     = output.codedeploy_deployment_group == "ingress"
    error_message = "staging: ingress must deploy through its CodeDeploy deployment group."
  }
  assert {
    condition     = output.waf_web_acl_arn == "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/staging-usher/test"
    error_message = "staging: expected the WAF web ACL with the per-IP rate limit on the ALB."
  }
}
