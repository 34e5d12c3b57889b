# The template's own checks. `make test` makes .venv on first use, so a fresh machine needs
# only python3 and make. To use an interpreter that has requirements-dev.txt: make test PYTHON=python3
PYTHON ?= .venv/bin/python
VENV_READY := $(if $(filter .venv/bin/python,$(PYTHON)),.venv/.installed)

.PHONY: test clean

test: $(VENV_READY)  ## bake every offered choice and run each baked project's own checks
	$(PYTHON) -m pytest

clean:
	rm -rf .venv .pytest_cache

.venv/.installed: requirements-dev.txt {{cookiecutter.project_slug}}/requirements-dev.txt
	python3 -m venv .venv
	.venv/bin/python -m pip install --quiet --upgrade pip
	.venv/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $@
