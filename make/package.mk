# Packaging for AWS Glue: what Terraform uploads (terraform/glue.tf reads dist/).
# Included by the main Makefile (`-include make/package.mk`, after STAMP is defined); every target
# with a `## ` comment shows up in `make help`. Defaults use ?= so the main Makefile's values win.
#
#   dist/shared.zip          the modules of `shared` the Glue scripts import (their import closure),
#                            .py only (--extra-py-files): no local tooling (CLI, embedded PostgreSQL,
#                            ToteSys seeder); pyspark, py4j and boto3 are Glue's own
#   dist/glue_jobs/<job>.py  the three thin scripts Glue runs
#   dist/*.pem               shared/certs/*.pem, the RDS CA bundle (--extra-files), when present
#
# The zip is reproducible (sorted entries, fixed timestamps and permissions): the same source gives
# the same bytes, so `make deploy` re-uploads only what really changed (source_hash = filemd5).
# Built by shared/local/glue_package.py (build-time only, not in the zip). tests/test_package.py runs this
# target and imports the zip in a fresh interpreter.

VENV ?= .venv
PY ?= $(VENV)/bin/python
DIST ?= dist

.PHONY: package
package: $(STAMP) ## build dist/shared.zip, dist/glue_jobs/*.py and the CA bundle for Glue (reproducible; used by deploy)
	$(PY) -m shared.local.glue_package --dist $(DIST)
