"""Shared helpers for the template's tests: the offered choices and a baking fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
SOURCES: list[str] = COOKIECUTTER_JSON["event_source"]
RUNTIMES: list[str] = COOKIECUTTER_JSON["runtime"]
ARCHITECTURES: list[str] = COOKIECUTTER_JSON["architecture"]


@pytest.fixture
def bake(cookies: Any) -> Callable[..., Path]:
    """``bake(**answers)``: the baked project's path; fails the test if baking fails."""

    def _bake(**answers: str) -> Path:
        result = cookies.bake(template=str(TEMPLATE_DIR), extra_context=answers)
        assert result.exit_code == 0, result.exception
        return Path(result.project_path)

    return _bake


def run(command: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as a user would: no AWS settings, Python paths or make flags of ours."""
    ours = ("AWS_", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, **kwargs
    )


def cookiecutter_cli(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The cookiecutter command line, from the interpreter running these tests."""
    return run([sys.executable, "-m", "cookiecutter", *args], cwd=cwd, **kwargs)
