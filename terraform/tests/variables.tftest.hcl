# `terraform test` (Terraform >= 1.7, for mock providers) of the input variables' validation rules:
# each run plans the whole stack against a mocked AWS provider, so it needs no credentials and no
# network, and never touches an account. tests/test_terraform.py runs it on a temporary copy of
# terraform/ with stand-ins for the artefacts `make package` builds (glue.tf hashes them).
#
# A run with expect_failures passes only if that variable's validation refuses the value; a run
# without it must plan cleanly, which shows the refusals come from the rule and not from elsewhere.

mock_provider "aws" {
  # Only what the configuration itself parses or indexes needs a realistic value.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["eu-west-2a"] }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-2" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  alert_email        = "data-team@example.com"
  totesys_database   = { host = "totesys.example.com", dbname = "totesys" }
  warehouse_database = { host = "warehouse.example.com", dbname = "postgres" }
}

# The look-back window is what catches ties and late commits on Glue, whose native JDBC bookmark
# reads strictly after the last value (docs/glue.md): under 1 minute it must be refused.
run "lookback_zero_is_refused" {
  command = plan
  variables { lookback_minutes = 0 }
  expect_failures = [var.lookback_minutes]
}

run "lookback_negative_is_refused" {
  command = plan
  variables { lookback_minutes = -5 }
  expect_failures = [var.lookback_minutes]
}

run "lookback_fraction_is_refused" {
  command = plan
  variables { lookback_minutes = 2.5 }
  expect_failures = [var.lookback_minutes]
}

run "lookback_over_a_week_is_refused" {
  command = plan
  variables { lookback_minutes = 10081 }
  expect_failures = [var.lookback_minutes]
}

run "lookback_one_minute_is_accepted" {
  command = plan
  variables { lookback_minutes = 1 }

  assert {
    condition     = aws_glue_job.this["extract"].default_arguments["--LOOKBACK_MINUTES"] == "1"
    error_message = "the extract must get --LOOKBACK_MINUTES 1"
  }
}

run "lookback_one_week_is_accepted" {
  command = plan
  variables { lookback_minutes = 10080 }
}
