# Alerting: one encrypted SNS topic with an email subscription, fed by
#   1. an EventBridge rule on "Glue Job State Change" FAILED / TIMEOUT / STOPPED of the three jobs
#      (the job-run end states Glue emits besides SUCCEEDED; it never emits ERROR):
#      one message per failed run, naming the job, run id and Glue's error message;
#   2. CloudWatch alarms (state you can see on a dashboard, and OK notifications on recovery):
#      - job-run-failed: the same failures, counted as a metric;
#      - workflow-stale: no completed workflow run (load SUCCEEDED) for stale_after_minutes;
#      - freshness: a source change has waited over freshness_limit_minutes (30) for the warehouse;
#      - alert-delivery-failed / run-history-delivery-failed: EventBridge could not deliver to
#        the topic or the run history (e.g. after a key policy change), so silence is not
#        mistaken for health.
#
# How the workflow-stale alarm gets a metric that really exists: Glue emits no per-run success
# metric. An EventBridge rule sends every state change of the three jobs to a CloudWatch Logs
# group (a durable run history as well), and metric filters on that group publish
# TotesETL/WorkflowSucceeded (1 per load SUCCEEDED event) and TotesETL/JobRunsFailed. When nothing
# succeeds there are no datapoints at all, so the alarm treats missing data as breaching: every
# one of the last N five-minute periods without a success (N = stale_after_minutes / 5) -> ALARM.
# Right after the first deploy it goes to ALARM until the first workflow run completes.

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-etl-alerts"
  display_name      = "Totes ETL"
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "EventBridgeRulesOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.job_failed.arn]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"]
    }
  }
}

resource "aws_sns_topic_subscription" "email" {
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

# ---------------------------------------------------------------------------------------------
# EventBridge
# ---------------------------------------------------------------------------------------------

locals {
  # The end states of a run that did not succeed, as Glue puts them in "Glue Job State Change"
  # events (SUCCEEDED is the other one). STOPPED is a run stopped by hand or by the service.
  failed_states = ["FAILED", "TIMEOUT", "STOPPED"]

  job_failed_event_pattern = {
    source        = ["aws.glue"]
    "detail-type" = ["Glue Job State Change"]
    detail = {
      jobName = values(local.job_names)
      state   = local.failed_states
    }
  }

  job_state_event_pattern = {
    source        = ["aws.glue"]
    "detail-type" = ["Glue Job State Change"]
    detail = {
      jobName = values(local.job_names)
    }
  }
}

resource "aws_cloudwatch_event_rule" "job_failed" {
  name          = "${var.name_prefix}-glue-job-failed"
  description   = "A Terrific Totes Glue job run ended FAILED, TIMEOUT or STOPPED"
  event_pattern = jsonencode(local.job_failed_event_pattern)
}

resource "aws_cloudwatch_event_target" "job_failed_email" {
  rule      = aws_cloudwatch_event_rule.job_failed.name
  target_id = "alerts-topic"
  arn       = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      job     = "$.detail.jobName"
      state   = "$.detail.state"
      run_id  = "$.detail.jobRunId"
      message = "$.detail.message"
      time    = "$.time"
    }
    # Placeholders outside quotes are inserted as JSON values, so quotes in Glue's message are
    # escaped by EventBridge instead of breaking the document.
    input_template = chomp(<<-EOT
      {"alert": "Terrific Totes ETL: a Glue job run did not succeed", "job": <job>, "state": <state>, "run_id": <run_id>, "time": <time>, "message": <message>, "next_step": "Glue console > ETL jobs > the job > Runs, or CloudWatch log group /aws-glue/jobs/* for the run id"}
    EOT
    )
  }
}

resource "aws_cloudwatch_event_rule" "job_state" {
  name          = "${var.name_prefix}-glue-job-state"
  description   = "Every state change of the Terrific Totes Glue jobs, kept in CloudWatch Logs"
  event_pattern = jsonencode(local.job_state_event_pattern)
}

resource "aws_cloudwatch_event_target" "job_state_log" {
  rule      = aws_cloudwatch_event_rule.job_state.name
  target_id = "job-run-history"
  arn       = aws_cloudwatch_log_group.job_runs.arn
}

resource "aws_cloudwatch_log_group" "job_runs" {
  # EventBridge delivers to log groups under /aws/events/ with the resource policy below.
  name              = "/aws/events/${var.name_prefix}-glue-job-runs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "job_runs_log" {
  statement {
    sid       = "EventBridgeWritesJobRunHistory"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.job_runs.arn}:*"]

    # Scoped to this one log group. No aws:SourceArn condition: the write is made by the logs
    # delivery service on EventBridge's behalf, and a mismatching condition would silently drop
    # the run history (watched by the delivery alarm below instead).
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "delivery.logs.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "job_runs" {
  policy_name     = "${var.name_prefix}-eventbridge-job-runs"
  policy_document = data.aws_iam_policy_document.job_runs_log.json
}

# ---------------------------------------------------------------------------------------------
# Metrics from the run history
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_metric_filter" "workflow_succeeded" {
  name           = "${var.name_prefix}-workflow-succeeded"
  log_group_name = aws_cloudwatch_log_group.job_runs.name
  # The workflow has completed when its last job, load, has succeeded.
  pattern = "{ ($.detail.jobName = \"${local.job_names["load"]}\") && ($.detail.state = \"SUCCEEDED\") }"

  metric_transformation {
    name      = "WorkflowSucceeded"
    namespace = local.metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_log_metric_filter" "job_runs_failed" {
  name           = "${var.name_prefix}-job-runs-failed"
  log_group_name = aws_cloudwatch_log_group.job_runs.name
  # The same states as local.failed_states (the EventBridge rule).
  pattern = "{ ($.detail.state = \"FAILED\") || ($.detail.state = \"TIMEOUT\") || ($.detail.state = \"STOPPED\") }"

  metric_transformation {
    name      = "JobRunsFailed"
    namespace = local.metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "job_run_failed" {
  alarm_name          = "${var.name_prefix}-job-run-failed"
  alarm_description   = "A Terrific Totes Glue job run ended FAILED, TIMEOUT or STOPPED in the last 5 minutes (details in the EventBridge alert mail)."
  namespace           = local.metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.job_runs_failed.metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "workflow_stale" {
  alarm_name          = "${var.name_prefix}-workflow-stale"
  alarm_description   = "No Terrific Totes workflow run has completed (load SUCCEEDED) for ${var.stale_after_minutes} minutes: the warehouse is going stale."
  namespace           = local.metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.workflow_succeeded.metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = var.stale_after_minutes / 5
  datapoints_to_alarm = var.stale_after_minutes / 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  # No success means no datapoint at all: missing data is exactly the condition to alarm on.
  treat_missing_data = "breaching"
  actions_enabled    = true
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
}

# Freshness (SPEC.md: a change written to the source is in the warehouse within 30 minutes). After
# each commit the load publishes TotesETL/FreshnessMinutes: how long the oldest source change the
# warehouse does not hold yet has been waiting, 0 when it holds them all (shared/jobs/freshness.py,
# the number `totes status` shows locally), overall (no dimension: watched here) and per Table.
# A load publishes once a run, every 20 minutes, so the period is 30 minutes: every period holds
# at least one datapoint while the workflow runs. Missing data is breaching: a period without
# one means no load committed (or it could not measure, which it logs), and then nobody can say
# the warehouse is fresh; in that case workflow-stale alarms too, a little later. Right after
# the first deploy this is in ALARM until the first load completes.
resource "aws_cloudwatch_metric_alarm" "freshness" {
  alarm_name          = "${var.name_prefix}-freshness"
  alarm_description   = "A source change has waited more than ${var.freshness_limit_minutes} minutes to reach the warehouse (TotesETL/FreshnessMinutes; per table under the Table dimension, `totes status` locally), or no load has published freshness for 30 minutes."
  namespace           = local.metric_namespace
  metric_name         = "FreshnessMinutes"
  statistic           = "Maximum"
  period              = 1800
  evaluation_periods  = 1
  threshold           = var.freshness_limit_minutes
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

# EventBridge could not deliver: to the topic (no failure mail would arrive) or to the run history
# (the two metrics above, and so the stale alarm, would be blind).
resource "aws_cloudwatch_metric_alarm" "delivery_failed" {
  for_each = {
    alert-delivery-failed       = aws_cloudwatch_event_rule.job_failed.name
    run-history-delivery-failed = aws_cloudwatch_event_rule.job_state.name
  }

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "EventBridge rule ${each.value} failed to deliver to its target."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
