# Athena over the star schema in the Glue Data Catalog.
#
# The workgroup enforces its own settings (results in the athena bucket, encrypted with the
# stack's key, a per-query scan limit), so a client cannot write unencrypted results elsewhere.
# The named queries answer the business questions. Their SQL lives in queries/<name>.sql, read with
# file(), so `totes query --saved <name>` runs the very same text locally over the lake (DuckDB;
# README.md lists the dialect differences). Two things every query respects:
#   - Facts keep one row per version of a source row (SPEC §3). Money questions use the latest
#     version of each order or payment: row_number() over (source id, last_updated) = 1.
#   - Facts are partitioned by created_year and created_month (ints). A source row's created_at
#     never changes, so all versions of a row share a partition and filtering on them prunes
#     without losing versions.

resource "aws_athena_workgroup" "this" {
  name          = "${var.name_prefix}-analytics"
  description   = "Queries over the Terrific Totes star schema (database ${var.catalog_database_name})"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.this["athena"].bucket}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.this.arn
      }
    }
  }
}

locals {
  named_queries = {
    monthly-sales-by-currency = {
      description = "Sales value and units per month and currency, this year and last (latest version of each order)"
      query       = file("${path.module}/queries/monthly-sales-by-currency.sql")
    }

    top-designs-by-units-sold = {
      description = "The 20 designs with most units sold in the last 12 months"
      query       = file("${path.module}/queries/top-designs-by-units-sold.sql")
    }

    sales-by-staff-and-department = {
      description = "Sales value per salesperson and department this year, by currency"
      query       = file("${path.module}/queries/sales-by-staff-and-department.sql")
    }

    payments-outstanding-by-counterparty = {
      description = "Unpaid payments per counterparty and currency (latest version of each payment)"
      query       = file("${path.module}/queries/payments-outstanding-by-counterparty.sql")
    }

    purchase-spend-by-counterparty = {
      description = "Purchase spend per supplier and currency this year and last (latest version of each purchase order)"
      query       = file("${path.module}/queries/purchase-spend-by-counterparty.sql")
    }
  }
}

resource "aws_athena_named_query" "this" {
  for_each = local.named_queries

  name        = "${var.name_prefix}-${each.key}"
  description = each.value.description
  workgroup   = aws_athena_workgroup.this.id
  database    = aws_glue_catalog_database.this.name
  query       = each.value.query
}
