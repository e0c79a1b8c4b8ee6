# Copied by tests/test_emulated_stack.py into a temporary copy of terraform/ only, never into
# terraform/ itself. Each override works around one difference between moto and AWS
# (docs/deploying.md, "Tested against an emulated AWS account"); the real value is still in the
# copy (the data sources below are not overridden) and the tests check it on its own.

# moto applies a bucket policy's Deny without its Condition: the real TLS-only statement would
# refuse every request even over TLS. The emulated policy keeps the statement but scopes it to a
# probe prefix, where a test proves the difference is still there.
resource "aws_s3_bucket_policy" "this" {
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransportMotoProbe"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = "s3:*"
      Resource  = "${aws_s3_bucket.this[each.key].arn}/moto-deny-probe/*"
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

# The same for the access-logs bucket. Two more differences there: moto's PutBucketLogging fails
# (HTTP 500, which the provider retries until it times out) on a target policy with a statement
# whose Principal is the string "*", hence {AWS = "*"} (the same principal) in both probes; and it
# accepts a logging.s3 statement only when its Resource is exactly "<target>/<target prefix>*"
# (or the whole bucket), so the one real statement over s3/* becomes one statement per source
# bucket (narrower, not wider).
resource "aws_s3_bucket_policy" "access_logs" {
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid       = "DenyInsecureTransportMotoProbe"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "s3:*"
        Resource  = "${aws_s3_bucket.access_logs.arn}/moto-deny-probe/*"
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }],
      [for role, bucket in aws_s3_bucket.this : {
        Sid       = "S3ServerAccessLogsFrom${role}"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.access_logs.arn}/s3/${role}/*"
        Condition = {
          ArnLike      = { "aws:SourceArn" = bucket.arn }
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      }],
      [for s in jsondecode(data.aws_iam_policy_document.access_logs.json).Statement : s if startswith(s.Sid, "VpcFlowLogs")],
    )
  })
}

# PutBucketLogging checks the target's policy when it is called: reading the bucket name through
# the access-logs policy orders it after that policy (same value; AWS does not need the order).
resource "aws_s3_bucket_logging" "this" {
  target_bucket = aws_s3_bucket_policy.access_logs.bucket
}

# moto refuses a flow log to an S3 ARN with a prefix ("LogDestination ... does not exist").
resource "aws_flow_log" "this" {
  log_destination = aws_s3_bucket.access_logs.arn
}

# The real trust policy lets only glue.amazonaws.com (from this account) assume the role; moto
# cannot evaluate a Service principal in a trust policy, and the test must assume the role to use
# its permissions. The emulated trust lets exactly the caller running terraform assume it.
resource "aws_iam_role" "glue" {
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TheEmulatedDeployerOnly"
      Effect    = "Allow"
      Principal = { AWS = data.aws_caller_identity.current.arn }
      Action    = "sts:AssumeRole"
    }]
  })
}

# moto's GetConnection leaves ConnectionType out, so every plan after the first would change
# connection_type back to "JDBC" in place, and moto has no UpdateConnection (HTTP 500, which the
# provider retries for minutes). The emulated copy ignores that one attribute: the first apply
# still creates the connection with the real type (the plan the tests read has it), and a second
# plan is checked to change nothing (test_a_second_plan_changes_nothing).
resource "aws_glue_connection" "database" {
  lifecycle {
    ignore_changes = [connection_type]
  }
}
