# The Glue side: catalog database, security configuration, JDBC connections, the uploaded code,
# the three jobs and the workflow that chains them.
#
# Contract with the Python side (glue_jobs/<job>.py -> shared.runtime.glue):
#   script   s3://<scripts>/glue_jobs/<job>.py, library s3://<scripts>/lib/shared.zip (--extra-py-files)
#   CA       s3://<scripts>/lib/rds-global-bundle.pem (--extra-files, which Glue copies into the
#            script's working directory): the RDS certificate authorities the jobs verify the
#            databases' certificates against (sslmode=verify-full)
#   args     --LAKE_ROOT --INGESTION_ROOT --CATALOG_DATABASE --TOTESYS_SECRET_ID
#            --WAREHOUSE_SECRET_ID --LOOKBACK_MINUTES (plus Glue's own --JOB_NAME, --TempDir ...)
#   secrets  JSON {host, port, dbname, username, password} (secrets.tf)

locals {
  jobs = {
    extract = {
      description = "ToteSys tables over JDBC -> new JSON objects in the ingestion zone"
      timeout     = var.extract_timeout_minutes
      arguments = {
        # JDBC bookmarks on each table's last_updated: only changed rows are read. The one job with
        # a bookmarked source, so the one `aws glue reset-job-bookmark` means something for.
        "--job-bookmark-option"   = "job-bookmark-enable"
        "--spark-event-logs-path" = "s3://${local.buckets.scripts}/spark-ui/extract/"
      }
    }
    transform = {
      description = "New ingestion runs -> star schema Parquet in the processed zone, registered in the catalog"
      timeout     = var.transform_timeout_minutes
      arguments = {
        # No bookmarked source (its reads are plain spark.read): its progress is the lake's
        # manifests and _state/bookmarks/transform.json (docs/glue.md explains why not S3 file
        # bookmarks). Disabled, so that reset-job-bookmark does not look meaningful here. The job
        # still calls job.init and job.commit, as Glue's own scripts do under "disable", its default.
        "--job-bookmark-option"   = "job-bookmark-disable"
        "--spark-event-logs-path" = "s3://${local.buckets.scripts}/spark-ui/transform/"
      }
    }
    load = {
      description = "Star schema published since the last load -> PostgreSQL warehouse, in one transaction"
      timeout     = var.load_timeout_minutes
      arguments = {
        # No bookmarked source either: progress is _state/bookmarks/load.json, what the transform
        # published since the last load. Disabled, as for transform.
        "--job-bookmark-option"   = "job-bookmark-disable"
        "--spark-event-logs-path" = "s3://${local.buckets.scripts}/spark-ui/load/"
      }
    }
  }

  job_names = { for name in keys(local.jobs) : name => "${var.name_prefix}-${name}" }

  # Every job gets these; local.jobs[*].arguments adds the per-job ones.
  #
  # No --enable-continuous-cloudwatch-log: it is a Glue 4.0-and-earlier option. On Glue 5.0 every
  # job logs in real time, system, Spark and GlueLogger logs to the /aws-glue/jobs/error log group,
  # the script's stdout and stderr (the jobs' one-line reports and failures) to /aws-glue/jobs/output
  # (AWS Glue Developer Guide, "Logging for AWS Glue jobs",
  # https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html, and "Enabling
  # continuous logging for AWS Glue 4.0 and earlier jobs").
  common_job_arguments = {
    "--LAKE_ROOT"                    = "s3://${aws_s3_bucket.this["processed"].bucket}/"
    "--INGESTION_ROOT"               = "s3://${aws_s3_bucket.this["ingestion"].bucket}/"
    "--CATALOG_DATABASE"             = aws_glue_catalog_database.this.name
    "--TOTESYS_SECRET_ID"            = aws_secretsmanager_secret.database["totesys"].arn
    "--WAREHOUSE_SECRET_ID"          = aws_secretsmanager_secret.database["warehouse"].arn
    "--LOOKBACK_MINUTES"             = tostring(var.lookback_minutes)
    "--TempDir"                      = "s3://${aws_s3_bucket.this["scripts"].bucket}/temp/"
    "--extra-py-files"               = "s3://${aws_s3_bucket.this["scripts"].bucket}/${aws_s3_object.library.key}"
    "--extra-files"                  = "s3://${aws_s3_bucket.this["scripts"].bucket}/${aws_s3_object.rds_ca_bundle.key}"
    "--job-language"                 = "python"
    "--enable-glue-datacatalog"      = "true"
    "--enable-metrics"               = "true"
    "--enable-observability-metrics" = "true"
    "--enable-spark-ui"              = "true"
  }
}

resource "aws_glue_catalog_database" "this" {
  name         = var.catalog_database_name
  description  = "Terrific Totes star schema (facts partitioned by created_year, created_month), written by the transform job"
  location_uri = "s3://${aws_s3_bucket.this["processed"].bucket}/processed/"
}

# Encrypts what Glue itself writes: S3 output, the jobs' CloudWatch logs and the job bookmarks.
resource "aws_glue_security_configuration" "this" {
  name = "${var.name_prefix}-etl"

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = aws_kms_key.this.arn
    }

    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = aws_kms_key.this.arn
    }

    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = aws_kms_key.this.arn
    }
  }
}

# One JDBC connection per database. Besides naming the database, a connection is what puts a job
# in the VPC (its subnet and security group). Credentials come from the secret, never from here.
resource "aws_glue_connection" "database" {
  for_each = local.databases

  name            = "${var.name_prefix}-${each.key}"
  description     = "${each.key} PostgreSQL, credentials in Secrets Manager ${aws_secretsmanager_secret.database[each.key].name}"
  connection_type = "JDBC"

  connection_properties = {
    JDBC_CONNECTION_URL = "jdbc:postgresql://${each.value.host}:${each.value.port}/${each.value.dbname}"
    JDBC_ENFORCE_SSL    = tostring(var.jdbc_enforce_ssl)
    SECRET_ID           = aws_secretsmanager_secret.database[each.key].name
  }

  physical_connection_requirements {
    availability_zone      = aws_subnet.private.availability_zone
    subnet_id              = aws_subnet.private.id
    security_group_id_list = [aws_security_group.glue.id]
  }
}

# ---------------------------------------------------------------------------------------------
# Code, from `make package` (dist/ at the repository root).
#
# source_hash rather than etag: the bucket encrypts with SSE-KMS, and the ETag of a KMS-encrypted
# object is not its MD5, so `etag = filemd5(...)` would show a change on every plan. source_hash is
# stored in state only and re-uploads exactly when the local file changes.
# ---------------------------------------------------------------------------------------------

resource "aws_s3_object" "script" {
  for_each = local.jobs

  bucket       = aws_s3_bucket.this["scripts"].id
  key          = "glue_jobs/${each.key}.py"
  source       = "${local.dist_dir}/glue_jobs/${each.key}.py"
  source_hash  = filemd5("${local.dist_dir}/glue_jobs/${each.key}.py")
  content_type = "text/x-python"
  kms_key_id   = aws_kms_key.this.arn
}

resource "aws_s3_object" "library" {
  bucket       = aws_s3_bucket.this["scripts"].id
  key          = "lib/shared.zip"
  source       = "${local.dist_dir}/shared.zip"
  source_hash  = filemd5("${local.dist_dir}/shared.zip")
  content_type = "application/zip"
  kms_key_id   = aws_kms_key.this.arn
}

# The RDS CA bundle `make package` writes to dist/. Under lib/ like the library, so the role's
# ReadScriptsAndLibrary statement (iam.tf) covers it.
resource "aws_s3_object" "rds_ca_bundle" {
  bucket       = aws_s3_bucket.this["scripts"].id
  key          = "lib/rds-global-bundle.pem"
  source       = "${local.dist_dir}/rds-global-bundle.pem"
  source_hash  = filemd5("${local.dist_dir}/rds-global-bundle.pem")
  content_type = "application/x-pem-file"
  kms_key_id   = aws_kms_key.this.arn
}

# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------

resource "aws_glue_job" "this" {
  for_each = local.jobs

  name                   = local.job_names[each.key]
  description            = each.value.description
  role_arn               = aws_iam_role.glue.arn
  glue_version           = "5.0"
  worker_type            = var.worker_type
  number_of_workers      = var.number_of_workers
  timeout                = each.value.timeout
  execution_class        = "STANDARD"
  security_configuration = aws_glue_security_configuration.this.name

  # One automatic retry. The jobs are idempotent (a failed run commits no state, and re-running
  # changes nothing a run already did), so a retry is safe; waiting for the next schedule after one
  # transient failure (a dropped connection, a throttled API) would miss the contract's 30-minute
  # freshness. The retry is a job run of its own (Attempt 1), so the failed attempt still alerts.
  max_retries = 1

  # Both connections share one subnet and security group; Glue places the job by the first.
  connections = [
    aws_glue_connection.database["totesys"].name,
    aws_glue_connection.database["warehouse"].name,
  ]

  command {
    name            = "glueetl"
    python_version  = "3"
    script_location = "s3://${aws_s3_bucket.this["scripts"].bucket}/${aws_s3_object.script[each.key].key}"
  }

  # One run at a time per job: bookmarks and the lake's run state assume it.
  execution_property {
    max_concurrent_runs = 1
  }

  default_arguments = merge(local.common_job_arguments, each.value.arguments)

  depends_on = [aws_iam_role_policy.glue]
}

# ---------------------------------------------------------------------------------------------
# Workflow: every 20 minutes extract, then transform if extract SUCCEEDED, then load if transform
# SUCCEEDED. A run that is still going when the next schedule fires is not doubled
# (max_concurrent_runs = 1 on the workflow as well as on each job).
# ---------------------------------------------------------------------------------------------

resource "aws_glue_workflow" "this" {
  name                = local.workflow_name
  description         = "Terrific Totes ETL: extract -> transform -> load every 20 minutes"
  max_concurrent_runs = 1
}

resource "aws_glue_trigger" "schedule" {
  name          = "${local.workflow_name}-every-20-minutes"
  description   = "Starts the workflow with extract every 20 minutes (UTC)"
  workflow_name = aws_glue_workflow.this.name
  type          = "SCHEDULED"
  schedule      = "cron(0/20 * * * ? *)"
  enabled       = var.schedule_enabled

  actions {
    job_name = aws_glue_job.this["extract"].name
  }
}

resource "aws_glue_trigger" "transform_after_extract" {
  name              = "${local.workflow_name}-transform-after-extract"
  description       = "Runs transform when extract succeeded"
  workflow_name     = aws_glue_workflow.this.name
  type              = "CONDITIONAL"
  start_on_creation = true

  predicate {
    logical = "AND"

    conditions {
      job_name         = aws_glue_job.this["extract"].name
      logical_operator = "EQUALS"
      state            = "SUCCEEDED"
    }
  }

  actions {
    job_name = aws_glue_job.this["transform"].name
  }
}

resource "aws_glue_trigger" "load_after_transform" {
  name              = "${local.workflow_name}-load-after-transform"
  description       = "Runs load when transform succeeded"
  workflow_name     = aws_glue_workflow.this.name
  type              = "CONDITIONAL"
  start_on_creation = true

  predicate {
    logical = "AND"

    conditions {
      job_name         = aws_glue_job.this["transform"].name
      logical_operator = "EQUALS"
      state            = "SUCCEEDED"
    }
  }

  actions {
    job_name = aws_glue_job.this["load"].name
  }
}
