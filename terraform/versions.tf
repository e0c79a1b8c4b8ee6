# Terraform and provider versions, and the one AWS provider every resource uses.
#
# State is local by default (terraform/terraform.tfstate, git-ignored). For a shared deployment
# add an S3 backend in a backend.tf of your own (see docs/deploying.md), never commit state:
# it holds the database credentials if you set them through the *_credentials variables.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100.0 is the version validated offline (the /opt/tf-plugins mirror, make/infra.mk) and
      # the last 5.x release, so every machine gets it: the lock file is not committed (a lock
      # made from the mirror holds only the linux_amd64 checksum, which breaks init elsewhere).
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project   = "terrific-totes-etl"
      ManagedBy = "terraform"
      Stack     = var.name_prefix
    })
  }
}
