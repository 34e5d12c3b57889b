"""Stop the bake, before anything is written, when an answer would make a broken project.

Standard library only: `sam init --location` runs this hook with its own Python. Each answer
is rendered through ``tojson``, which escapes every quote, backslash and control character, into
a raw string that ``json.loads`` reads back: whatever a user types stays data, emoji included
(a plain Python literal of the same JSON would split an emoji into two surrogate halves).
cookiecutter runs the hook inside the project's new, still empty folder, and deletes that
folder when the hook fails: a refused answer leaves nothing behind.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shlex
import sys

PROJECT_NAME = json.loads(r'{{ cookiecutter.project_name | tojson }}')
PROJECT_SLUG = json.loads(r'{{ cookiecutter.project_slug | tojson }}')
PACKAGE_NAME = json.loads(r'{{ cookiecutter.package_name | tojson }}')
EVENT_SOURCE = json.loads(r'{{ cookiecutter.event_source | tojson }}')
# Set by cookiecutter's own entry point (its command line, and the function `sam init` calls),
# not by cruft, which also renders the template into scratch folders on `cruft update`.
OUTPUT_DIR = json.loads(r'{{ cookiecutter._output_dir | default("") | tojson }}')

# cookiecutter.json derives the slug as `project_name | slugify or "_"`: slugify gives "" for a
# name with no letters or digits, and an empty slug would have cookiecutter write into ".".
NO_SLUG = "_"
SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
MAX_LENGTH = 40  # longer names push generated imports and asserts past ruff's line length

# A package of one of these names would shadow a module the project runs: src/ comes first on
# its import path. Python's own modules (stdlib_module_names leaves out the `test` package),
# the project's top-level folders, and every module its dev venv installs from
# requirements-dev.txt (pip included; tests/test_bake.py checks this list against them).
TAKEN = {"test", "tests", "tools", "conftest", *getattr(sys, "stdlib_module_names", ())}
TAKEN |= {
    "annotated_types", "antlr4", "attr", "attrs", "aws_xray_sdk", "blinker", "boto3",
    "botocore", "certifi", "cffi", "cfnlint", "charset_normalizer", "click", "cryptography",
    "dateutil", "docker", "dotenv", "flask", "flask_cors", "freezegun", "graphql", "hypothesis",
    "idna", "iniconfig", "isympy", "itsdangerous", "jinja2", "jmespath", "joserfc", "jsonpatch",
    "jsonpatch_cli", "jsonpath_ng", "jsonpointer", "jsonschema", "jsonschema_path",
    "jsonschema_specifications", "lazy_object_proxy", "markupsafe", "moto", "mpmath",
    "networkx", "openapi_schema_validator", "openapi_spec_validator", "packaging", "pathable",
    "pip", "pluggy", "py", "py_partiql_parser", "pycparser", "pydantic", "pydantic_core",
    "pydantic_settings", "pygments", "pyparsing", "pytest", "referencing", "regex", "requests",
    "responses", "rfc3339_validator", "rpds", "ruff", "s3transfer", "samtranslator", "six",
    "sortedcontainers", "sympy", "typing_extensions", "typing_inspection", "urllib3",
    "werkzeug", "wrapt", "xmltodict", "yaml",
}


def problem(project_name: str, slug: str, package: str) -> str | None:
    """What is wrong with the answers, in one line that also says what is accepted, or None."""
    given = f"(project name {project_name!r})"
    if slug == NO_SLUG and not any(character.isalnum() for character in project_name):
        return (
            f"project name {project_name!r} has no letters or digits to make a folder name"
            " from: use a name with at least one letter (e.g. Acme Orders), or give"
            " project_slug and package_name yourself (e.g. acme-orders, acme_orders)"
        )
    answers = (("project_slug", slug, SLUG), ("package_name", package, PACKAGE))
    invalid = [
        f"{label} {value!r}"
        for label, value, pattern in answers
        if not pattern.fullmatch(value) or len(value) > MAX_LENGTH
    ]
    if invalid:
        return (
            f"{' and '.join(invalid)} {given} not accepted: use at most {MAX_LENGTH} lower-case"
            " letters and digits, starting with a letter, words joined by single dashes in the"
            " slug and single underscores in the package name (e.g. acme-orders, acme_orders)"
        )
    if keyword.iskeyword(package) or package in TAKEN:
        return (
            f"package_name {package!r} {given} not accepted: it would shadow the Python"
            " keyword or module of that name, which the project needs; choose another"
            " (e.g. acme_orders)"
        )
    return None


def where(project_dir: str) -> str | None:
    """``project_dir`` as the user can ``cd`` to it, or None for a scratch render.

    Relative when it lies under the shell's working directory ($PWD: cookiecutter runs this
    hook in the project's folder but leaves the variable alone). Otherwise absolute, when the
    user asked cookiecutter for another output folder; None when a tool such as cruft renders
    the template somewhere of its own.
    """
    started = os.environ.get("PWD")
    if started:
        try:
            relative = os.path.relpath(project_dir, os.path.realpath(started))
        except ValueError:  # another drive, on Windows
            relative = os.pardir
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            return relative
    return project_dir if OUTPUT_DIR else None


if __name__ == "__main__":
    message = problem(PROJECT_NAME, PROJECT_SLUG, PACKAGE_NAME)
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    folder = where(os.getcwd())
    if folder is not None:
        folder = shlex.quote(folder)
        print(f"Creating {folder} (package {PACKAGE_NAME}, event source {EVENT_SOURCE})")
        print(f"Next: cd {folder} && make test, then its README.md takes you to a deployed stack.")
