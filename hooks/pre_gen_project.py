"""Stop the bake, before anything is written, when an answer would make a broken project.

Standard library only: `sam init --location` runs this hook with its own Python. Each answer
is rendered through ``tojson``, so whatever a user types stays a string literal here.
"""

from __future__ import annotations

import keyword
import re
import sys

PROJECT_NAME = {{ cookiecutter.project_name | tojson }}
PROJECT_SLUG = {{ cookiecutter.project_slug | tojson }}
PACKAGE_NAME = {{ cookiecutter.package_name | tojson }}

SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
MAX_LENGTH = 40  # longer names push generated imports and asserts past ruff's line length
# Names the generated project already imports: a package called one of them would shadow it.
TAKEN = {"boto3", "botocore", "moto", "pytest", "freezegun", "yaml", "samtranslator", "cfnlint"}
TAKEN |= {"tests", "tools"} | set(getattr(sys, "stdlib_module_names", ()))  # 3.10+


def problem() -> str | None:
    """What is wrong with the answers, in one line, or None."""
    given = f"(project name {PROJECT_NAME!r})"
    invalid = [
        f"{label} {value!r}"
        for label, value, pattern in (
            ("project_slug", PROJECT_SLUG, SLUG),
            ("package_name", PACKAGE_NAME, PACKAGE),
        )
        if not pattern.fullmatch(value) or len(value) > MAX_LENGTH
    ]
    if invalid:
        return (
            f"{' and '.join(invalid)} {given} not accepted: use at most {MAX_LENGTH} lower-case"
            " letters and digits, starting with a letter, words joined by single dashes in the"
            " slug and single underscores in the package name (e.g. acme-orders, acme_orders)"
        )
    if keyword.iskeyword(PACKAGE_NAME) or PACKAGE_NAME in TAKEN:
        return (
            f"package_name {PACKAGE_NAME!r} {given} not accepted: it would shadow the Python"
            " keyword or module of that name; choose another (e.g. acme_orders)"
        )
    return None


if __name__ == "__main__":
    message = problem()
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
