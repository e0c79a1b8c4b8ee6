# Packaging for AWS Glue: what Terraform uploads (terraform/glue.tf reads dist/).
# Included by the main Makefile (`-include make/package.mk`, after STAMP is defined); every target
# with a `## ` comment shows up in `make help`. Defaults use ?= so the main Makefile's values win.
#
#   dist/shared.zip          the `shared` package, .py files only (--extra-py-files); pyspark, py4j
#                            and boto3 are Glue's own, so nothing else goes in
#   dist/glue_jobs/<job>.py  the three thin scripts Glue runs
#
# The zip is reproducible (sorted entries, fixed timestamps and permissions): the same source gives
# the same bytes, so `make deploy` re-uploads only what really changed (source_hash = filemd5).
# tests/test_package.py runs this target and imports the zip in a fresh interpreter.

VENV ?= .venv
PY ?= $(VENV)/bin/python
DIST ?= dist

.PHONY: package
package: $(STAMP) ## build dist/shared.zip and dist/glue_jobs/*.py for Glue (reproducible; used by deploy)
	$(PY) -m shared.glue package --dist $(DIST)
