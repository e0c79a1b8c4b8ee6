# Inputs of the stack. Only alert_email, totesys_database and warehouse_database have no default;
# copy terraform.tfvars.example to terraform.tfvars (git-ignored) and fill them in.

variable "aws_region" {
  description = "AWS region for every resource."
  type        = string
  default     = "eu-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like eu-west-2."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (buckets also get the account id and region appended). The workflow is <prefix>-etl."
  type        = string
  default     = "totes"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-16 characters: lower-case letters, digits and hyphens, starting with a letter (it becomes part of S3 bucket names)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "alert_email" {
  description = "Email address subscribed to the alert topic (job failures, stale warehouse). AWS sends a confirmation mail that must be accepted."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an email address."
  }
}

# ---------------------------------------------------------------------------------------------
# Databases. Where they are is configuration; who may log in is a secret (Secrets Manager).
# ---------------------------------------------------------------------------------------------

variable "totesys_database" {
  description = "Where the ToteSys OLTP database is (not secret). Also written into its secret when totesys_credentials is set."
  type = object({
    host   = string
    port   = optional(number, 5432)
    dbname = string
  })
}

variable "warehouse_database" {
  description = "Where the PostgreSQL warehouse is (not secret). Also written into its secret when warehouse_credentials is set."
  type = object({
    host   = string
    port   = optional(number, 5432)
    dbname = string
  })
}

variable "totesys_credentials" {
  description = "Optional ToteSys login. Leave null (the default) and set the secret with `aws secretsmanager put-secret-value` instead, so the password never enters Terraform state."
  type = object({
    username = string
    password = string
  })
  default   = null
  sensitive = true
}

variable "warehouse_credentials" {
  description = "Optional warehouse login. Leave null (the default) and set the secret with `aws secretsmanager put-secret-value` instead, so the password never enters Terraform state."
  type = object({
    username = string
    password = string
  })
  default   = null
  sensitive = true
}

variable "jdbc_enforce_ssl" {
  description = "Glue connections require TLS to the databases (JDBC_ENFORCE_SSL). Turn off only for a database that cannot speak TLS."
  type        = bool
  default     = true
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored. 0 deletes at once (handy for throw-away stacks)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the small VPC the Glue jobs run in (a /24 private and a /24 public subnet are carved from it)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && try(tonumber(split("/", var.vpc_cidr)[1]) <= 22, false)
    error_message = "vpc_cidr must be a CIDR block of /22 or larger."
  }
}

variable "availability_zone" {
  description = "Availability zone of the jobs' subnet (e.g. eu-west-2a). Null picks the region's first available zone."
  type        = string
  default     = null
}

variable "database_cidr_blocks" {
  description = "Where the jobs may open connections to the databases' ports. Narrow it to the databases' addresses when they are fixed."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.database_cidr_blocks) > 0 && alltrue([for c in var.database_cidr_blocks : can(cidrnetmask(c))])
    error_message = "database_cidr_blocks must be a non-empty list of CIDR blocks."
  }
}

# ---------------------------------------------------------------------------------------------
# Glue
# ---------------------------------------------------------------------------------------------

variable "catalog_database_name" {
  description = "Glue Data Catalog database holding the star schema tables (passed to the jobs as --CATALOG_DATABASE)."
  type        = string
  default     = "totes"

  validation {
    # The same rule the jobs apply to CATALOG_DATABASE (shared/config.py).
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.catalog_database_name))
    error_message = "catalog_database_name must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)."
  }
}

variable "worker_type" {
  description = "Glue worker type of every job."
  type        = string
  default     = "G.1X"

  validation {
    condition     = contains(["G.1X", "G.2X", "G.4X", "G.8X"], var.worker_type)
    error_message = "worker_type must be one of G.1X, G.2X, G.4X, G.8X."
  }
}

variable "number_of_workers" {
  description = "Glue workers per job run (2 is Glue's minimum and plenty for ToteSys' volume)."
  type        = number
  default     = 2

  validation {
    condition     = var.number_of_workers >= 2 && var.number_of_workers <= 50 && floor(var.number_of_workers) == var.number_of_workers
    error_message = "number_of_workers must be a whole number between 2 and 50."
  }
}

variable "extract_timeout_minutes" {
  description = "Minutes before Glue stops an extract run (state TIMEOUT, which alerts)."
  type        = number
  default     = 30

  validation {
    condition     = var.extract_timeout_minutes >= 5 && var.extract_timeout_minutes <= 2880
    error_message = "extract_timeout_minutes must be between 5 and 2880."
  }
}

variable "transform_timeout_minutes" {
  description = "Minutes before Glue stops a transform run (state TIMEOUT, which alerts)."
  type        = number
  default     = 60

  validation {
    condition     = var.transform_timeout_minutes >= 5 && var.transform_timeout_minutes <= 2880
    error_message = "transform_timeout_minutes must be between 5 and 2880."
  }
}

variable "load_timeout_minutes" {
  description = "Minutes before Glue stops a load run (state TIMEOUT, which alerts)."
  type        = number
  default     = 30

  validation {
    condition     = var.load_timeout_minutes >= 5 && var.load_timeout_minutes <= 2880
    error_message = "load_timeout_minutes must be between 5 and 2880."
  }
}

variable "lookback_minutes" {
  # On Glue the native JDBC bookmark reads strictly after the last value (its keys must be strictly
  # increasing), so rows sharing the boundary timestamp or committed late with an earlier one are
  # caught only by this window (docs/glue.md): without it such a row is lost. Hence at least 1,
  # here and in the jobs' configuration on Glue (shared/config.py).
  description = "Extra window every extract re-reads behind its bookmark (--LOOKBACK_MINUTES), in whole minutes: at least 1 (it catches the rows Glue's bookmark skips), at most 10080."
  type        = number
  default     = 5

  validation {
    condition     = var.lookback_minutes >= 1 && var.lookback_minutes <= 10080 && floor(var.lookback_minutes) == var.lookback_minutes
    error_message = "lookback_minutes must be a whole number between 1 and 10080 (one week): on Glue the look-back window is what catches rows committed late or sharing the bookmark's last_updated, so it cannot be turned off."
  }
}

variable "schedule_enabled" {
  description = "Whether the scheduled trigger (every 20 minutes) is active. Set false to deploy without running."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Storage, Athena, monitoring
# ---------------------------------------------------------------------------------------------

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (every object version) and the Athena workgroup's queries. Keep false in production."
  type        = bool
  default     = false
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept in the ingestion, processed and scripts buckets."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "athena_results_retention_days" {
  description = "Days Athena query results are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.athena_results_retention_days >= 1
    error_message = "athena_results_retention_days must be at least 1."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena cancels a query of the workgroup that scans more than this many bytes (cost guard)."
  type        = number
  default     = 10737418240 # 10 GiB

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10 MiB (Athena's minimum)."
  }
}

variable "log_retention_days" {
  description = "Retention of the log groups this stack creates (job-run events, VPC flow logs live in S3)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...)."
  }
}

variable "freshness_limit_minutes" {
  description = "Alarm when a source change has waited longer than this for the warehouse (SPEC.md: 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.freshness_limit_minutes >= 1 && var.freshness_limit_minutes <= 1440
    error_message = "freshness_limit_minutes must be between 1 and 1440."
  }
}

variable "stale_after_minutes" {
  description = "Alarm when no workflow run has completed (load SUCCEEDED) for this many minutes. The schedule is every 20 minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.stale_after_minutes >= 30 && var.stale_after_minutes <= 1440 && var.stale_after_minutes % 5 == 0
    error_message = "stale_after_minutes must be a multiple of 5 between 30 and 1440."
  }
}
