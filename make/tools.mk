# Tool virtualenvs under .tools/: linters and scanners that must not share .venv with the jobs
# (checkov pins an old boto3; pip-audit must not audit itself). Included by the main Makefile.
#
#   $(call tool_venv,PYTHON,VENV,PIP REQUIREMENTS) in the recipe of VENV's stamp file: creates the
#   virtualenv from scratch, installs the pinned requirements, then touches the stamp ($@).
#   $(call pip_install,VENV'S PYTHON,REQUIREMENTS): the latest pip and what `pip install REQUIREMENTS`
#   would install there, by uv when it is installed (a recipe using it has `| $(UV)` as a prerequisite),
#   compiled to bytecode as it is installed (pip does that by default, uv when asked): a Python that
#   runs with PYTHONDONTWRITEBYTECODE set, as this machine's does, otherwise compiles every module it
#   imports from source in every process, about 0.9 s for what `totes run` imports (pyspark, pandas,
#   pyarrow): 1.26 s to 0.36 s measured on the 2-core machine, for each `totes` process and pytest worker.
#
# Every virtualenv is filled by uv (pinned, from PyPI, in its own .tools/uv): with the same
# requirements, it resolves what pip does and installs it in parallel, which on the 2-core machine
# takes the project's .venv from about 85 s (pip, one package after the other, PyPI only) to about
# 30 s on a fresh machine. If uv cannot be installed, pip does the work, as it did before.
UV_VERSION ?= 0.13.9
UV_VENV ?= .tools/uv
UV := $(UV_VENV)/bin/uv

$(UV):
	@command -v $(or $(PYTHON),python3) >/dev/null || { echo "need $(or $(PYTHON),python3) to create $(UV_VENV)"; exit 1; }
	$(or $(PYTHON),python3) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)' \
	  || { echo "uv could not be installed: pip installs everything instead"; rm -f $(UV); }

define pip_install
	if [ -x $(UV) ]; then $(UV) pip install --quiet --compile-bytecode --python $(1) --upgrade-package pip pip $(2); \
	else $(1) -m pip install --quiet --upgrade pip && $(1) -m pip install --quiet $(2); fi
endef

define tool_venv
	@command -v $(1) >/dev/null || { echo "need $(1) to create $(2)"; exit 1; }
	rm -rf $(2)
	$(1) -m venv $(2)
	$(call pip_install,$(2)/bin/python,$(3))
	touch $@
endef
