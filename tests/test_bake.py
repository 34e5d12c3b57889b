"""Baking: every offered choice gives the contract's files, fully rendered, with valid names."""

from __future__ import annotations

import py_compile
import re
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from conftest import (
    ARCHITECTURES,
    COOKIECUTTER_JSON,
    RUNTIMES,
    SOURCES,
    TEMPLATE_DIR,
    cookiecutter_cli,
    run,
)

# Every baked project holds exactly these files, whatever the source (the contract's layout).
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
    "src/requirements.txt",
    "src/{package}/__init__.py",
    "src/{package}/dedup.py",
    "src/{package}/handler.py",
    "src/{package}/service.py",
    "tests/conftest.py",
    "tests/test_dedup.py",
    "tests/test_handler.py",
    "tests/test_template.py",
    "tools/__init__.py",
    "tools/demo.py",
    "tools/local_aws.py",
    "tools/validate_template.py",
}
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter")  # ${{ }} is GitHub's, on purpose


def files_in(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_bakes_exactly_the_contracts_files(bake, source):
    project = bake(event_source=source, project_name="Acme Orders")

    assert project.name == "acme-orders"
    assert files_in(project) == {name.format(package="acme_orders") for name in FILES}


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

    assert "from . import dedup, service" in handler
    assert "service.process(" in handler
    assert "from .service import" not in handler


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
    assert COOKIECUTTER_JSON["project_slug"] == "{{ cookiecutter.project_name | slugify }}"
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
        (["project_name=" + "Orders " * 8], "at most 40"),
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


def test_a_name_with_no_letters_or_digits_is_refused_and_leaves_nothing(tmp_path):
    # Its slug is empty, so cookiecutter itself refuses before the hook runs.
    result = cookiecutter_cli(str(TEMPLATE_DIR), "--no-input", "project_name=!!!", cwd=tmp_path)

    assert result.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_event_source_is_refused_with_the_choices(tmp_path):
    result = cookiecutter_cli(str(TEMPLATE_DIR), "--no-input", "event_source=kafka", cwd=tmp_path)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "kafka" in last_line
    assert all(source in last_line for source in SOURCES)
    assert list(tmp_path.iterdir()) == []


def test_interactive_prompts_are_human_readable(tmp_path):
    answers = "Acme Orders\n\n\n1\n1\n1\n"
    result = cookiecutter_cli(str(TEMPLATE_DIR), cwd=tmp_path, input=answers)

    assert result.returncode == 0, result.stderr
    for label in ("Project name", "Which event source", "Python runtime", "CPU architecture"):
        assert label in result.stdout
    assert (tmp_path / "acme-orders" / "src" / "acme_orders" / "handler.py").is_file()


def test_the_template_repos_own_tests_are_ruff_clean():
    tests = str(TEMPLATE_DIR / "tests")
    for command in (["check", tests], ["format", "--check", tests]):
        result = run([sys.executable, "-m", "ruff", *command], cwd=TEMPLATE_DIR)
        assert result.returncode == 0, result.stdout
