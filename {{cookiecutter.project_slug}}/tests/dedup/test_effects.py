{%- import "common/source.j2" as source with context -%}
"""Writes enlisted with effects commit exactly once, with the completion, or not at all.

``service.process`` enlists DynamoDB writes instead of sending them; dedup commits them in one
TransactWriteItems with the unit's completion, on condition that this invocation still holds
the unit. Here, against DynamoDB over HTTP: a crash after the writes were prepared but before
the commit, a commit whose answer is lost, and a copy whose lease lapsed while it worked; each
followed by the retry its source would make. The business item must exist exactly once, the
completion be recorded once, and ``process`` run again only where nothing had committed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import service
from {{ cookiecutter.package_name }}.dedup import effects, store
from tools import delivery
from tools.local_aws import FakeLambdaContext, committed_runs


class Orders:
    """The stand-in for service.process: records one order per unit in the ledger, a
    business table of the tests' own."""

    def __init__(self, ledger: str) -> None:
        self.ledger = ledger
        self.runs: list[str] = []
        self.keys: dict[str, str] = {}  # unit: its dedup key, as process can read it

    def process(self, payload: Any) -> Any:
        unit = delivery.unit_id(payload)
        self.runs.append(unit)
        self.keys[unit] = effects.dedup_key()
        effects.put(self.ledger, {"order_id": unit, "by_run": len(self.runs)})
        counter = {"order_id": f"{unit}-count"}  # an item of its own: one write per item
        effects.update(self.ledger, counter, "ADD runs :one", values={":one": 1})
        return delivery.result(payload)

    def order(self, unit: str) -> dict[str, Any] | None:
        item = store.client().get_item(TableName=self.ledger, Key={"order_id": {"S": unit}})
        return item.get("Item")

    def committed_runs(self, unit: str) -> int:
        return committed_runs(store.client(), self.ledger, f"{unit}-count")


def record(key: str) -> dict[str, Any] | None:
    """The dedup record under ``key``."""
    return store.client().get_item(TableName=store.table_name(), Key={"id": {"S": key}}).get("Item")


@pytest.fixture
def orders(ledger: str, monkeypatch: pytest.MonkeyPatch) -> Orders:
    stand_in = Orders(ledger)
    monkeypatch.setattr(service, "process", stand_in.process)
    return stand_in


def fresh() -> str:
    return f"order-{uuid.uuid4().hex[:8]}"


def test_the_writes_and_the_completion_commit_in_one_transaction(endpoint, orders, context):
    unit = fresh()

    assert delivery.deliver(delivery.event([unit]), context) == [unit]

    assert endpoint.requests == {"PutItem": 1, "TransactWriteItems": 1}  # claim, then commit
    assert orders.order(unit)["by_run"] == {"N": "1"}
    assert orders.committed_runs(unit) == 1
    assert record(orders.keys[unit])["status"] == {"S": "COMPLETED"}


def test_a_crash_before_the_commit_leaves_nothing_and_the_retry_commits_once(
    endpoint, no_backoff, orders
):
    unit = fresh()
    deadline = time.time() + 0.3  # the crashed invocation's lease ends with it
    # The invocation dies with its writes prepared: nothing it sends from then on arrives,
    # neither the commit nor the release it would try after it.
    endpoint.inject("TransactWriteItems", "drop", calls=3)
    endpoint.inject("DeleteItem", "drop", calls=3)

    crashed = delivery.deliver(delivery.event([unit]), FakeLambdaContext(deadline=deadline))
    endpoint.clear()
    assert crashed == []
    assert orders.order(unit) is None  # prepared, never committed

    time.sleep(max(0.0, deadline - time.time()) + 0.05)
    assert delivery.deliver(delivery.event([unit]), FakeLambdaContext()) == [unit]

    assert orders.runs == [unit, unit]  # it ran again: nothing had committed
    assert orders.order(unit)["by_run"] == {"N": "2"}
    assert orders.committed_runs(unit) == 1


def test_a_commit_whose_answer_is_lost_is_recognised_and_not_run_again(
    endpoint, no_backoff, orders, context
):
    unit = fresh()
    endpoint.inject("TransactWriteItems", "lost", calls=3)  # every attempt lands, none answered

    first = delivery.deliver(delivery.event([unit]), context)
    endpoint.clear()
    again = delivery.deliver(delivery.event([unit]), context)

    assert first == again == [unit]  # the release told: it had committed
    assert orders.runs == [unit]
    assert orders.committed_runs(unit) == 1
    assert record(orders.keys[unit])["status"] == {"S": "COMPLETED"}


def test_a_copy_whose_lease_lapsed_cannot_commit_and_its_writes_never_land(
    endpoint, orders, monkeypatch
):
    unit = fresh()
    late_context = FakeLambdaContext(deadline=time.time() + 0.3)

    def slow_then_overtaken(payload: Any) -> Any:
        effects.put(orders.ledger, {"order_id": unit, "by_run": "late"})
        time.sleep(0.4)  # past its lease: the retry takes over and commits first
        monkeypatch.setattr(service, "process", orders.process)
        assert delivery.deliver(delivery.event([unit]), FakeLambdaContext()) == [unit]
        return delivery.result(payload)

    monkeypatch.setattr(service, "process", slow_then_overtaken)
    late = delivery.deliver(delivery.event([unit]), late_context)

    assert late == []  # not acknowledged: none of its writes landed
    assert orders.order(unit)["by_run"] == {"N": "1"}  # the retry's, not the late copy's
    assert orders.committed_runs(unit) == 1


def test_a_write_whose_own_condition_fails_fails_the_unit_and_writes_nothing(
    endpoint, orders, monkeypatch, context, capsys
):
    unit = fresh()

    keys: list[str] = []

    def refused(payload: Any) -> Any:
        keys.append(effects.dedup_key())
        effects.put(orders.ledger, {"order_id": unit}, condition="attribute_exists(order_id)")
        return delivery.result(payload)

    monkeypatch.setattr(service, "process", refused)
    assert delivery.deliver(delivery.event([unit]), context) == []

    assert orders.order(unit) is None
    assert record(keys[0]) is None  # released: the retry runs at once
    assert "WriteRefused" in capsys.readouterr().out


def test_writes_past_a_transactions_limits_fail_before_anything_is_written(
    endpoint, orders, monkeypatch, context
):
    unit = fresh()

    def too_many(payload: Any) -> Any:
        for number in range(effects.MAX_WRITES + 1):
            effects.put(orders.ledger, {"order_id": f"{unit}-{number}"})
        return delivery.result(payload)

    monkeypatch.setattr(service, "process", too_many)
    assert delivery.deliver(delivery.event([unit]), context) == []

    assert orders.order(f"{unit}-0") is None
    assert endpoint.requests["TransactWriteItems"] == 0


def test_enlisting_outside_process_is_refused():
    with pytest.raises(RuntimeError, match=r"service\.process"):
        effects.put("Orders", {"order_id": "o-1"})


def test_the_downstream_token_is_stable_short_and_the_units_own(endpoint, monkeypatch, context):
    seen: list[tuple[str, str]] = []

    def note(payload: Any) -> Any:
        seen.append((effects.dedup_key(), effects.idempotency_token()))
        return delivery.result(payload)

    monkeypatch.setattr(service, "process", note)
    units = [fresh(), fresh()]
    for unit in units:
        delivery.deliver(delivery.event([unit]), context)
    first_key = seen[0][0]
    store.client().delete_item(  # as if the record had expired: the unit runs again
        TableName=store.table_name(), Key={"id": {"S": first_key}}
    )
    delivery.deliver(delivery.event([units[0]]), context)

    (key_1, token_1), (key_2, token_2), (key_3, token_3) = seen
    assert token_1 == token_3 != token_2
    assert len(token_1) == 36  # DynamoDB's ClientRequestToken takes up to 36 characters
    assert key_1 == key_3 != key_2
