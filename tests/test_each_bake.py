"""The quick tier (``make check``): every source bakes, lints clean, and passes its own tests.

Each bake runs ruff and the tests that differ from source to source (its handler, the seam,
bad input, its template, the example's tests), with this interpreter, in one process per
source. ``make test`` runs the full versions instead (tests/test_baked_projects.py: each
project's own ``make test``, ``make lint`` and demo), so these are marked ``quick``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import SOURCES, baked, run

pytestmark = pytest.mark.quick

PER_SOURCE_TESTS = [
    "tests/test_service.py",
    "tests/dedup/test_events.py",
    "tests/dedup/test_seam.py",
    "tests/dedup/test_bad_input.py",
    "tests/dedup/test_template.py",
]


@pytest.fixture(scope="module", params=SOURCES)
def project(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    return baked(cookies_session, event_source=request.param, project_name="Acme Orders")


def test_it_is_ruff_clean(project):
    for command in (["check", "."], ["format", "--check", "."]):
        result = run([sys.executable, "-m", "ruff", *command], cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr


def test_its_per_source_tests_pass(project):
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PER_SOURCE_TESTS],
        cwd=project,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


# What the owner's code may call that the bake itself need not: effects' writes beyond the one
# the example makes, the Lambda context's request id (read by some sources only), and the
# package's __getattr__, which Python calls for the flat layout's `from . import effects`.
OWNERS_API = {"condition_check", "delete", "aws_request_id", "__getattr__"}


def test_no_generated_module_holds_code_that_nothing_in_its_bake_calls(project):
    result = run(
        [sys.executable, "-m", "vulture", "src", "tools", "tests", "--min-confidence", "60"],
        cwd=project,
    )
    unused = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("src/") and line.split("'")[1] not in OWNERS_API
    ]
    assert unused == []
