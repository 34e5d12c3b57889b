{%- import "common/source.j2" as source with context -%}
"""The seam between the machinery and service.py: ``process``, and nothing else required.

service.py is yours. The handler needs nothing from it but ``process``
{%- if source.http %}; a ``unit_id`` there is
ignored, since a request's key is the client's ``Idempotency-Key``. These tests put a module
of their own in service.py's place, holding only ``process``, so they keep passing whatever
you write in service.py.
{%- else %}, and reads
``unit_id`` (a business id to deduplicate by) only where it is defined. These tests put a
module of their own in service.py's place, holding only ``process`` (and, where a test says,
a ``unit_id``), so they keep passing whatever you write in service.py.
{%- endif %}
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }} import handler, service
from {{ cookiecutter.package_name }}.dedup import effects
from tools import delivery


class OnlyProcess:
    """A service module holding nothing but ``process``, which notes the units it runs."""

    def __init__(self) -> None:
        self.module = types.ModuleType(service.__name__)
        self.module.process = self.process  # type: ignore[attr-defined]
        self.ran: list[str] = []

    def process(self, payload: Any) -> Any:
        self.ran.append(delivery.unit_id(payload))
        return delivery.result(payload)


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch) -> OnlyProcess:
    """The handler's service module is one that defines only ``process``."""
    module = OnlyProcess()
    monkeypatch.setattr(handler, "service", module.module)
    return module


def decisions(capsys: pytest.CaptureFixture[str], decision: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    return [line for line in lines if line["decision"] == decision]


def test_a_service_module_with_only_process_runs_each_unit_once(dynamodb, context, own):
    units = [f"u-{number}" for number in range(min(delivery.MAX_UNITS, 3))]

    for _ in range(2):  # delivered twice: the second time, every unit is a duplicate
        assert delivery.deliver(delivery.event(units), context) == units

    assert own.ran == units
{%- if source.http %}


def test_a_unit_id_in_service_py_does_not_change_a_requests_key(
    dynamodb, context, own, monkeypatch
):
    monkeypatch.setattr(own.module, "unit_id", lambda request: "one id", raising=False)

    for unit in ("key-1", "key-2"):
        assert delivery.deliver(delivery.event([unit]), context) == [unit]

    assert own.ran == ["key-1", "key-2"]  # two keys, two requests, whatever unit_id says
{%- else %}


def business_id(unit: Any) -> str:
    """The order a test unit is about: ``order-7`` for both ``order-7-try-1`` and
    ``order-7-try-2``, two sends of one order that the platform gives two ids."""
    return delivery.unit_id(unit).partition("-try-")[0]
{%- if source.batch %}


def test_a_business_id_makes_a_producers_retry_in_the_same_batch_a_duplicate(
    dynamodb, context, own, monkeypatch
):
    monkeypatch.setattr(own.module, "unit_id", business_id, raising=False)
    sends = ["order-7-try-1", "order-7-try-2"]

    assert delivery.deliver(delivery.event(sends), context) == sends

    assert own.ran == ["order-7-try-1"]
{%- endif %}


def test_a_business_id_makes_a_producers_retry_in_another_invocation_a_duplicate(
    dynamodb, context, own, monkeypatch, capsys
):
    monkeypatch.setattr(own.module, "unit_id", business_id, raising=False)

    for send in ("order-8-try-1", "order-8-try-2"):
        assert delivery.deliver(delivery.event([send]), context) == [send]

    assert own.ran == ["order-8-try-1"]
    (skipped,) = decisions(capsys, "duplicate_skipped")
    assert skipped["dedup_key"].endswith("#order-8")


def test_without_unit_id_each_platform_id_is_a_unit_of_its_own(dynamodb, context, own):
    for send in ("order-9-try-1", "order-9-try-2"):
        assert delivery.deliver(delivery.event([send]), context) == [send]

    assert own.ran == ["order-9-try-1", "order-9-try-2"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(None, "returned None"), (KeyError("order_id"), "raised KeyError")],
    ids=["returns None", "raises"],
)
def test_a_unit_without_a_business_id_fails_alone_with_one_line(
    dynamodb, context, own, monkeypatch, capsys, answer, reason
):
    def unit_id(unit: Any) -> str | None:
        if delivery.unit_id(unit) != "u-2":
            return delivery.unit_id(unit)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(own.module, "unit_id", unit_id, raising=False)
    units = ["u-1", "u-2", "u-3"]
    events = (
        [delivery.event(units)]
        if delivery.MAX_UNITS > 1
        else [delivery.event([unit]) for unit in units]
    )

    acknowledged = [unit for event in events for unit in delivery.deliver(event, context)]

    assert "u-2" not in acknowledged
    # Ordered sources stop the batch at the unit that failed; others run the rest.
    assert own.ran == (["u-1"] if delivery.ORDERED else ["u-1", "u-3"])
    (line,) = decisions(capsys, "unidentified")
    assert f"service.unit_id {reason}" in line["reason"]
{%- endif %}


def test_the_flat_layouts_import_of_effects_still_works_and_gives_the_new_one():
    """A service.py written before the machinery moved to dedup/ imports ``from . import
    effects``: it gets the module, with a warning that says the import to write instead."""
    with pytest.warns(DeprecationWarning, match=r"`from \.dedup import effects`"):
        old = {{ cookiecutter.package_name }}.effects
    assert old is effects
    with pytest.raises(AttributeError):
        _ = {{ cookiecutter.package_name }}.not_a_module
