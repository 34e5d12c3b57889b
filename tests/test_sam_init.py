"""`sam init --location` with SAM's own flags gives a project that passes its own checks.

Runs the pip-installed SAM CLI from its own virtualenv (`make tools`), as the README shows it.
SAM passes --name as project_name and --architecture as {"architectures": {"value": [...]}},
writes samconfig.toml into ./<name>/, and edits ./<name>/template.yaml for --tracing,
--structured-logging and --application-insights: the project folder must be named <name>.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_baked_projects import USE_PYTHON, make

from conftest import TEMPLATE_DIR

pytestmark = pytest.mark.full  # the full tier only (make test): see README.md

SAM = TEMPLATE_DIR / ".venv" / "tools" / "sam" / "bin" / "sam"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SAM.is_file(), f"missing {SAM}: `make tools` installs it"
    where = tmp_path_factory.mktemp("sam-init")
    context = {"event_source": "kinesis", "runtime": "python3.13"}
    command = [
        *(str(SAM), "init", "--location", str(TEMPLATE_DIR), "--no-input"),
        *("--name", "acme-sam", "--architecture", "x86_64"),
        *("--tracing", "--structured-logging", "--application-insights"),
        *("--extra-context", json.dumps(context)),
    ]
    ours = ("AWS_", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env["SAM_CLI_TELEMETRY"] = "0"
    result = subprocess.run(
        command, cwd=where, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert sorted(p.name for p in where.iterdir()) == ["acme-sam"]  # nothing written beside it
    return where / "acme-sam"


def test_the_project_and_samconfig_share_the_folder_named_by_name(initialised):
    assert (initialised / "samconfig.toml").is_file()
    assert 'stack_name = "acme-sam"' in (initialised / "samconfig.toml").read_text()
    assert (initialised / "src" / "acme_sam" / "handler.py").is_file()


def test_sams_flags_reach_the_template(initialised):
    template = (initialised / "template.yaml").read_text()
    assert "Architectures:\n    - x86_64" in template  # SAM rewrites the file, 2-space lists
    assert "Runtime: python3.13" in template
    assert "Tracing: Active" in template
    assert "ApplicationInsightsMonitoring:" in template
    handler = (initialised / "src" / "acme_sam" / "handler.py").read_text()
    assert "kinesis" in handler.lower()


def test_its_own_tests_and_lint_pass(initialised):
    assert " passed" in make(initialised, "test", USE_PYTHON)
    assert "template.yaml: 0 problem(s)" in make(initialised, "lint", USE_PYTHON)
