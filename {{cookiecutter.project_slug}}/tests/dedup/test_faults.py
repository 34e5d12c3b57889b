{%- import "common/source.j2" as source with context -%}
"""Every DynamoDB call dedup makes, failing every way it can: the outcome is a documented one.

Against the HTTP endpoint (tools/dynamodb_server.py), each of the claim (PutItem), the
completion (UpdateItem; a TransactWriteItems when the work enlisted a write) and the release
(DeleteItem, after the work failed) meets each fault: throttling, a 500, a dropped
connection and a lost answer (the write applied, the client never told) on every attempt the
client makes, or once; or an added delay. Then the unit is delivered again, as its source
would, until it is acknowledged. Whatever the fault:

* nothing is acknowledged whose work did not run;
* the unit ends up acknowledged once the faults stop, its work having run once, or twice
  only in the documented window (a completion that could not be written, after the work);
* a write the work enlisted is committed exactly once;
* a lost answer is recognised: a claim as this invocation's own, a release as done.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import service
from {{ cookiecutter.package_name }}.dedup import effects, store
from tools import delivery
from tools.local_aws import FakeLambdaContext, committed_runs

LEASE_SECONDS = 0.3  # each invocation's time, kept short so that redeliveries need not wait
ATTEMPTS = 3  # the client's: total_max_attempts in store.py


@dataclass(frozen=True)
class Fault:
    operation: str  # the DynamoDB call that misbehaves
    kind: str
    calls: int  # how many of its attempts: all of them, or the first
    enlisted: bool = False  # whether the work enlisted a write (the completion is a transaction)

    def __str__(self) -> str:
        writes = "-enlisted" if self.enlisted else ""
        return f"{self.operation}-{self.kind}-x{self.calls}{writes}"


PLAIN = ("PutItem", "UpdateItem", "DeleteItem")  # claim, complete, release
EVERY_ATTEMPT = ("throttle", "server_error", "drop", "lost")
FAULTS = [
    *(Fault(operation, kind, ATTEMPTS) for operation in PLAIN for kind in EVERY_ATTEMPT),
    *(Fault(operation, kind, 1) for operation in PLAIN for kind in ("lost", "delay")),
    *(Fault("TransactWriteItems", kind, ATTEMPTS, enlisted=True) for kind in EVERY_ATTEMPT),
    *(Fault("TransactWriteItems", kind, 1, enlisted=True) for kind in ("lost", "delay")),
    Fault("DeleteItem", "lost", 1, enlisted=True),
]


class Unit:
    """One unit of work, delivered until acknowledged, with its runs and decisions counted."""

    def __init__(self, fault: Fault, ledger: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.id = f"fault-{uuid.uuid4().hex[:8]}"
        self.ledger = ledger
        self.fault = fault
        self.capsys = capsys
        self.runs = 0
        self.fail_first_run = fault.operation == "DeleteItem"  # only a failure releases
        self.decisions: list[str] = []

    def process(self, payload: Any) -> Any:
        self.runs += 1
        if self.fault.enlisted:
            effects.update(self.ledger, {"order_id": self.id}, "ADD runs :one", values={":one": 1})
        if self.fail_first_run and self.runs == 1:
            raise RuntimeError("the work fails the first time")
        return delivery.result(payload)

    def deliver(self) -> bool:
        """Deliver the unit once; whether its source is then done with it."""
        acknowledged = delivery.deliver(
            delivery.event([self.id]), FakeLambdaContext(deadline=time.time() + LEASE_SECONDS)
        ) == [self.id]
        lines = self.capsys.readouterr().out.splitlines()
        self.decisions += [json.loads(line)["decision"] for line in lines if line.startswith("{")]
        return acknowledged


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_fault_on_any_call_ends_in_a_documented_outcome(
    endpoint, ledger, no_backoff, monkeypatch, capsys, fault
):
    unit = Unit(fault, ledger, capsys)
    monkeypatch.setattr(service, "process", unit.process)
    delay = 0.3 if fault.kind == "delay" else 0.0  # well inside the client's read timeout
    endpoint.inject(fault.operation, fault.kind, calls=fault.calls, seconds=delay)

    first = unit.deliver()
    assert not first or unit.runs >= 1  # never acknowledged before its work ran
    endpoint.clear()
    deliveries = [first]
    while not deliveries[-1] and len(deliveries) < 6:
        time.sleep(LEASE_SECONDS if "in_progress" in unit.decisions[-1:] else 0)
        deliveries.append(unit.deliver())

    assert deliveries[-1], f"never acknowledged: {unit.decisions}"
    runs = 1 + unit.fail_first_run
    # The work runs once more only where its completion was not recorded: the documented
    # window without enlisted writes; with them, a retry of work that committed nothing.
    may_run_again = "completion_not_recorded" in unit.decisions
    assert unit.runs in ({runs, runs + 1} if may_run_again else {runs}), unit.decisions
    if fault.enlisted:
        assert committed_runs(store.client(), ledger, unit.id) == 1  # the enlisted write, once
    if fault.kind == "lost":
        assert "lease_lost" not in unit.decisions  # its own write, not another copy's
    if fault.kind == "lost" and fault.calls == 1 and fault.operation == "PutItem":
        assert deliveries == [True]  # the claim was recognised as its own: no hand-back
        assert "in_progress" not in unit.decisions
