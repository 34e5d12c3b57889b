"""Shared helpers for the template's tests: the offered choices and a baking fixture."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
SOURCES: list[str] = COOKIECUTTER_JSON["event_source"]
# What each source is (family, batch, ordered, parallel, http): the table the templates read.
CAPABILITIES: dict[str, dict[str, Any]] = COOKIECUTTER_JSON["_sources"]
# The first offered source of each family: where a check's result cannot differ between the
# sources of one family (they share the code and files it looks at), it runs on this one.
FAMILIES = dict.fromkeys(CAPABILITIES[source]["family"] for source in SOURCES)
ONE_PER_FAMILY: list[str] = [
    next(source for source in SOURCES if CAPABILITIES[source]["family"] == family)
    for family in FAMILIES
]
RUNTIMES: list[str] = COOKIECUTTER_JSON["runtime"]
ARCHITECTURES: list[str] = COOKIECUTTER_JSON["architecture"]


def baked(cookies: Any, **answers: str) -> Path:
    """Bake with ``cookies`` (pytest-cookies' fixture, or its session-wide one) and these
    answers; the project's path. Fails the test if baking fails."""
    result = cookies.bake(template=str(TEMPLATE_DIR), extra_context=answers)
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


@pytest.fixture
def bake(cookies: Any) -> Callable[..., Path]:
    """``bake(**answers)``: the baked project's path; fails the test if baking fails."""
    return lambda **answers: baked(cookies, **answers)


def run(command: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as a user would: no AWS settings, Python paths or make flags of ours,
    and every installed Python reachable as python3.x (pyenv's shims want PYENV_VERSION)."""
    ours = ("AWS_", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    if pyenv_versions() and "PYENV_VERSION" not in env:
        env["PYENV_VERSION"] = pyenv_versions()
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, **kwargs
    )


@functools.cache
def pyenv_versions() -> str:
    """Every Python 3 that pyenv has, as PYENV_VERSION takes them; empty without pyenv."""
    if shutil.which("pyenv") is None:
        return ""
    listed = subprocess.run(
        ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False
    ).stdout
    return ":".join(version for version in listed.split() if version.startswith("3."))


@functools.cache
def installed_runtimes() -> dict[str, str]:
    """The offered runtimes whose Python is installed here: runtime -> its interpreter."""
    env = {**os.environ, "PYENV_VERSION": pyenv_versions()} if pyenv_versions() else None
    found = {}
    for runtime in RUNTIMES:
        answer = (
            subprocess.run(
                [runtime, "-c", "import sys; print(sys.executable)"],
                capture_output=True,
                text=True,
                check=False,
                env=env,
            )
            if shutil.which(runtime)
            else None
        )
        if answer is not None and answer.returncode == 0:
            found[runtime] = answer.stdout.strip()
    return found


def cookiecutter_cli(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The cookiecutter command line, from the interpreter running these tests."""
    return run([sys.executable, "-m", "cookiecutter", *args], cwd=cwd, **kwargs)
