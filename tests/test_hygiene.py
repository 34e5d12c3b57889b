"""The generated CI, Dependabot, pre-commit and .gitignore files.

Each bake is checked with the tools GitHub, Dependabot and pre-commit rely on: actionlint,
their published JSON schemas (check-jsonschema's vendored copies) and pre-commit's validator,
all installed from requirements-dev.txt. `test_each_check_refuses_a_broken_file` shows that
each check fails on a broken copy, so a pass means something.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import RUNTIMES, SOURCES, TEMPLATE_DIR, run

BIN = Path(sys.executable).parent  # this venv's actionlint, check-jsonschema, pre-commit, cruft
WORKFLOW = ".github/workflows/ci.yml"
DEPENDABOT = ".github/dependabot.yml"
PRE_COMMIT = ".pre-commit-config.yaml"


def tool(name: str, *args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / name), *args], cwd=cwd, **kwargs)


def passes(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0


@pytest.fixture(scope="module", params=SOURCES)
def project(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    result = cookies_session.bake(
        template=str(TEMPLATE_DIR), extra_context={"event_source": request.param}
    )
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


@pytest.fixture(scope="module")
def one_project(cookies_session: Any) -> Path:
    result = cookies_session.bake(template=str(TEMPLATE_DIR))
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


# Every bake, every source -------------------------------------------------------------------


def test_the_workflow_passes_actionlint(project):
    result = tool("actionlint", "-no-color", WORKFLOW, cwd=project)
    assert passes(result), result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "path"), [("vendor.github-workflows", WORKFLOW), ("vendor.dependabot", DEPENDABOT)]
)
def test_workflow_and_dependabot_config_match_their_schemas(project, schema, path):
    result = tool("check-jsonschema", "--builtin-schema", schema, path, cwd=project)
    assert passes(result), result.stdout + result.stderr


def test_the_pre_commit_config_is_valid(project):
    result = tool("pre-commit", "validate-config", PRE_COMMIT, cwd=project)
    assert passes(result), result.stdout + result.stderr


def test_ci_runs_the_projects_own_checks_and_sam(project):
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    runs = [step["run"] for step in steps if "run" in step]

    assert {"make lint", "make test", "sam validate --lint", "sam build"} <= set(runs)
    for target in ("lint", "test"):  # the targets CI calls exist (dry run: nothing is made)
        result = run(["make", "-n", target], cwd=project)
        assert passes(result), result.stderr
    [cruft] = [step for step in steps if "cruft check" in step.get("run", "")]
    assert cruft["if"] == "hashFiles('.cruft.json') != ''"


# One bake per runtime, or one bake: what does not depend on the source ----------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ci_uses_the_runtimes_python_with_least_privilege_and_major_pins(bake, runtime):
    workflow = yaml.safe_load((bake(runtime=runtime) / WORKFLOW).read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]

    assert workflow["env"]["PYTHON_VERSION"] == runtime.removeprefix("python")
    setups = [step for step in steps if step.get("uses", "").startswith("actions/setup-python@")]
    assert len(setups) == 2  # the test job and the SAM job
    assert all(step["with"]["python-version"] == "${{ env.PYTHON_VERSION }}" for step in setups)
    assert workflow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in workflow["jobs"].values())
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", action) for action in uses), uses


def test_dependabot_watches_both_requirement_files_and_the_actions(one_project):
    updates = yaml.safe_load((one_project / DEPENDABOT).read_text())["updates"]

    watched = {(update["package-ecosystem"], update["directory"]) for update in updates}
    assert watched == {("pip", "/"), ("github-actions", "/")}
    # Dependabot's pip updater reads requirement files in the directory and one level down.
    assert (one_project / "requirements-dev.txt").is_file()
    assert (one_project / "src" / "requirements.txt").is_file()


def test_the_hooks_use_the_tools_make_lint_installs(one_project):
    """One version of ruff and cfn-lint: the venv's, pinned in requirements-dev.txt."""
    config = yaml.safe_load((one_project / PRE_COMMIT).read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    pinned = (one_project / "requirements-dev.txt").read_text()

    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # no second pin in a `rev:`
    assert {hook["id"] for hook in hooks} == {"ruff-check", "ruff-format", "cfn-lint"}
    assert all(hook["entry"].startswith(".venv/bin/") for hook in hooks)
    assert re.search(r"^ruff[<>=]", pinned, re.M)
    assert re.search(r"^cfn-lint[<>=]", pinned, re.M)


def test_the_hooks_pass_on_a_bake_and_stop_a_bad_commit(bake, tmp_path):
    project = bake(project_name="Acme Orders")
    (project / ".venv").symlink_to(sys.prefix)  # as `make` would have made it
    pre_commit = ["env", f"PRE_COMMIT_HOME={tmp_path / 'pre-commit'}", str(BIN / "pre-commit")]
    assert passes(run(["git", "init", "--quiet"], cwd=project))
    assert passes(run(["git", "add", "--all"], cwd=project))
    status = run(["git", "status", "--porcelain", "--ignored"], cwd=project).stdout
    assert "!! .venv" in status  # .gitignore keeps a linked venv out of git too

    clean = run([*pre_commit, "run", "--all-files"], cwd=project)
    assert passes(clean), clean.stdout
    assert clean.stdout.count("Passed") == 3

    (project / "src" / "acme_orders" / "extra.py").write_text("import os\n")
    template = project / "template.yaml"
    template.write_text(template.read_text().replace("Runtime: python3", "Runtime: python2"))
    assert passes(run(["git", "add", "--all"], cwd=project))
    broken = run([*pre_commit, "run", "--all-files"], cwd=project)
    assert not passes(broken)
    assert re.search(r"ruff check\.+Failed", broken.stdout)
    assert re.search(r"cfn-lint .*\.+Failed", broken.stdout)


@pytest.mark.parametrize(
    ("check", "path", "good", "bad"),
    [
        (["actionlint", "-no-color"], WORKFLOW, "persist-credentials:", "persist-credential:"),
        (["actionlint", "-no-color"], WORKFLOW, "hashFiles('.cruft.json')", 'hashFiles("x")'),
        (["actionlint", "-no-color"], WORKFLOW, "actions/checkout@v7", "actions/checkout@v2"),
        (
            ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"],
            WORKFLOW,
            "timeout-minutes: 15",
            "timeout-minutes: soon",
        ),
        (
            ["check-jsonschema", "--builtin-schema", "vendor.dependabot"],
            DEPENDABOT,
            "interval: weekly",
            "interval: weakly",
        ),
        (["pre-commit", "validate-config"], PRE_COMMIT, "language: unsupported", "language: sh"),
    ],
)
def test_each_check_refuses_a_broken_file(one_project, tmp_path, check, path, good, bad):
    text = (one_project / path).read_text()
    assert good in text
    broken = tmp_path / Path(path).name
    broken.write_text(text.replace(good, bad))

    result = tool(check[0], *check[1:], str(broken), cwd=tmp_path)
    assert not passes(result), result.stdout


def test_the_readmes_ci_section_describes_this_project(one_project):
    """templates/readme/common/ci.md.j2, rendered as the generated README includes it."""
    from cookiecutter.environment import StrictEnvironment
    from jinja2 import FileSystemLoader

    context = {"cookiecutter": {"runtime": "python3.12"}}
    env = StrictEnvironment(context=context, loader=FileSystemLoader(TEMPLATE_DIR / "templates"))
    section = env.get_template("readme/common/ci.md.j2").render(**context)

    assert section.startswith("## CI and hooks\n")
    assert "Python 3.12" in section
    named = set(re.findall(r"`([\w./-]+\.(?:ya?ml|txt|toml|json))`", section))
    assert named >= {WORKFLOW, DEPENDABOT, PRE_COMMIT, "requirements-dev.txt", "template.yaml"}
    for name in named - {".cruft.json", "samconfig.toml"}:  # made later, by cruft and sam
        assert (one_project / name).is_file(), name


def test_gitignore_keeps_out_what_tools_leave_behind_but_not_samconfig(bake):
    project = bake()
    git("init", "--quiet", cwd=project)
    left_behind = [
        ".venv",
        ".aws-sam/build/template.yaml",
        "src/orders_service/__pycache__/handler.cpython-313.pyc",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        ".coverage",
        ".idea/workspace.xml",
        ".vscode/settings.json",
        "template.yaml.swp",
        ".DS_Store",
        ".env",
    ]
    kept = [
        "samconfig.toml",
        "README.md.rej",
        "README.md.orig",
        "template.yaml",
        "events/event.json",
    ]

    ignored = run(["git", "check-ignore", *left_behind, *kept], cwd=project).stdout.split()
    assert ignored == left_behind


def git(*args: str, cwd: Path) -> str:
    result = run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args], cwd=cwd
    )
    assert passes(result), result.stderr
    return result.stdout
