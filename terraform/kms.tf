# One customer-managed key for the stack's data at rest: the data buckets, the secrets, the alert
# topic, Glue's logs and bookmarks (security configuration) and the job-run log group.
#
# A customer key rather than the AWS-managed ones because (1) EventBridge and CloudWatch alarms can
# only publish to an encrypted SNS topic whose key policy lets them use the key, which the
# AWS-managed aws/sns key does not, and (2) it gives one place to grant or revoke read access to
# the lake (Athena users need kms:Decrypt on it, through IAM).

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix}: Terrific Totes ETL data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-etl"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  # Key policies always name "*" as the resource: it means "this key".
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is the key itself; the account root statement is the standard delegation to IAM.
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is the key itself; write access is limited by the principals and conditions below.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is the key itself, not every resource.

  statement {
    sid       = "AccountAdministersKeyThroughIAM"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsThisAccountsLogGroups"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  # EventBridge publishes job failures to the encrypted alert topic (monitoring.tf). Granted as the
  # SNS documentation says for AWS event sources and encrypted topics, without conditions: adding
  # aws:SourceAccount or aws:SourceArn to the key policy is not supported for EventBridge to
  # encrypted topics (EventBridge does not send them on this call), and with either condition no
  # failure mail would ever arrive. Who may publish is scoped by the topic policy instead (only the
  # job-failed rule, aws:SourceArn there).
  statement {
    sid       = "EventBridgePublishesToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }

  # CloudWatch alarms publish to the same topic; they send aws:SourceAccount, so it stays scoped.
  statement {
    sid       = "AlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
