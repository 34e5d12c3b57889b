"""The generated Makefile picks an interpreter that runs and makes .venv with uv or pip.

Each test runs the project's real `make test` on a PATH of fakes: interpreters and a `uv` that
log how they were called and do nothing else (no network, no install). So what is checked is
the Makefile's own choice: which interpreter, which installer, with which arguments. The
install itself, from PyPI, is what test_baked_projects.py's `PYTHON=` bake exercises.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import baked

# A Python that answers the Makefile's version question, makes a .venv whose python is a copy
# of itself, and logs every call.
FAKE_PYTHON = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case "$*" in
  *"-m venv"*) mkdir -p .venv/bin && cp "$0" .venv/bin/python ;;
  *version_info*) echo 3.12 ;;
esac
exit 0
"""
# What pyenv's shim does for a version it has but PYENV_VERSION does not name.
FAILING_SHIM = """#!/bin/sh
echo "pyenv: $(basename "$0"): command not found" >&2
exit 127
"""
FAKE_UV = """#!/bin/sh
echo "uv $*" >> "$FAKE_LOG"
case "$1" in
  venv) mkdir -p .venv/bin && cp "$FAKE_PYTHON_SOURCE" .venv/bin/python ;;
esac
exit 0
"""
# The tools the Makefile's recipes use besides the interpreters: from this machine.
TOOLS = ["sh", "make", "rm", "test", "touch", "mkdir", "cp", "basename", "cat", "awk", "env"]


@pytest.fixture(scope="module")
def project(cookies_session) -> Path:
    return baked(cookies_session, event_source="sqs", project_name="Acme Orders")


def _script(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_test(
    tmp_path: Path, project: Path, *, pythons: dict[str, str], uv: bool, args: list[str] = ()
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``make test`` in a fresh copy of ``project``, on a PATH holding only ``pythons`` (name:
    script), ``uv`` if asked, and the shell tools; the result and the fakes' log lines."""
    work = tmp_path / "project"
    shutil.copytree(project, work, ignore=shutil.ignore_patterns(".venv"))
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (fakes / tool).symlink_to(found)
    for name, text in pythons.items():
        _script(fakes, name, text)
    source = _script(tmp_path, "fake-python", FAKE_PYTHON)
    if uv:
        _script(fakes, "uv", FAKE_UV)
    log = tmp_path / "calls.log"
    log.touch()
    env = {
        "PATH": str(fakes),
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        "FAKE_PYTHON_SOURCE": str(source),
    }
    result = subprocess.run(
        ["make", "test", *args], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    return result, log.read_text(encoding="utf-8").splitlines()


def test_a_runtime_shim_that_fails_falls_back_to_python3(tmp_path, project):
    result, calls = make_test(
        tmp_path,
        project,
        pythons={"python3.13": FAILING_SHIM, "python3": FAKE_PYTHON},
        uv=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no interpreter" not in result.stderr
    assert "python3 -m venv .venv" in calls
    assert not any(call.startswith("python3.13") for call in calls)
    assert "python -m pip install --quiet -r requirements-dev.txt" in calls
    assert calls[-1] == "python -m pytest"


def test_the_runtime_is_used_when_it_runs(tmp_path, project):
    result, calls = make_test(
        tmp_path,
        project,
        pythons={"python3.13": FAKE_PYTHON, "python3": FAILING_SHIM},
        uv=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "python3.13 -m venv .venv" in calls


def test_python_on_the_command_line_still_wins(tmp_path, project):
    result, calls = make_test(
        tmp_path,
        project,
        pythons={"python3.13": FAKE_PYTHON, "python3.12": FAKE_PYTHON},
        uv=False,
        args=["PYTHON=python3.12"],
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "python3.12 -m venv .venv" in calls
    assert not any(call.startswith("python3.13 -m venv") for call in calls)


def test_with_uv_on_path_uv_makes_the_venv_and_installs(tmp_path, project):
    result, calls = make_test(
        tmp_path,
        project,
        pythons={"python3.13": FAILING_SHIM, "python3": FAKE_PYTHON},
        uv=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    interpreter = str(tmp_path / "bin" / "python3")
    assert f"uv venv --quiet --python {interpreter} .venv" in calls
    assert "uv pip install --quiet --python .venv/bin/python -r requirements-dev.txt" in calls
    assert not any("-m pip" in call or "-m venv" in call for call in calls)
    assert calls[-1] == "python -m pytest"


def test_uv_empty_on_the_command_line_chooses_pip(tmp_path, project):
    result, calls = make_test(
        tmp_path, project, pythons={"python3": FAKE_PYTHON}, uv=True, args=["UV="]
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(call.startswith("uv ") for call in calls)
    assert "python3 -m venv .venv" in calls


def test_no_interpreter_that_runs_stops_with_one_line_that_says_so(tmp_path, project):
    result, calls = make_test(
        tmp_path,
        project,
        pythons={"python3.13": FAILING_SHIM, "python3": FAILING_SHIM},
        uv=True,
    )

    assert result.returncode != 0
    assert "error: interpreter 'python3' does not run" in result.stderr
    assert not (tmp_path / "project" / ".venv").exists()
    assert calls == []
