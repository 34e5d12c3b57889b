# The template's own checks. `make test` makes .venv on first use, so a fresh machine needs
# only python3 and make. To use an interpreter that has requirements-dev.txt: make test PYTHON=python3
PYTHON ?= .venv/bin/python
VENV_READY := $(if $(filter .venv/bin/python,$(PYTHON)),.venv/.installed)

# The platform checks (tests/test_platform.py) run the SAM CLI and checkov as a platform team
# would. Each pins its own dependencies (the SAM CLI pins boto3), so each gets a virtualenv of
# its own under .venv/tools, made once; the stamp names the version, so a new pin reinstalls.
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
TOOLS := .venv/tools/sam/installed-$(SAM_CLI_VERSION) .venv/tools/checkov/installed-$(CHECKOV_VERSION)

# The virtualenvs install side by side, each with its own pip (they share pip's cache).
MAKEFLAGS += --jobs=3

.PHONY: check test tools bench clean

check: $(VENV_READY)  ## the quick tier: every source baked, linted and its own tests run (minutes)
	$(PYTHON) -m pytest -m "not full"

# The full tier runs each project's own make test, lint and demo instead of check's quick look.
test: $(VENV_READY) tools  ## the full tier (what CI runs): every project's own checks, every Python, the platform's tools
	$(PYTHON) -m pytest -m "not quick"

tools: $(TOOLS)  ## the SAM CLI and checkov, each in its own virtualenv

bench: $(VENV_READY)  ## the generated dedup against Powertools (docs/PERFORMANCE.md)
	$(PYTHON) -m pip install --quiet -r bench/requirements.txt
	$(PYTHON) bench/run.py --plot docs/batch-curve.png

clean:
	rm -rf .venv .pytest_cache

.venv/.installed: requirements-dev.txt {{cookiecutter.project_slug}}/requirements-dev.txt
	mkdir -p .venv && python3 -m venv .venv
	.venv/bin/python -m pip install --quiet --upgrade pip
	.venv/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $@

.venv/tools/sam/installed-$(SAM_CLI_VERSION):
	rm -rf $(@D) && mkdir -p $(@D) && python3 -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

.venv/tools/checkov/installed-$(CHECKOV_VERSION):
	rm -rf $(@D) && mkdir -p $(@D) && python3 -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@
