# Blue/green deployments of the ingress service. A release is a CodeDeploy deployment
# (the deploy workflow creates it with the task definition terraform registered): ECS
# starts a replacement task set behind the idle target group, the test listener reaches
# it, the production listener shifts to it (all at once or canary, deployment_config),
# and the original task set stays up for termination_wait_minutes. If the deployment fails
# or one of rollback_alarm_names fires before the original set is gone, CodeDeploy moves
# the listener back and the original tasks serve again.

resource "aws_codedeploy_app" "ingress" {
  name             = "${var.env}-usher"
  compute_platform = "ECS"
  tags             = var.tags
}

data "aws_iam_policy_document" "codedeploy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codedeploy.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "codedeploy" {
  name               = "${var.env}-usher-codedeploy"
  assume_role_policy = data.aws_iam_policy_document.codedeploy_assume.json
  tags               = var.tags
}

# AWS's policy for ECS blue/green: task sets, the listeners and target groups, the
# alarms, and iam:PassRole of the task roles (to ecs-tasks.amazonaws.com only).
resource "aws_iam_role_policy_attachment" "codedeploy" {
  role       = aws_iam_role.codedeploy.name
  policy_arn = "arn:aws:iam::aws:policy/AWSCodeDeployRoleForECS"
}

resource "aws_codedeploy_deployment_group" "ingress" {
  app_name               = aws_codedeploy_app.ingress.name
  deployment_group_name  = "ingress"
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = var.ingress_deployment_config

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  blue_green_deployment_config {
    deployment_ready_option {
      # Shift as soon as the replacement tasks are healthy behind the test listener.
      action_on_timeout = "CONTINUE_DEPLOYMENT"
    }
    terminate_blue_instances_on_deployment_success {
      # The rollback window: the alarms need 5 minutes of data to fire.
      action                           = "TERMINATE"
      termination_wait_time_in_minutes = var.termination_wait_minutes
    }
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }

  alarm_configuration {
    enabled = length(var.rollback_alarm_names) > 0
    alarms  = var.rollback_alarm_names
  }

  ecs_service {
    cluster_name = aws_ecs_cluster.this.name
    service_name = aws_ecs_service.ingress.name
  }

  load_balancer_info {
    target_group_pair_info {
      prod_traffic_route {
        listener_arns = [aws_lb_listener.https.arn]
      }
      test_traffic_route {
        listener_arns = [aws_lb_listener.test.arn]
      }
      target_group {
        name = aws_lb_target_group.ingress.name
      }
      target_group {
        name = aws_lb_target_group.ingress_green.name
      }
    }
  }

  depends_on = [aws_iam_role_policy_attachment.codedeploy]
  tags       = var.tags
}
