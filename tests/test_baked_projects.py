"""Each baked project passes its own checks: a template whose output fails is broken.

Runs the project's Makefile targets in a subprocess, as its user would, with this
interpreter used as it is (USE_PYTHON: it has requirements-dev.txt) in place of the project's
virtualenv. The fresh-machine test makes the virtualenv from PyPI instead, as a new user's
`make test` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ARCHITECTURES, RUNTIMES, SOURCES, TEMPLATE_DIR, run

PYTHON = f"USE_PYTHON={sys.executable}"


@pytest.fixture(scope="module", params=SOURCES)
def project(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    result = cookies_session.bake(
        template=str(TEMPLATE_DIR),
        extra_context={"event_source": request.param, "project_name": "Acme Orders"},
    )
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


def make(target: str, project: Path, *args: str) -> str:
    result = run(["make", target, *args], cwd=project, timeout=600)
    assert result.returncode == 0, f"make {target} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_its_own_tests_pass(project):
    output = make("test", project, PYTHON)
    assert " passed" in output
    assert " failed" not in output


def test_its_own_lint_and_template_checks_pass(project):
    output = make("lint", project, PYTHON)
    assert "All checks passed!" in output
    assert "template.yaml: 0 problem(s)" in output


def test_its_demo_runs_each_unit_once_and_skips_the_copies(project):
    output = make("demo", project, PYTHON)
    event = json.loads((project / "events" / "event.json").read_text())
    units = len(event.get("Records", [event]))

    assert "skipped as a duplicate" in output
    assert f"{units} unit(s) delivered 3 times each; the work ran {units} time(s)." in output


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_runtime_and_architecture_lints_clean(cookies, runtime, architecture):
    result = cookies.bake(
        template=str(TEMPLATE_DIR),
        extra_context={"runtime": runtime, "architecture": architecture},
    )
    make("lint", Path(result.project_path), PYTHON)


def test_an_awkward_long_name_lints_and_tests_clean(cookies):
    result = cookies.bake(
        template=str(TEMPLATE_DIR),
        extra_context={"project_name": "Ça Marche: Über-Long Order Fulfilment API"},
    )
    project = Path(result.project_path)
    assert project.name == "ca-marche-uber-long-order-fulfilment-api"
    make("lint", project, PYTHON)
    make("test", project, PYTHON)


@pytest.mark.fresh_machine
def test_make_test_works_on_a_fresh_machine(cookies):
    """No interpreter handed in: `make test` makes .venv and installs from PyPI itself."""
    result = cookies.bake(template=str(TEMPLATE_DIR))
    project = Path(result.project_path)

    output = make("test", project)
    assert list((project / ".venv").glob(".installed-python3.*"))
    assert " passed" in output
