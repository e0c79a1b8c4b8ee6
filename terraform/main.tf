# Names and facts shared by every file of the stack.
#
# Layout: kms.tf (the one customer key), s3.tf (buckets), network.tf (VPC the jobs run in),
# secrets.tf, iam.tf (the Glue role), glue.tf (catalog, connections, jobs, workflow),
# athena.tf, monitoring.tf (SNS, EventBridge, alarms), outputs.tf.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Bucket names are global: the account id and region make them unique without a random suffix,
  # so a re-created stack gets the same names back.
  bucket_suffix = "${local.account_id}-${local.region}"

  # What `make package` builds (dist/ is git-ignored); `make deploy` runs it first.
  dist_dir = "${path.module}/../dist"

  workflow_name = "${var.name_prefix}-etl"

  # Custom CloudWatch namespace: metric filters in monitoring.tf publish here, and the Glue role
  # may publish here too (e.g. rows quarantined), besides Glue's own "Glue" namespace.
  metric_namespace = "TotesETL"

  # The two PostgreSQL databases the jobs talk to. Keys name the Glue connections and secrets.
  databases = {
    totesys   = var.totesys_database
    warehouse = var.warehouse_database
  }
}
