# What you need after `terraform apply` (docs/deploying.md uses these names).

output "region" {
  description = "Region the stack is in."
  value       = local.region
}

output "buckets" {
  description = "Bucket names by role: ingestion, processed (the lake root), scripts, athena, access_logs."
  value = merge(
    { for role, bucket in aws_s3_bucket.this : role => bucket.bucket },
    { access_logs = aws_s3_bucket.access_logs.bucket },
  )
}

output "ingestion_bucket" {
  description = "Ingestion zone bucket (--INGESTION_ROOT)."
  value       = aws_s3_bucket.this["ingestion"].bucket
}

output "processed_bucket" {
  description = "Processed zone bucket, the lake root (--LAKE_ROOT)."
  value       = aws_s3_bucket.this["processed"].bucket
}

output "scripts_bucket" {
  description = "Bucket holding the Glue scripts, library zip and Glue temp dir."
  value       = aws_s3_bucket.this["scripts"].bucket
}

output "athena_results_bucket" {
  description = "Bucket holding Athena query results."
  value       = aws_s3_bucket.this["athena"].bucket
}

output "glue_job_names" {
  description = "Glue job names by step."
  value       = { for step, job in aws_glue_job.this : step => job.name }
}

output "workflow_name" {
  description = "Glue workflow to start by hand: aws glue start-workflow-run --name <this>."
  value       = aws_glue_workflow.this.name
}

output "catalog_database" {
  description = "Glue Data Catalog database holding the star schema tables."
  value       = aws_glue_catalog_database.this.name
}

output "glue_connection_names" {
  description = "Glue JDBC connections by database (test them in the Glue console once the secrets are set)."
  value       = { for db, conn in aws_glue_connection.database : db => conn.name }
}

output "glue_role_arn" {
  description = "IAM role the jobs run as."
  value       = aws_iam_role.glue.arn
}

output "athena_workgroup" {
  description = "Athena workgroup to run the named queries in."
  value       = aws_athena_workgroup.this.name
}

output "athena_named_queries" {
  description = "Named query ids by name (Athena console > Saved queries)."
  value       = { for name, q in aws_athena_named_query.this : name => q.id }
}

output "totesys_secret_arn" {
  description = "Secret to fill with the ToteSys login JSON (aws secretsmanager put-secret-value)."
  value       = aws_secretsmanager_secret.database["totesys"].arn
}

output "warehouse_secret_arn" {
  description = "Secret to fill with the warehouse login JSON (aws secretsmanager put-secret-value)."
  value       = aws_secretsmanager_secret.database["warehouse"].arn
}

output "alerts_topic_arn" {
  description = "SNS topic of the alerts; confirm the email subscription AWS sent to alert_email."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  description = "CloudWatch alarms of the stack."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.job_run_failed.alarm_name,
      aws_cloudwatch_metric_alarm.workflow_stale.alarm_name,
      aws_cloudwatch_metric_alarm.freshness.alarm_name,
    ],
    [for a in aws_cloudwatch_metric_alarm.delivery_failed : a.alarm_name],
  )
}

output "job_run_history_log_group" {
  description = "CloudWatch log group with every state change of the three jobs."
  value       = aws_cloudwatch_log_group.job_runs.name
}

output "kms_key_arn" {
  description = "Key encrypting the lake, secrets, logs and alerts; Athena users need kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}

output "nat_public_ip" {
  description = "The one address the databases see the jobs connect from: allow-list it on their firewalls."
  value       = aws_eip.nat.public_ip
}
