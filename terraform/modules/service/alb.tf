# The internet-facing load balancer: HTTPS to `usher ingress`, HTTP redirected to HTTPS.
# Two target groups for blue/green (codedeploy.tf): the production listener (443) forwards
# to one, the test listener (test_listener_port) to the other; CodeDeploy swaps them.

resource "aws_security_group" "alb" {
  name        = "${var.env}-usher-alb"
  description = "Usher load balancer: HTTPS (and HTTP, redirected) in; the tasks' port out"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from clients, answered only with a redirect to HTTPS"
  #checkov:skip=CKV_AWS_260:Port 80 is open only so that plain-HTTP clients get a 301 to HTTPS (aws_lb_listener.http never forwards).
  cidr_ipv4   = each.value
  ip_protocol = "tcp"
  from_port   = 80
  to_port     = 80
}

resource "aws_vpc_security_group_ingress_rule" "alb_test" {
  for_each = toset(var.test_listener_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS to the test listener: the replacement task set during a blue/green deployment"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.test_listener_port
  to_port           = var.test_listener_port
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "to usher ingress"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
}

resource "aws_lb" "ingress" {
  #checkov:skip=CKV_AWS_91:Access logs need an S3 bucket (and its own logging, versioning, replication checks); the app logs every request with its status and latency to CloudWatch already.
  #checkov:skip=CKV2_AWS_76:No JVM anywhere behind this ALB (Usher is Rust), so the managed Log4j rule group would guard nothing; the web ACL (waf.tf, modules/waf) carries the rate limit only.
  #checkov:skip=CKV_AWS_150:Deletion protection is the deletion_protection variable: on in envs/prod, off in dev and staging so that a demo can be destroyed.
  name                       = "${var.env}-usher"
  internal                   = false
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  tags                       = var.tags
}

# "blue": the target group the service starts behind. The two alternate with every
# deployment, so which one is live is CodeDeploy's to say (the listeners ignore it).
resource "aws_lb_target_group" "ingress" {
  name        = "${var.env}-usher-ingress"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  # Ready means the store and the queues answer: a task that lost its backend leaves the
  # rotation instead of answering 503s.
  health_check {
    path                = "/health/ready"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  # A graceful shutdown finishes in-flight requests within 30 s.
  deregistration_delay = 30
  tags                 = var.tags
}

# "green": the replacement task set's target group during a deployment (same checks).
resource "aws_lb_target_group" "ingress_green" {
  name        = "${var.env}-usher-green"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path                = "/health/ready"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  deregistration_delay = 30
  tags                 = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.ingress.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ingress.arn
  }

  # CodeDeploy points this listener at the green or blue target group.
  lifecycle {
    ignore_changes = [default_action]
  }
  tags = var.tags
}

# The test listener: the replacement task set answers here before (and while) production
# traffic shifts to it. Reachable only from test_listener_cidrs (none by default).
resource "aws_lb_listener" "test" {
  load_balancer_arn = aws_lb.ingress.arn
  port              = var.test_listener_port
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ingress_green.arn
  }

  lifecycle {
    ignore_changes = [default_action]
  }
  tags = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.ingress.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
  tags = var.tags
}
