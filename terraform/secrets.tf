# The two database secrets, read by the jobs (--TOTESYS_SECRET_ID, --WAREHOUSE_SECRET_ID) and by
# the Glue connections (SECRET_ID).
#
# Each secret's value is one JSON document:
#   {"host": "...", "port": 5432, "dbname": "...", "username": "...", "password": "..."}
# Terraform creates the secrets empty. Put the value with
#   aws secretsmanager put-secret-value --secret-id <output totesys_secret_arn> --secret-string file://totesys.json
# (docs/deploying.md), so no password is ever in code, variables files or Terraform state.
# Setting var.totesys_credentials / var.warehouse_credentials instead is supported for throw-away
# stacks; the password then is in the state, which must be protected accordingly.

locals {
  database_credentials = {
    totesys   = var.totesys_credentials
    warehouse = var.warehouse_credentials
  }
}

resource "aws_secretsmanager_secret" "database" {
  for_each = local.databases

  name                    = "${var.name_prefix}/${each.key}"
  description             = "${each.key} PostgreSQL login for the Terrific Totes ETL: JSON with host, port, dbname, username, password"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days

  #checkov:skip=CKV2_AWS_57:The databases are owned outside this stack (ToteSys read-only credentials are issued to us); rotation belongs with their owner, and needs a rotation Lambda with admin rights on the database.
}

resource "aws_secretsmanager_secret_version" "database" {
  # Only when the optional sensitive credentials variable is set (default null: none). Whether a
  # login was given is not secret, and for_each refuses sensitive values, hence nonsensitive().
  for_each = toset([for name in keys(local.databases) : name if nonsensitive(local.database_credentials[name] != null)])

  secret_id = aws_secretsmanager_secret.database[each.key].id
  secret_string = jsonencode({
    host     = local.databases[each.key].host
    port     = local.databases[each.key].port
    dbname   = local.databases[each.key].dbname
    username = local.database_credentials[each.key].username
    password = local.database_credentials[each.key].password
  })
}
