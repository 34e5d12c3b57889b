{%- import "common/source.j2" as source with context -%}
"""Real concurrent copies: eight OS processes deliver the same event at the same moment.

Each copy runs the handler in its own interpreter, with its own client, against DynamoDB
over HTTP (tools/dynamodb_server.py, atomic per item as DynamoDB is). Round after round,
with fresh ids each time: every unit's work runs exactly once, whichever copy wins; a copy
that lost acknowledges a unit only once it is done, and hands it back otherwise (a batch
can hand back units that no copy ran: the claims another copy took ahead for them); and
one more delivery, once the copies are done, completes everything, running no unit twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from {{ cookiecutter.package_name }} import service
from tools import delivery
from tools.copies import Copies
from tools.local_aws import FakeLambdaContext

COPIES = 8
ROUNDS = 4
UNITS = min(delivery.MAX_UNITS, 3)  # per event: a batch of three where the source batches


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copies]:
    started = Copies(COPIES, tmp_path_factory.mktemp("copies") / "runs.log")
    yield started
    started.close()


@pytest.fixture
def counted(copies: Copies, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work done in this process (a last delivery) is counted with the copies'."""

    def process(payload: object) -> object:
        with copies.runs_file.open("a", encoding="utf-8") as runs:
            runs.write(f"{delivery.unit_id(payload)}\n")
        return delivery.result(payload)

    monkeypatch.setattr(service, "process", process)


def test_eight_copies_of_one_event_run_each_unit_once(endpoint, copies, counted):
    for number in range(ROUNDS):
        units = [f"race-{number}-{unit}" for unit in range(UNITS)]
        event = delivery.event(units)

        acknowledged = copies.deliver([event] * COPIES)

        runs = copies.runs()
        assert all(runs[unit] <= 1 for unit in units), f"round {number}: {runs}"
        assert all(runs[unit] == 1 for acks in acknowledged for unit in acks)  # done, then acked
        assert delivery.deliver(event, FakeLambdaContext()) == units
        assert [copies.runs()[unit] for unit in units] == [1] * UNITS, f"round {number}"
{%- if source.batch %}


def test_overlapping_batches_run_each_unit_once(endpoint, copies, counted):
    for number in range(ROUNDS // 2):
        units = [f"overlap-{number}-{unit}" for unit in range(COPIES + UNITS)]
        # Copy n gets units n, n+1, n+2: each unit is in up to three batches at once.
        batches = [delivery.event(units[n : n + UNITS]) for n in range(COPIES)]

        acknowledged = copies.deliver(batches)

        delivered = units[: COPIES + UNITS - 1]
        runs = copies.runs()
        assert all(runs[unit] <= 1 for unit in delivered), f"round {number}: {runs}"
        assert all(runs[unit] == 1 for acks in acknowledged for unit in acks)
        for batch in batches:
            delivery.deliver(batch, FakeLambdaContext())
        assert [copies.runs()[unit] for unit in delivered] == [1] * len(delivered)
{%- endif %}
