# Terraform and provider versions, and the one AWS provider every resource uses.
#
# State is local by default (terraform/terraform.tfstate, git-ignored). For a shared deployment
# add an S3 backend in a backend.tf of your own (see docs/deploying.md), never commit state:
# it holds the database credentials if you set them through the *_credentials variables.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
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
