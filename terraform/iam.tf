# The role the three Glue jobs run as, with a scoped inline policy instead of the broad
# service-role/AWSGlueServiceRole (which grants glue:* and s3 on every aws-glue-* bucket).
# Each statement says what in the jobs needs it.

data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "glue" {
  name               = "${var.name_prefix}-glue-jobs"
  description        = "Runs the Terrific Totes extract, transform and load Glue jobs"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

resource "aws_iam_role_policy" "glue" {
  name   = "${var.name_prefix}-glue-jobs"
  role   = aws_iam_role.glue.id
  policy = data.aws_iam_policy_document.glue.json
}

locals {
  glue_arn_prefix = "arn:${local.partition}:glue:${local.region}:${local.account_id}"
  ec2_arn_prefix  = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  logs_arn_prefix = "arn:${local.partition}:logs:${local.region}:${local.account_id}"
}

data "aws_iam_policy_document" "glue" {
  statement {
    sid = "ListTheStacksBuckets"
    actions = [
      "s3:ListBucket",
      "s3:GetBucketLocation",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [
      aws_s3_bucket.this["ingestion"].arn,
      aws_s3_bucket.this["processed"].arn,
      aws_s3_bucket.this["scripts"].arn,
    ]
  }

  # Extract writes new JSON objects; transform reads them. Spark's output committer writes under
  # _temporary/ and deletes it, hence DeleteObject. History stays safe: the bucket is versioned and
  # the role has no s3:DeleteObjectVersion, so a delete only adds a delete marker.
  statement {
    sid = "IngestionZone"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.this["ingestion"].arn}/*"]
  }

  # Transform writes the star schema, quarantine and run state; load reads them.
  statement {
    sid = "LakeRoot"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.this["processed"].arn}/*"]
  }

  statement {
    sid     = "ReadScriptsAndLibrary"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.this["scripts"].arn}/glue_jobs/*",
      "${aws_s3_bucket.this["scripts"].arn}/lib/*",
    ]
  }

  statement {
    sid = "TempDirAndSparkUiLogs"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [
      "${aws_s3_bucket.this["scripts"].arn}/temp/*",
      "${aws_s3_bucket.this["scripts"].arn}/spark-ui/*",
    ]
  }

  # SSE-KMS objects, the encrypted secrets, and Glue's encrypted logs and bookmarks.
  statement {
    sid = "UseTheStacksKey"
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:DescribeKey",
    ]
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid       = "ReadTheTwoDatabaseSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for s in aws_secretsmanager_secret.database : s.arn]
  }

  # The transform registers and updates the star tables (CREATE DATABASE IF NOT EXISTS calls
  # CreateDatabase and ignores AlreadyExists; CREATE/DROP TABLE, SET LOCATION, RECOVER PARTITIONS).
  # Spark's catalog client also looks up (and if missing creates) the "default" database at start.
  statement {
    sid = "CatalogDatabase"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:CreateDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:DeleteTable",
      "glue:BatchDeleteTable",
      "glue:GetTableVersions",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
      "glue:UpdatePartition",
      "glue:BatchUpdatePartition",
      "glue:DeletePartition",
      "glue:BatchDeletePartition",
      "glue:GetUserDefinedFunction",
      "glue:GetUserDefinedFunctions",
    ]
    resources = [
      "${local.glue_arn_prefix}:catalog",
      "${local.glue_arn_prefix}:database/${var.catalog_database_name}",
      "${local.glue_arn_prefix}:table/${var.catalog_database_name}/*",
      "${local.glue_arn_prefix}:userDefinedFunction/${var.catalog_database_name}/*",
      "${local.glue_arn_prefix}:database/default",
    ]
  }

  statement {
    sid = "OwnJobsConnectionsAndBookmarks"
    actions = [
      "glue:GetConnection",
      "glue:GetJob",
      "glue:GetJobRun",
      "glue:GetJobBookmark",
    ]
    resources = concat(
      [for c in aws_glue_connection.database : c.arn],
      [for name in values(local.job_names) : "${local.glue_arn_prefix}:job/${name}"],
      ["${local.glue_arn_prefix}:catalog"],
    )
  }

  statement {
    sid = "GlueLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:AssociateKmsKey",
    ]
    resources = [
      "${local.logs_arn_prefix}:log-group:/aws-glue/*",
      "${local.logs_arn_prefix}:log-group:/aws-glue/*:log-stream:*",
    ]
  }

  # PutMetricData has no resource; the namespace condition is the scope.
  statement {
    sid       = "GlueAndEtlMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Glue", local.metric_namespace]
    }
  }

  # A job with a connection runs in the VPC: Glue creates, tags and deletes elastic network
  # interfaces in the connection's subnet with this role. Most Describe* calls cannot be scoped.
  statement {
    sid = "DescribeNetworkForVpcConnections"
    actions = [
      "ec2:DescribeVpcEndpoints",
      "ec2:DescribeRouteTables",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "DescribeTheJobVpc"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = [aws_vpc.this.arn]
  }

  statement {
    sid     = "NetworkInterfacesInTheJobSubnet"
    actions = ["ec2:CreateNetworkInterface"]
    resources = [
      "${local.ec2_arn_prefix}:network-interface/*",
      aws_subnet.private.arn,
      aws_security_group.glue.arn,
    ]
  }

  statement {
    sid       = "ManageOwnNetworkInterfaces"
    actions   = ["ec2:DeleteNetworkInterface"]
    resources = ["${local.ec2_arn_prefix}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:Vpc"
      values   = [aws_vpc.this.arn]
    }
  }

  statement {
    sid       = "TagGlueNetworkInterfaces"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["${local.ec2_arn_prefix}:network-interface/*"]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["aws-glue-service-resource"]
    }
  }
}
