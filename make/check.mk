# Security checks: bandit over our code, pip-audit over the installed dependencies.
# Included by the main Makefile (`-include make/check.mk`); `make check` is run by `make test`.
# Both tools live in their own virtualenv (.tools/check, pinned), never in .venv: they are not
# part of what Glue runs, and pip-audit must not audit itself.

VENV ?= .venv
PYTHON ?= python3.11
CHECK_PYTHON ?= $(or $(PYTHON),python3)
CHECK_VENV ?= .tools/check
BANDIT_VERSION ?= 1.9.4
PIP_AUDIT_VERSION ?= 2.10.1
CHECK_STAMP := $(CHECK_VENV)/.installed-$(BANDIT_VERSION)-$(PIP_AUDIT_VERSION)

# Skipped bandit tests, each for the same reason as the matching ruff ignore in pyproject.toml:
#   B101 assert: asserts state invariants in tests and a few internal checks (ruff S101).
#   B608 SQL built from strings: identifiers come only from the contract's allow-list
#        (shared/contract/source.py, shared/contract/star.py); values are always bound (ruff S608).
#        tests/test_security.py::test_only_contract_tables_reach_sql proves the guard.
#   B108 hard-coded /tmp: the only hits are synthetic file_location *data* in shared/local/totesys.py,
#        marked line by line with ruff's S108 noqa (bandit does not read noqa).
BANDIT_SKIPS ?= B101,B608,B108
# Gate on medium or high severity with at least medium confidence; everything is still printed
# by `make bandit-report`.
BANDIT_GATE ?= --severity-level medium --confidence-level medium

.PHONY: check check-env bandit bandit-report audit

check: bandit audit ## security checks: bandit (code) and pip-audit (dependencies)

check-env: $(CHECK_STAMP) ## create the security tools virtualenv (.tools/check, pinned versions)

$(CHECK_STAMP): | $(UV)
	$(call tool_venv,$(CHECK_PYTHON),$(CHECK_VENV),'bandit==$(BANDIT_VERSION)' 'pip-audit==$(PIP_AUDIT_VERSION)')

bandit: $(CHECK_STAMP) ## bandit static analysis of shared/ and glue_jobs/ (fails on medium+ findings)
	$(CHECK_VENV)/bin/bandit -q -r shared glue_jobs -s $(BANDIT_SKIPS) $(BANDIT_GATE)

bandit-report: $(CHECK_STAMP) ## every bandit finding, low severity included (never fails)
	-$(CHECK_VENV)/bin/bandit -r shared glue_jobs

# pip-audit asks PyPI's JSON API for the advisories of each pinned package. Where that API cannot
# be reached (this workplace's package mirror serves only the simple index), pip-audit skips every
# package and finds nothing: that is reported as NOT AUDITED rather than passed off as clean, and
# does not fail the build (AUDIT_STRICT=1 makes it fail). Any vulnerability it does find fails.
AUDIT_STRICT ?= 0
AUDIT_REQUIREMENTS := $(CHECK_VENV)/audited-requirements.txt
AUDIT_REPORT := $(CHECK_VENV)/audit.json

audit: $(CHECK_STAMP) ## pip-audit of the packages installed in .venv (known vulnerabilities)
	@test -x $(VENV)/bin/python || { echo "$(VENV) missing: run make setup"; exit 1; }
	$(VENV)/bin/python -m pip freeze --exclude-editable --all | grep -v -E '^(pip|setuptools|wheel)==|@ ' > $(AUDIT_REQUIREMENTS)
	-$(CHECK_VENV)/bin/pip-audit --disable-pip --no-deps --progress-spinner off -r $(AUDIT_REQUIREMENTS) \
	  -f json -o $(AUDIT_REPORT) 2>/dev/null
	@$(CHECK_VENV)/bin/python -c 'import json, sys; \
	deps = json.load(open(sys.argv[1]))["dependencies"]; \
	vulns = [(d["name"], d["version"], v["id"], ", ".join(v.get("fix_versions", [])) or "no fix") for d in deps for v in d.get("vulns", [])]; \
	skipped = [d["name"] for d in deps if d.get("skip_reason")]; \
	audited = len(deps) - len(skipped); \
	[print(f"VULNERABLE {n} {ver}: {i} (fixed in {f})") for n, ver, i, f in vulns]; \
	print(f"pip-audit: {audited} of {len(deps)} packages audited, {len(vulns)} known vulnerabilities"); \
	skipped and print("NOT AUDITED (no advisory data reachable): " + ", ".join(skipped)); \
	sys.exit(1 if vulns or (skipped and sys.argv[2] == "1") else 0)' $(AUDIT_REPORT) $(AUDIT_STRICT)
