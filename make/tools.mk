# Tool virtualenvs under .tools/: linters and scanners that must not share .venv with the jobs
# (checkov pins an old boto3; pip-audit must not audit itself). Included by the main Makefile.
#
#   $(call tool_venv,PYTHON,VENV,PIP REQUIREMENTS) in the recipe of VENV's stamp file: creates the
#   virtualenv from scratch, installs the pinned requirements, then touches the stamp ($@).
define tool_venv
	@command -v $(1) >/dev/null || { echo "need $(1) to create $(2)"; exit 1; }
	rm -rf $(2)
	$(1) -m venv $(2)
	$(2)/bin/python -m pip install --quiet --upgrade pip
	$(2)/bin/python -m pip install --quiet $(3)
	touch $@
endef
