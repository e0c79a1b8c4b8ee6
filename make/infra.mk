# Infrastructure targets: Terraform checks, checkov, the local Glue 5.0 image, deployment.
# Included by the main Makefile (`-include make/infra.mk`); every target with a `## ` comment shows
# up in `make help`. Defaults use ?= so the main Makefile's values win.

VENV ?= .venv
PY ?= $(VENV)/bin/python

TF ?= terraform
TF_DIR ?= terraform
TFVARS ?= $(TF_DIR)/terraform.tfvars

# A filesystem mirror of the providers (these machines carry hashicorp/aws 5.100.0 there). Used as
# -plugin-dir when the folder exists, so `init` needs no network; anywhere else (or with
# TF_PLUGIN_DIR= on the command line) `init` downloads from the registry as usual. The lock file
# init writes (terraform/.terraform.lock.hcl) is git-ignored: one made from this mirror holds only
# the linux_amd64 checksum and would make `init` fail on every other platform; versions.tf pins the
# provider instead (see there).
TF_PLUGIN_DIR ?= /opt/tf-plugins
TF_INIT_FLAGS = -input=false $(if $(TF_PLUGIN_DIR),$(if $(wildcard $(TF_PLUGIN_DIR)/.),-plugin-dir=$(abspath $(TF_PLUGIN_DIR))))
# No upgrade check against checkpoint-api.hashicorp.com (offline machines, reproducible output).
export CHECKPOINT_DISABLE ?= 1

# checkov pins an old boto3, so it lives in its own virtualenv, never in .venv.
CHECKOV_VERSION ?= 3.3.30
# The main Makefile's PYTHON (python3.11) when it has one, else python3.
CHECKOV_PYTHON ?= $(or $(PYTHON),python3)
CHECKOV_VENV ?= .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

DOCKER_ENV ?= docker/.env
COMPOSE ?= docker compose -f docker/docker-compose.yml --env-file $(DOCKER_ENV)
# `make docker-run` seeds the compose ToteSys (once) with the local tooling, in the `glue` service;
# the jobs themselves run in the `jobs` service: spark-submit of dist/glue_jobs/*.py, dist/shared.zip.
DOCKER_SEED_CMD ?= python3 -m shared.local.cli seed --if-empty

.PHONY: tf-fmt tf-init tf-validate tf-check tf-plan checkov-env checkov docker-build docker-test docker-run docker-down deploy destroy

tf-fmt: ## terraform fmt -check over terraform/ (no providers needed)
	$(TF) fmt -check -recursive $(TF_DIR)

# -backend=false: no state and no credentials, so it also works beside a backend.tf of your own.
tf-init: ## terraform init without a backend into terraform/.terraform (providers from TF_PLUGIN_DIR when it exists)
	$(TF) -chdir=$(TF_DIR) init -backend=false $(TF_INIT_FLAGS)

# validate evaluates filemd5("../dist/..."): the artefacts `make package` builds must exist.
tf-validate: package tf-init ## terraform validate of terraform/ against the artefacts `make package` built
	$(TF) -chdir=$(TF_DIR) validate

checkov-env: $(CHECKOV_STAMP) ## create the checkov tool virtualenv (.tools/checkov, pinned version)

$(CHECKOV_STAMP): | $(UV)
	$(call tool_venv,$(CHECKOV_PYTHON),$(CHECKOV_VENV),'checkov==$(CHECKOV_VERSION)')

checkov: $(CHECKOV_STAMP) ## static security checks of terraform/ (0 failed; skips are inline with reasons)
	$(CHECKOV) -d $(TF_DIR) --skip-download --quiet --compact

# TF_CHECK_CHECKOV= leaves checkov out: `make test` does, because pytest runs it already
# (tests/test_terraform.py::test_checkov_reports_no_failed_checks, which also requires a reason on
# every skip), so the stack is not scanned twice.
TF_CHECK_CHECKOV ?= 1
tf-check: tf-fmt tf-validate $(if $(TF_CHECK_CHECKOV),checkov) ## everything that checks Terraform offline: fmt, init, validate (after package), checkov

tf-plan: package ## package, then terraform init + plan with terraform/terraform.tfvars (needs AWS credentials)
	@test -f $(TFVARS) || { echo "$(TFVARS) missing: copy $(TF_DIR)/terraform.tfvars.example and fill it in"; exit 1; }
	$(TF) -chdir=$(TF_DIR) init $(TF_INIT_FLAGS)
	$(TF) -chdir=$(TF_DIR) plan -input=false -var-file=$(abspath $(TFVARS))

deploy: package ## package the jobs, then terraform init + apply with terraform/terraform.tfvars (needs AWS credentials)
	@test -f $(TFVARS) || { echo "$(TFVARS) missing: copy $(TF_DIR)/terraform.tfvars.example and fill it in"; exit 1; }
	$(TF) -chdir=$(TF_DIR) init $(TF_INIT_FLAGS)
	$(TF) -chdir=$(TF_DIR) apply -input=false -var-file=$(abspath $(TFVARS))

destroy: ## terraform destroy with terraform/terraform.tfvars (set force_destroy = true first to empty the buckets)
	@test -f $(TFVARS) || { echo "$(TFVARS) missing"; exit 1; }
	$(TF) -chdir=$(TF_DIR) destroy -input=false -var-file=$(abspath $(TFVARS))

$(DOCKER_ENV):
	@echo "$(DOCKER_ENV) missing: cp docker/.env.template $(DOCKER_ENV) and set the passwords"; exit 1

docker-build: $(DOCKER_ENV) ## build the local Glue 5.0 image (public.ecr.aws/glue/aws-glue-libs:5 + test deps + JDBC)
	$(COMPOSE) build glue

docker-test: $(DOCKER_ENV) ## run pytest inside the Glue 5.0 image (the real Glue Spark and awsglue)
	$(COMPOSE) run --rm --build glue "python3 -m pytest -q -p no:cacheprovider"

docker-run: $(DOCKER_ENV) package ## seed the compose ToteSys, then spark-submit the three Glue scripts (dist/) in the Glue image
	$(COMPOSE) run --rm --build glue "$(DOCKER_SEED_CMD)"
	$(COMPOSE) run --rm --build jobs

docker-down: $(DOCKER_ENV) ## stop the compose databases and delete their volumes and the lake volume
	$(COMPOSE) down --volumes
