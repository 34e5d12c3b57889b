{%- import "common/source.j2" as source with context -%}
"""What malformed input gets: every row of README.md's "What bad input gets" table, checked.

Each case builds input that reaches the function in practice (a hand-made test event, a
producer's bug, a client's odd header), delivers it, and checks the documented outcome: a
unit that cannot be identified fails alone, with one log line that says why, and the rest
go on; an event that is not the source's shape at all fails the invocation with a clear
error{% if source.http %} (for HTTP: a 400, never a 502){% endif %}, and nothing runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import handler, service
{%- if not source.http %}
from {{ cookiecutter.package_name }}.dedup import events
{%- endif %}
from tools import delivery
{%- if source.http %}
from tools.local_aws import PROJECT, FakeLambdaContext
{%- else %}
from tools.local_aws import PROJECT
{%- endif %}

README = PROJECT / "README.md"
POISON = "poison"  # the unit whose payload the business logic cannot parse


@dataclass(frozen=True)
class Case:
    """One row of the README's table: what is given, what it gets, and the check of it."""

    given: str
    gets: str
    events: list[Callable[[], Any]]  # each makes one input of this kind
    check: Callable[[Any, list[str], list[dict[str, Any]]], None]  # (answer, ran, logged)


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The units that reached service.process; the POISON unit's payload cannot be parsed."""
    calls: list[str] = []

    def process(payload: Any) -> Any:
        unit = delivery.unit_id(payload)
        calls.append(unit)
        if unit == POISON:
            raise ValueError("the body is not the JSON this service expects")
        return delivery.result(payload)

    monkeypatch.setattr(service, "process", process)
    return calls


def deliver(event: Any, context: Any) -> Any:
    """The handler's answer to ``event``: what it returned, or the exception it raised."""
    try:
        return handler.lambda_handler(event, context)
    except Exception as error:
        return error


def decisions(logged: list[dict[str, Any]]) -> list[str]:
    return [line["decision"] for line in logged]


LONG_IDS = ["x" * 3000, "€" * 1000, "lone surrogate \ud800"]
{% include [source.own ~ "bad_input.py.j2", source.shared ~ "bad_input.py.j2"] %}

def each_input() -> list[Any]:
    """One test per input of each case: every one gets fresh tables."""
    return [
        pytest.param(case, make_event, id=f"{_slug(case.given)}-{number}")
        for case in CASES
        for number, make_event in enumerate(case.events, 1)
    ]


def _slug(text: str) -> str:
    return re.sub(r"\W+", "-", text.lower()).strip("-")[:60]


@pytest.mark.parametrize(("case", "make_event"), each_input())
def test_bad_input_gets_what_the_readme_says(dynamodb, context, ran, capsys, case, make_event):
    event = make_event()
    ran.clear()
    capsys.readouterr()

    answer = deliver(event, context)

    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    case.check(answer, ran, logged)


def test_the_readme_table_lists_exactly_these_cases():
    section = README.read_text(encoding="utf-8").split("## What bad input gets", 1)[1]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", section.split("\n## ", 1)[0], re.MULTILINE)
    assert rows[1:] == [(case.given, case.gets) for case in CASES]  # after the header row
