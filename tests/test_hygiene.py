"""The generated CI, Dependabot and pre-commit files, and the template README's own commands.

Each bake is checked with the tools GitHub, Dependabot and pre-commit rely on: actionlint,
their published JSON schemas (check-jsonschema's vendored copies) and pre-commit's validator,
all installed from requirements-dev.txt. `test_each_check_refuses_a_broken_file` shows that
each check fails on a broken copy, so a pass means something. The README's commands that need
no network (cookiecutter, cruft create/check/update/link, the conflict searches) run against a
git copy of this template in place of `gh:org/dedup-template`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ONE_PER_FAMILY, RUNTIMES, TEMPLATE_DIR, baked, run

pytestmark = pytest.mark.full  # the full tier only (make test): see README.md

BIN = Path(sysconfig.get_path("scripts"))  # actionlint, check-jsonschema, pre-commit, cruft
WORKFLOW = ".github/workflows/ci.yml"
DEPENDABOT = ".github/dependabot.yml"
PRE_COMMIT = ".pre-commit-config.yaml"
README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
HOSTED = "gh:org/dedup-template"


def tool(name: str, *args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / name), *args], cwd=cwd, **kwargs)


def passes(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0


@pytest.fixture(scope="module", params=ONE_PER_FAMILY)
def project(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    return baked(cookies_session, event_source=request.param)


@pytest.fixture(scope="module")
def one_project(cookies_session: Any) -> Path:
    return baked(cookies_session)


# One bake per source family: these files hold nothing of the source, so a family's bake shows
# whether its templates break them ------------------------------------------------------------


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
    venv = project / ".venv" / "bin"  # what the hooks run, as `make` would have made it
    venv.mkdir(parents=True)
    for name, command in (("python", ""), ("ruff", " -m ruff")):
        (venv / name).write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
        (venv / name).chmod(0o755)
    pre_commit = ["env", f"PRE_COMMIT_HOME={tmp_path / 'pre-commit'}", str(BIN / "pre-commit")]
    assert passes(run(["git", "init", "--quiet"], cwd=project))
    assert passes(run(["git", "add", "--all"], cwd=project))

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
    """templates/common/readme_ci.md.j2, rendered as the generated README includes it."""
    from cookiecutter.environment import StrictEnvironment
    from jinja2 import FileSystemLoader

    context = {"cookiecutter": {"runtime": "python3.12"}}
    env = StrictEnvironment(context=context, loader=FileSystemLoader(TEMPLATE_DIR / "templates"))
    section = env.get_template("common/readme_ci.md.j2").render(**context)

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


# The template README's commands ---------------------------------------------------------------


def readme_commands() -> list[str]:
    """Each command in the README's ```bash blocks, without its trailing comment."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in lines if line.strip()]


def readme_command(start: str, template: Path) -> list[str]:
    """The README's one command that starts with ``start``, aimed at ``template``."""
    [line] = [command for command in readme_commands() if command.startswith(start)]
    words = shlex.split(line.replace(HOSTED, str(template)))
    program = BIN / words[0]
    return [str(program) if program.exists() else words[0], *words[1:]]


def git(*args: str, cwd: Path) -> str:
    result = run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args], cwd=cwd
    )
    assert passes(result), result.stderr
    return result.stdout


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """This template's working tree as a git repository on `main`, as cruft clones it."""
    repo = tmp_path / "dedup-template"
    ignore = shutil.ignore_patterns(".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__")
    shutil.copytree(TEMPLATE_DIR, repo, ignore=ignore)
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "--message=template", cwd=repo)
    return repo


def append(file: Path, line: str) -> None:
    file.write_text(file.read_text() + line + "\n")


def change_template(repo: Path, path: str) -> None:
    """Commit a change to one file of the generated project: a line at its end."""
    append(repo / "{{cookiecutter.project_slug}}" / path, "A change from the template.")
    git("commit", "--quiet", "--all", "--message=template change", cwd=repo)


def test_the_readmes_pinned_refs_exist_in_this_repository():
    refs = {
        ref for command in readme_commands() for ref in re.findall(r"--checkout (\S+)", command)
    }
    assert refs
    for ref in refs:
        found = [
            run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], cwd=TEMPLATE_DIR)
            for name in (ref, f"origin/{ref}")
        ]
        assert any(passes(result) for result in found), f"--checkout {ref}: no such ref"


def test_the_readmes_bake_commands_work_and_say_where_the_project_went(template_repo, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    interactive = readme_command("cookiecutter " + HOSTED, template_repo)
    [shown] = re.findall(r"```\n(Creating .*?)```", README, re.S)  # the output the README shows

    in_a_shell = ["sh", "-c", 'cd "$0" && exec "$@"', str(work)]  # the shell sets $PWD
    result = run([*in_a_shell, *interactive], cwd=work, input="\n" * 7)
    assert passes(result), result.stderr
    assert shown in result.stdout
    assert passes(run(["sh", "-c", "cd orders-service && make -n test"], cwd=work))

    [no_prompts] = re.findall(rf"`(cookiecutter {HOSTED} --no-input [^`]*)`", README)
    words = shlex.split(no_prompts.replace(HOSTED, str(template_repo)))
    assert passes(run([sys.executable, "-m", *words], cwd=work))
    assert (work / "acme-orders" / "src" / "acme_orders" / "handler.py").is_file()


def test_cruft_create_check_and_an_update_with_conflicts_as_the_readme_says(
    template_repo, tmp_path
):
    create = readme_command("cruft create", template_repo)
    result = run([*create, "--no-input", "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert passes(result), result.stdout + result.stderr
    project = tmp_path / "orders-service"
    check = readme_command("cruft check", template_repo)
    update = readme_command("cruft update", template_repo)
    conflicts = readme_command("git diff --name-only --diff-filter=U", template_repo)
    assert passes(run(check, cwd=project))

    git("init", "--quiet", cwd=project)
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "--message=made with cruft", cwd=project)
    service = project / "src" / "orders_service" / "service.py"
    service.write_text("def process(record):\n    return None\n")  # the user's own logic
    readme = project / "README.md"
    append(readme, "Our own note, where the template adds one too.")
    git("commit", "--quiet", "--all", "--message=our edits", cwd=project)
    change_template(template_repo, "README.md")
    change_template(template_repo, "src/{{cookiecutter.package_name}}/service.py")
    assert not passes(run(check, cwd=project))

    result = run(update, cwd=project, input="y\n")
    assert passes(result), result.stdout + result.stderr
    assert "Creating" not in result.stdout  # the hook is quiet in cruft's scratch renders
    assert "Good work!" in result.stdout  # ... although the update left a conflict:
    assert "Applied patch to 'README.md' with conflicts." in result.stderr
    assert run(conflicts, cwd=project).stdout.split() == ["README.md"]
    assert "<<<<<<< ours" in readme.read_text()
    assert service.read_text() == "def process(record):\n    return None\n"  # skipped
    assert passes(run(check, cwd=project))  # cruft check no longer says anything


def test_cruft_link_for_a_plain_bake_then_an_update_without_git(template_repo, tmp_path):
    made_from = git("rev-parse", "HEAD", cwd=template_repo).strip()
    bake = [sys.executable, "-m", "cookiecutter", str(template_repo), "--no-input"]
    assert passes(run([*bake, "event_source=kinesis", "project_name=Acme Orders"], cwd=tmp_path))
    project = tmp_path / "acme-orders"
    change_template(template_repo, "README.md")

    link = readme_command("cruft link", template_repo)
    answers = "Acme Orders\n\n\n3\n\n\n\n" + made_from + "\n"  # kinesis is the third choice
    result = run(link, cwd=project, input=answers)
    assert passes(result), result.stdout + result.stderr
    assert f'"commit": "{made_from}"' in (project / ".cruft.json").read_text()
    assert '"event_source": "kinesis"' in (project / ".cruft.json").read_text()
    assert not passes(run(readme_command("cruft check", template_repo), cwd=project))

    append(project / "README.md", "Our own note, where the template adds one too.")
    result = run(readme_command("cruft update", template_repo), cwd=project, input="y\n")
    assert passes(result), result.stdout + result.stderr
    assert "Good work!" in result.stdout
    rejects = readme_command("find . -name '*.rej'", template_repo)
    assert run(rejects, cwd=project).stdout.split() == ["./README.md.rej"]


# The last commit whose projects kept the machinery beside service.py (src/<package>/dedup.py,
# effects.py, ...), before it moved into the package src/<package>/dedup/.
FLAT_LAYOUT = "dafc150f333ab64be4812bb14baef64c73ee966f"


def test_an_update_from_the_flat_layout_moves_the_machinery_and_keeps_the_owners_service(
    tmp_path,
):
    repo = tmp_path / "dedup-template"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "archive", FLAT_LAYOUT], cwd=TEMPLATE_DIR, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "--message=the flat layout", cwd=repo)
    create = readme_command("cruft create", repo)
    result = run([*create, "--no-input", "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert passes(result), result.stdout + result.stderr
    project = tmp_path / "orders-service"
    package = project / "src" / "orders_service"
    assert (package / "dedup.py").is_file()
    git("init", "--quiet", cwd=project)
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "--message=made with cruft", cwd=project)
    # The owner's own service, written against the flat layout's import.
    owners = (
        '"""Record each order."""\n\nimport os\n\nfrom . import effects\n\n\n'
        "def process(record):\n"
        '    table = os.environ["ORDERS_TABLE_NAME"]\n'
        '    effects.put(table, {"order_id": record["messageId"], "status": "received"})\n'
    )
    (package / "service.py").write_text(owners)
    git("commit", "--quiet", "--all", "--message=our service", cwd=project)

    for path in repo.iterdir():  # the template as it is now, as its next commit
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    ignore = shutil.ignore_patterns(".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__")
    shutil.copytree(TEMPLATE_DIR, repo, ignore=ignore, dirs_exist_ok=True)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "--message=the dedup package", cwd=repo)
    result = run(readme_command("cruft update", repo), cwd=project, input="y\n")
    assert passes(result), result.stdout + result.stderr

    assert sorted(path.name for path in package.iterdir() if path.name != "__pycache__") == [
        "__init__.py",
        "dedup",
        "handler.py",
        "service.py",
    ]
    assert (package / "service.py").read_text() == owners
    assert not run(["git", "diff", "--name-only", "--diff-filter=U"], cwd=project).stdout
    tests = run(["make", "test", f"USE_PYTHON={sys.executable}"], cwd=project, timeout=900)
    assert passes(tests), tests.stdout[-3000:] + tests.stderr
    assert "from .dedup import effects" in tests.stdout  # the warning gives the new import
