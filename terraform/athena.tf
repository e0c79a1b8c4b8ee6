# Athena over the star schema in the Glue Data Catalog.
#
# The workgroup enforces its own settings (results in the athena bucket, encrypted with the
# stack's key, a per-query scan limit), so a client cannot write unencrypted results elsewhere.
# The named queries answer the business questions. Two things every query respects:
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
      query       = <<-SQL
        -- Sales value per month and currency. Partition filter on created_year prunes old months.
        WITH latest AS (
          SELECT f.*,
                 row_number() OVER (
                   PARTITION BY f.sales_order_id
                   ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
                 ) AS version_rank
          FROM fact_sales_order f
          WHERE f.created_year >= year(current_date) - 1
        )
        SELECT l.created_year,
               l.created_month,
               c.currency_code,
               sum(l.units_sold * l.unit_price) AS sales_value,
               sum(l.units_sold)                AS units_sold,
               count(*)                         AS orders
        FROM latest l
        JOIN dim_currency c ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1
        GROUP BY l.created_year, l.created_month, c.currency_code
        ORDER BY l.created_year, l.created_month, c.currency_code;
      SQL
    }

    top-designs-by-units-sold = {
      description = "The 20 designs with most units sold in the last 12 months"
      query       = <<-SQL
        WITH latest AS (
          SELECT f.*,
                 row_number() OVER (
                   PARTITION BY f.sales_order_id
                   ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
                 ) AS version_rank
          FROM fact_sales_order f
          -- prune to the partitions that can hold the last 12 months, then filter exactly
          WHERE f.created_year >= year(current_date) - 1
        )
        SELECT d.design_id,
               d.design_name,
               sum(l.units_sold) AS units_sold,
               count(*)          AS orders
        FROM latest l
        JOIN dim_design d ON d.design_id = l.design_id
        WHERE l.version_rank = 1
          AND l.created_date >= date_add('month', -12, current_date)
        GROUP BY d.design_id, d.design_name
        ORDER BY units_sold DESC
        LIMIT 20;
      SQL
    }

    sales-by-staff-and-department = {
      description = "Sales value per salesperson and department this year, by currency"
      query       = <<-SQL
        WITH latest AS (
          SELECT f.*,
                 row_number() OVER (
                   PARTITION BY f.sales_order_id
                   ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
                 ) AS version_rank
          FROM fact_sales_order f
          WHERE f.created_year = year(current_date)
        )
        SELECT s.department_name,
               s.staff_id,
               s.first_name,
               s.last_name,
               c.currency_code,
               sum(l.units_sold * l.unit_price) AS sales_value,
               count(*)                         AS orders
        FROM latest l
        JOIN dim_staff s    ON s.staff_id = l.sales_staff_id
        JOIN dim_currency c ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1
        GROUP BY s.department_name, s.staff_id, s.first_name, s.last_name, c.currency_code
        ORDER BY s.department_name, sales_value DESC;
      SQL
    }

    payments-outstanding-by-counterparty = {
      description = "Unpaid payments per counterparty and currency (latest version of each payment)"
      query       = <<-SQL
        -- No partition filter on purpose: a payment created years ago can still be unpaid, and an
        -- outstanding balance that silently drops old debts would be wrong. fact_payment is small.
        WITH latest AS (
          SELECT f.*,
                 row_number() OVER (
                   PARTITION BY f.payment_id
                   ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
                 ) AS version_rank
          FROM fact_payment f
        )
        SELECT cp.counterparty_id,
               cp.counterparty_legal_name,
               c.currency_code,
               sum(l.payment_amount) AS amount_outstanding,
               count(*)              AS payments,
               min(l.payment_date)   AS oldest_payment_date
        FROM latest l
        JOIN dim_counterparty cp ON cp.counterparty_id = l.counterparty_id
        JOIN dim_currency c      ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1
          AND NOT l.paid
        GROUP BY cp.counterparty_id, cp.counterparty_legal_name, c.currency_code
        ORDER BY amount_outstanding DESC;
      SQL
    }

    purchase-spend-by-counterparty = {
      description = "Purchase spend per supplier and currency this year and last (latest version of each purchase order)"
      query       = <<-SQL
        WITH latest AS (
          SELECT f.*,
                 row_number() OVER (
                   PARTITION BY f.purchase_order_id
                   ORDER BY f.last_updated_date DESC, f.last_updated_time DESC
                 ) AS version_rank
          FROM fact_purchase_order f
          WHERE f.created_year >= year(current_date) - 1
        )
        SELECT l.created_year,
               cp.counterparty_legal_name,
               c.currency_code,
               sum(l.item_quantity * l.item_unit_price) AS spend,
               count(*)                                 AS purchase_orders
        FROM latest l
        JOIN dim_counterparty cp ON cp.counterparty_id = l.counterparty_id
        JOIN dim_currency c      ON c.currency_id = l.currency_id
        WHERE l.version_rank = 1
        GROUP BY l.created_year, cp.counterparty_legal_name, c.currency_code
        ORDER BY l.created_year DESC, spend DESC;
      SQL
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
