# The buckets.
#
#   ingestion  what every extract read, as JSON; append-only (--INGESTION_ROOT)
#   processed  the lake root (--LAKE_ROOT): the star schema Parquet under processed/, set-aside
#              rows under quarantine/, run state under _state/
#   scripts    the Glue scripts (glue_jobs/), the library zip (lib/), Glue's TempDir (temp/) and
#              Spark UI event logs (spark-ui/)
#   athena     Athena query results (results/)
#
# Every data bucket: SSE-KMS with the stack's key, versioning (an overwrite or delete can be undone
# for noncurrent_version_retention_days), all public access blocked, ACLs disabled, a TLS-only
# policy, lifecycle housekeeping and server access logs to the access-logs bucket.

locals {
  buckets = {
    ingestion = "${var.name_prefix}-ingestion-${local.bucket_suffix}"
    processed = "${var.name_prefix}-processed-${local.bucket_suffix}"
    scripts   = "${var.name_prefix}-scripts-${local.bucket_suffix}"
    athena    = "${var.name_prefix}-athena-results-${local.bucket_suffix}"
  }

  # Prefixes whose current objects expire, per bucket (on top of the housekeeping rule).
  bucket_expirations = {
    ingestion = {}
    processed = {}
    scripts = {
      temp     = { prefix = "temp/", days = 7 }
      spark-ui = { prefix = "spark-ui/", days = 30 }
    }
    athena = {
      results = { prefix = "results/", days = var.athena_results_retention_days }
    }
  }
}

resource "aws_s3_bucket" "this" {
  for_each = local.buckets

  bucket        = each.value
  force_destroy = var.force_destroy

  #checkov:skip=CKV_AWS_144:Cross-region replication is not needed: the ingestion zone can be re-extracted from ToteSys and everything downstream rebuilt from it; versioning covers accidental deletes.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 event notifications: the workflow is driven by its schedule and Glue bookmarks.
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    # S3 Bucket Keys cut the KMS requests (and cost) of Spark's many small reads and writes.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  # Versioning must be on before noncurrent-version rules mean anything.
  depends_on = [aws_s3_bucket_versioning.this]

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      # Athena results are throw-away; everything else keeps overwritten versions for a while.
      noncurrent_days = each.key == "athena" ? 1 : var.noncurrent_version_retention_days
    }
  }

  dynamic "rule" {
    for_each = local.bucket_expirations[each.key]

    content {
      id     = "expire-${rule.key}"
      status = "Enabled"

      filter {
        prefix = rule.value.prefix
      }

      expiration {
        days = rule.value.days
      }
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  for_each = local.buckets

  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "s3/${each.key}/"
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  # A bucket policy that lands before the public access block can be rejected as public.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Access logs: S3 server access logs of the four buckets (s3/<bucket>/) and VPC flow logs
# (vpc-flow-logs/).
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  bucket        = "${var.name_prefix}-access-logs-${local.bucket_suffix}"
  force_destroy = var.force_destroy

  #checkov:skip=CKV_AWS_18:This is the access-log target bucket; logging it into itself would log every log delivery.
  #checkov:skip=CKV_AWS_144:Access logs are an audit aid, not data to rebuild from; cross-region replication is not worth its cost here.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 event notifications of the log bucket.
  #checkov:skip=CKV_AWS_145:S3 server access logging can only deliver to a bucket encrypted with SSE-S3 (AES256), not SSE-KMS (an AWS constraint).
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  depends_on = [aws_s3_bucket_versioning.access_logs]

  rule {
    id     = "expire-logs"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogsFromTheStacksBuckets"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/s3/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for b in aws_s3_bucket.this : b.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "VpcFlowLogsDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/vpc-flow-logs/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
  }

  statement {
    sid       = "VpcFlowLogsAclCheck"
    actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
    resources = [aws_s3_bucket.access_logs.arn]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
