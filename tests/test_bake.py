"""Baking: every offered choice gives the contract's files, fully rendered, with valid names."""

from __future__ import annotations

import ast
import py_compile
import re
import shlex
import sys
import tomllib
import warnings
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.environment import StrictEnvironment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import (
    ARCHITECTURES,
    CAPABILITIES,
    COOKIECUTTER_JSON,
    RUNTIMES,
    SOURCES,
    TEMPLATE_DIR,
    cookiecutter_cli,
    run,
)

# Every baked project holds exactly these files (the contract's layout, and what dedup needs).
FILES = {
    ".github/dependabot.yml",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "requirements-dev.txt",
    "template.yaml",
    "events/event.json",
    "src/Makefile",
    "src/requirements.txt",
    "src/{package}/__init__.py",
    "src/{package}/handler.py",
    "src/{package}/service.py",
    "src/{package}/dedup/__init__.py",
    "src/{package}/dedup/claims.py",
    "src/{package}/dedup/decisions.py",
    "src/{package}/dedup/effects.py",
    "src/{package}/dedup/events.py",
    "src/{package}/dedup/keys.py",
    "src/{package}/dedup/once.py",
    "src/{package}/dedup/store.py",
    "tests/conftest.py",
    "tests/dedup/test_bad_input.py",
    "tests/dedup/test_dashboard.py",
    "tests/dedup/test_decisions.py",
    "tests/dedup/test_claims.py",
    "tests/dedup/test_effects.py",
    "tests/dedup/test_endpoint.py",
    "tests/dedup/conftest.py",
    "tests/dedup/test_faults.py",
    "tests/dedup/test_guarantees.py",
    "tests/dedup/test_events.py",
    "tests/dedup/test_races.py",
    "tests/dedup/test_records.py",
    "tests/dedup/test_schedules.py",
    "tests/dedup/test_seam.py",
    "tests/test_service.py",
    "tests/dedup/test_template.py",
    "tools/__init__.py",
    "tools/copies.py",
    "tools/delivery.py",
    "tools/demo.py",
    "tools/dynamodb_server.py",
    "tools/local_aws.py",
    "tools/records.py",
    "tools/validate_template.py",
}
# ... and only the modules their source needs.
BATCH_FILES = {"src/{package}/dedup/batch.py"}
HTTP_FILES = {"src/{package}/dedup/idempotency_key.py", "src/{package}/dedup/responses.py"}
# Every source but the HTTP ones has a failure queue to redrive.
REDRIVE_FILES = {"tools/redrive.py", "tests/dedup/test_redrive.py"}
FILES_BY_SOURCE = {
    source: FILES
    | (HTTP_FILES if CAPABILITIES[source]["http"] else REDRIVE_FILES)
    | (BATCH_FILES if CAPABILITIES[source]["batch"] else set())
    for source in SOURCES
}
README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter")  # ${{ }} is GitHub's, on purpose


def files_in(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_bakes_exactly_the_contracts_files(bake, source):
    project = bake(event_source=source, project_name="Acme Orders")

    assert project.name == "acme-orders"
    assert files_in(project) == {
        name.format(package="acme_orders") for name in FILES_BY_SOURCE[source]
    }


@pytest.mark.parametrize("source", SOURCES)
def test_nothing_is_left_unrendered(bake, source):
    project = bake(event_source=source)

    leftovers = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in project.rglob("*")
        if path.is_file()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNRENDERED.search(line)
    ]
    assert leftovers == []


@pytest.mark.parametrize("source", SOURCES)
def test_the_handler_calls_the_service_through_its_module(bake, source):
    handler = (bake(event_source=source) / "src/orders_service/handler.py").read_text()

    assert re.search(r"^from \. import .*\bservice\b", handler, re.MULTILINE)
    assert "service.process(" in handler
    assert "from .service import" not in handler


@pytest.mark.parametrize("source", SOURCES)
def test_the_owners_files_and_the_machinery_are_apart(bake, source):
    """src/<package>/ holds the owner's two modules and the dedup package, nothing else; the
    machinery never reaches into service.py, and the handler only wires (no DynamoDB call)."""
    package = bake(event_source=source) / "src/orders_service"

    assert sorted(path.name for path in package.iterdir()) == [
        "__init__.py",
        "dedup",
        "handler.py",
        "service.py",
    ]
    for module in (package / "dedup").glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                imported |= {node.module or ""} | {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        assert not {"service", "orders_service.service", "handler"} & imported, module.name
    handler = (package / "handler.py").read_text(encoding="utf-8")
    assert not re.search(r"\b(boto3|store|claims|put_item|update_item|delete_item)\b", handler)


@pytest.mark.parametrize(
    ("project_name", "slug", "package"),
    [
        ("Café Ørders!", "cafe-orders", "cafe_orders"),
        ('O\'Brien "Quoted" Orders', "o-brien-quoted-orders", "o_brien_quoted_orders"),
        ("Back\\slash & Co. Orders", "back-slash-co-orders", "back_slash_co_orders"),
        ("Über Straße 2", "uber-strasse-2", "uber_strasse_2"),
        ('Triple """ Quote\'s Orders', "triple-quote-s-orders", "triple_quote_s_orders"),
    ],
)
def test_awkward_project_names_give_valid_names_everywhere(bake, project_name, slug, package):
    project = bake(project_name=project_name)

    assert project.name == slug
    assert (project / "src" / package / "handler.py").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an invalid escape sequence is a SyntaxWarning
        for path in project.rglob("*.py"):
            py_compile.compile(str(path), doraise=True)
    tomllib.loads((project / "pyproject.toml").read_text())
    assert f"Handler: {package}.handler.lambda_handler" in (project / "template.yaml").read_text()
    assert f'name = "{slug}"' in (project / "pyproject.toml").read_text()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_runtime_and_architecture_reach_the_function(bake, runtime, architecture):
    project = bake(runtime=runtime, architecture=architecture)
    template = (project / "template.yaml").read_text()

    assert f"Runtime: {runtime}" in template
    assert f"Architectures:\n      - {architecture}" in template
    target = "py" + runtime.removeprefix("python").replace(".", "")
    assert f'target-version = "{target}"' in (project / "pyproject.toml").read_text()


def test_every_question_and_every_choice_has_a_human_readable_label():
    prompts = COOKIECUTTER_JSON["__prompts__"]
    questions = [key for key in COOKIECUTTER_JSON if not key.startswith("_")]

    assert sorted(prompts) == sorted(questions)
    for key in questions:
        if isinstance(COOKIECUTTER_JSON[key], list):
            assert prompts[key]["__prompt__"]
            assert sorted(prompts[key]) == sorted([*COOKIECUTTER_JSON[key], "__prompt__"])
        else:
            assert isinstance(prompts[key], str)
            assert prompts[key]


def test_the_contracts_keys_and_defaults():
    # A name with no letters or digits slugifies to "", which the hook then refuses by name.
    assert COOKIECUTTER_JSON["project_slug"] == "{{ cookiecutter.project_name | slugify or '_' }}"
    assert COOKIECUTTER_JSON["package_name"] == (
        "{{ cookiecutter.project_slug | replace('-', '_') }}"
    )
    assert RUNTIMES[0] == "python3.13"
    assert ARCHITECTURES == ["arm64", "x86_64"]


@pytest.mark.parametrize(
    ("answers", "says"),
    [
        (["project_name=123 Orders"], "package_name '123_orders'"),
        (["project_name=Orders", "package_name=orders-api"], "package_name 'orders-api'"),
        (["project_name=Orders", "package_name=class"], "package_name 'class'"),
        (["project_name=Orders", "project_slug=Orders Service"], "project_slug 'Orders Service'"),
        (["project_name=JSON"], "package_name 'json' (project name 'JSON') not accepted"),
        (["project_name=test"], "package_name 'test' (project name 'test') not accepted"),
        (["project_name=Requests"], "package_name 'requests'"),
        (["project_name=Ruff"], "package_name 'ruff'"),
        (["project_name=" + "Orders " * 8], "at most 40"),
        (["project_name=!!!"], "project name '!!!' has no letters or digits"),
        (["project_name=🚀 🚀"], "project name '🚀 🚀' has no letters or digits"),
        (["project_name=_"], "project name '_' has no letters or digits"),
    ],
)
def test_a_bad_name_stops_the_bake_with_one_line_and_leaves_nothing(tmp_path, answers, says):
    result = cookiecutter_cli(str(TEMPLATE_DIR), "--no-input", *answers, cwd=tmp_path)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ")
    assert says in last_line
    assert "acme_orders)" in last_line  # ends with what is accepted
    assert list(tmp_path.iterdir()) == []


def test_a_name_with_no_letters_bakes_once_the_slug_and_package_are_given(tmp_path):
    """What the refusal of such a name suggests."""
    answers = ["project_name=!!!", "project_slug=acme-orders", "package_name=acme_orders"]
    result = cookiecutter_cli(str(TEMPLATE_DIR), "--no-input", *answers, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "acme-orders" / "src" / "acme_orders" / "handler.py").is_file()


def rendered_hook() -> ModuleType:
    """hooks/pre_gen_project.py rendered as cookiecutter renders it, imported as a module."""
    source = (TEMPLATE_DIR / "hooks" / "pre_gen_project.py").read_text(encoding="utf-8")
    answers = {"project_name": "Acme", "project_slug": "acme", "package_name": "acme"}
    code = (
        StrictEnvironment()
        .from_string(source)
        .render(cookiecutter=answers | {"event_source": "sqs"})
    )
    hook = ModuleType("pre_gen_project")
    exec(compile(code, "pre_gen_project.py", "exec"), hook.__dict__)
    return hook


def installed_by(requirements: Path, seen: set[str] | None = None) -> set[str]:
    """The distributions a requirements file installs, with everything they require."""
    seen = set() if seen is None else seen
    todo: list[Requirement] = []
    for line in requirements.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("-r "):
            installed_by(requirements.parent / line.removeprefix("-r ").strip(), seen)
        elif line and not line.startswith(("#", "-")):
            todo.append(Requirement(line))
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for needed in metadata.distribution(name).requires or []:
            needs = Requirement(needed)
            extras = requirement.extras or {""}
            if needs.marker is None or any(needs.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needs)
    return seen


def test_the_hook_refuses_every_module_the_dev_venv_installs():
    """A package named like one of them comes first on the project's path and shadows it."""
    installed = installed_by(
        TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "requirements-dev.txt"
    )
    modules = {
        module
        for module, distributions in metadata.packages_distributions().items()
        if module.isidentifier()
        and not module.startswith("_")
        and any(canonicalize_name(name) in installed for name in distributions)
    }
    hook = rendered_hook()

    assert {"boto3", "moto", "pytest", "ruff", "cfnlint", "requests"} <= modules
    assert sorted((modules | {"pip"}) - hook.TAKEN) == []
    assert all(hook.problem(module, module, module) for module in modules)
    assert hook.problem("Acme Orders", "acme-orders", "acme_orders") is None


@pytest.mark.parametrize(
    ("example", "answers"),
    [
        ("`123 Orders` gives `123_orders`", ("123 Orders", "123-orders", "123_orders")),
        ("longer\n  than 40 characters", ("Orders", "o" * 41, "o" * 41)),
        ("(`!!!`, an emoji alone)", ("!!!", "_", "_")),
        ("a Python keyword (`class`)", ("Orders", "orders", "class")),
        ("module (`json`, `test`)", ("JSON", "json", "json")),
        ("module (`json`, `test`)", ("Test", "test", "test")),
        ("own folders (`tests`, `tools`)", ("Tests", "tests", "tests")),
        ("own folders (`tests`, `tools`)", ("Tools", "tools", "tools")),
        ("(`requests`, `ruff`, `yaml`;", ("Requests", "requests", "requests")),
        ("(`requests`, `ruff`, `yaml`;", ("Ruff", "ruff", "ruff")),
        ("(`requests`, `ruff`, `yaml`;", ("YAML", "yaml", "yaml")),
    ],
)
def test_what_the_readme_says_is_refused_the_hook_refuses(example, answers):
    refusals = README[README.index("The bake stops before anything is written") :]
    refusals = refusals[: refusals.index("An unknown `event_source`")]

    assert example in refusals
    assert rendered_hook().problem(*answers)


@pytest.mark.parametrize("output_dir", [None, "out dir"])
def test_a_bake_says_where_the_project_went_and_what_to_run_there(tmp_path, output_dir):
    in_a_shell = ["sh", "-c", 'cd "$0" && exec "$@"', str(tmp_path)]  # the shell sets $PWD
    where = ["--output-dir", output_dir] if output_dir else []
    bake = [sys.executable, "-m", "cookiecutter", str(TEMPLATE_DIR), "--no-input", *where]
    result = run([*in_a_shell, *bake, "project_name=Acme Orders"], cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    folder = shlex.quote(str(Path(output_dir or ".") / "acme-orders"))
    assert result.stdout.splitlines()[-2:] == [
        f"Creating {folder} (package acme_orders, event source sqs)",
        f"Next: cd {folder} && make test, then its README.md takes you to a deployed stack.",
    ]
    assert run(["sh", "-c", f"cd {folder} && make -n test"], cwd=tmp_path).returncode == 0


def test_a_bake_from_elsewhere_names_the_project_by_its_full_path(tmp_path):
    # $PWD is not a parent of the new folder (this test runs in another directory).
    result = cookiecutter_cli(str(TEMPLATE_DIR), "--no-input", "-o", str(tmp_path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    project = tmp_path / "orders-service"
    assert f"Next: cd {shlex.quote(str(project))} && make test" in result.stdout


def test_an_unknown_event_source_is_refused_with_the_choices(tmp_path):
    result = cookiecutter_cli(str(TEMPLATE_DIR), "--no-input", "event_source=kafka", cwd=tmp_path)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "kafka" in last_line
    assert all(source in last_line for source in SOURCES)
    assert list(tmp_path.iterdir()) == []


def test_interactive_prompts_are_human_readable(tmp_path):
    answers = "Acme Orders\n\n\n1\n1\n1\n\n"
    result = cookiecutter_cli(str(TEMPLATE_DIR), cwd=tmp_path, input=answers)

    assert result.returncode == 0, result.stderr
    for label in ("Project name", "Which event source", "Python runtime", "CPU architecture"):
        assert label in result.stdout
    assert (tmp_path / "acme-orders" / "src" / "acme_orders" / "handler.py").is_file()


def test_the_template_repos_own_tests_and_benchmark_are_ruff_clean():
    ours = [str(TEMPLATE_DIR / "tests"), str(TEMPLATE_DIR / "bench")]
    for command in (["check", *ours], ["format", "--check", *ours]):
        result = run([sys.executable, "-m", "ruff", *command], cwd=TEMPLATE_DIR)
        assert result.returncode == 0, result.stdout
