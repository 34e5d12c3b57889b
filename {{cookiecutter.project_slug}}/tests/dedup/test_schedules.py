{%- import "common/source.j2" as source with context -%}
"""Randomized delivery schedules (hypothesis): whatever happens, nothing is lost or doubled.

Each schedule delivers a few units as the platform would, against DynamoDB over HTTP, in an
order hypothesis chooses, mixing in what goes wrong in production: duplicates,
a concurrent copy delivered while the first is working, an invocation that crashes before
its work or after it (before the completion lands), a copy that outlives its lease while
another takes over, clock jumps across the lease and the TTL, and store faults (throttling,
500s, dropped connections, lost answers) on any call. The work enlists one DynamoDB write
per run, a counter. After every step, and once faults stop and every unit is delivered until
acknowledged:

* nothing is acknowledged before its work has run;
* nothing is lost: every unit is acknowledged in the end;
* the work runs a second time only inside the documented window (a crash or a failed
  completion after the work, a copy that outlived its lease, or a TTL that ran out);
* the enlisted write is committed exactly once per TTL window, even inside that window.

{%- if not source.http %}

The schedules run in both modes. At most once (``AT_MOST_ONCE = True``), the window is shut:

* no unit's work starts twice, ever (in one TTL window), whatever crashes, lapses or faults;
* a unit acknowledged before its work ran is one whose record says IN_DOUBT.

``make test`` runs a quick sample of each mode; ``make soak`` runs 10,000 schedules of each.
{%- else %}

``make test`` runs a quick sample; ``make soak`` runs 10,000 schedules.
{%- endif %}
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import Counter
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from {{ cookiecutter.package_name }} import service
{% if source.http -%}
from {{ cookiecutter.package_name }}.dedup import effects, store
{%- else -%}
from {{ cookiecutter.package_name }}.dedup import claims, effects, events, store
{%- endif %}
from tools import delivery
from tools.dynamodb_server import DynamoServer
from tools.local_aws import (
    FakeLambdaContext,
    committed_runs,
    create_ledger,
    create_tables,
    default_ttl_seconds,
)

LEASE_SECONDS = 30  # each invocation's remaining time when it starts
UNITS = 4  # units per schedule
BATCH = min(UNITS, delivery.MAX_UNITS)  # units per event
ATTEMPTS = 3  # the client's attempts per call: a fault on all of them, or on the first
TTL_SECONDS = default_ttl_seconds()
TOTALS: Counter[str] = Counter()  # what every schedule of this run did, for the summary

HOWS = ["normal", "duplicate", "concurrent_copy", "crash_before", "crash_after", "lease_lapse"]
FAULTS = [
    (operation, kind)
    for operation in ("PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem")
    for kind in ("throttle", "server_error", "drop", "lost")
]


class Crash(BaseException):  # not an Exception: the code must not catch it, the process dies
    """The invocation dies here: nothing after this point runs, nothing is reported."""


class Schedules(RuleBasedStateMachine):
    """The platform, its clock and the store, driven by hypothesis; the handler under test."""

    def __init__(self, server: DynamoServer, at_most_once: bool) -> None:
        super().__init__()
        self.server = server
        self.at_most_once = at_most_once
        # Tables of its own, deleted after: moto copies every table a transaction touches, so
        # tables that kept every schedule's items would make each schedule slower than the last.
        suffix = f"-{uuid.uuid4().hex[:8]}"
        self.tables = create_tables(store.client(), suffix=suffix)
        os.environ.update(self.tables)
        self.ledger = create_ledger(store.client(), f"ledger{suffix}")
        self.freezer = freeze_time("2026-01-01 12:00:00")
        self.clock = self.freezer.start()
        self.units = [f"s-{uuid.uuid4().hex[:10]}-{n}" for n in range(UNITS)]
        self.acknowledged: set[str] = set()
        self.runs: Counter[str] = Counter()  # runs of the work that returned
        self.starts: Counter[str] = Counter()  # runs of the work that began
        self.allowed: Counter[str] = Counter()  # second runs the documented window allows
        self.expiries: Counter[str] = Counter()  # TTLs that ran out after the unit was done
        self.target = ""
        self.how = "normal"
        service.process = self.process

    def teardown(self) -> None:
        try:
            self.server.clear()
            self.clock.tick(LEASE_SECONDS + 1)  # every lease of a crashed copy has ended
            for _ in range(3):
                pending = [unit for unit in self.units if unit not in self.acknowledged]
                for unit in pending:
                    self.deliver([unit])
                self.clock.tick(LEASE_SECONDS + 1)
            lost = [unit for unit in self.units if unit not in self.acknowledged]
            assert lost == [], f"never acknowledged once the faults stopped: {lost}"
            self.nothing_runs_twice_outside_the_window()
            self.writes_committed_once_per_window()
            TOTALS["schedules"] += 1
{%- if not source.http %}
            TOTALS["units in doubt at the end"] += sum(
                self.status(unit) == claims.State.IN_DOUBT for unit in self.units
            )
{%- endif %}
            TOTALS["units"] += len(self.units)
            TOTALS["second runs, all inside the window"] += sum(
                max(0, self.runs[unit] - 1 - self.expiries[unit]) for unit in self.units
            )
        finally:
            self.freezer.stop()
            for table in [*self.tables.values(), self.ledger]:
                store.client().delete_table(TableName=table)

    # The work: runs one unit and enlists its write; the target unit meets ``how``.

    def process(self, payload: Any) -> Any:
        unit = delivery.unit_id(payload)
        self.starts[unit] += 1
        how, self.how = (self.how, "normal") if unit == self.target else ("normal", self.how)
        if how == "crash_before":
            raise Crash
        if how == "concurrent_copy":  # the platform hands the unit to a second invocation
            assert unit not in self.invoke([unit]), "acknowledged while another copy held it"
        if how == "lease_lapse":  # this copy runs out of time; the redelivery takes over
            self.clock.tick(LEASE_SECONDS + 1)
            self.allowed[unit] += 1
            self.deliver([unit])
        effects.update(self.ledger, {"order_id": unit}, "ADD runs :one", values={":one": 1})
        self.runs[unit] += 1
        if how == "crash_after":  # the invocation dies before its completion is sent
            self.allowed[unit] += 1
            raise Crash
        return delivery.result(payload)

    def invoke(self, units: list[str]) -> list[str]:
        """One invocation; the units its source is then done with ([] if it crashed)."""
        try:
            context = FakeLambdaContext(remaining_millis=LEASE_SECONDS * 1000)
            return delivery.deliver(delivery.event(units), context)
        except Crash:
            return []

    def deliver(self, units: list[str]) -> None:
        acknowledged = self.invoke(units)
        early = [unit for unit in acknowledged if self.runs[unit] == 0]
{%- if not source.http %}
        if self.at_most_once:  # a unit in doubt is acknowledged, whether its work ran or not
            early = [unit for unit in early if self.status(unit) != claims.State.IN_DOUBT]
{%- endif %}
        assert early == [], f"acknowledged before the work ran: {early}"
        self.acknowledged.update(acknowledged)

    # What hypothesis chooses from.

    @rule(
        picks=st.lists(st.integers(0, UNITS - 1), min_size=1, max_size=BATCH),
        how=st.sampled_from(HOWS),
        fault=st.none() | st.tuples(st.sampled_from(FAULTS), st.sampled_from([1, ATTEMPTS])),
    )
    def deliver_units(
        self, picks: list[int], how: str, fault: tuple[tuple[str, str], int] | None
    ) -> None:
        units = list(dict.fromkeys(self.units[pick] for pick in picks))
        self.target, self.how = units[0], how
        TOTALS[f"deliveries ({how})"] += 1
        if fault is not None:
            (operation, kind), calls = fault
            TOTALS[f"faults ({kind})"] += 1
            self.server.inject(operation, kind, calls=calls)
            if operation in ("UpdateItem", "TransactWriteItems"):  # a completion not written
                self.allowed.update(units)
        try:
            self.deliver(units)
            if how == "duplicate":  # the same units again, at once
                self.deliver(units)
        finally:
            self.server.clear()

    @rule(seconds=st.sampled_from([1, LEASE_SECONDS + 1, LEASE_SECONDS + 1, TTL_SECONDS + 1]))
    def time_passes(self, seconds: int) -> None:
        if seconds > TTL_SECONDS:
            self.writes_committed_once_per_window()  # before a new window allows more
        self.clock.tick(seconds)
        if seconds > TTL_SECONDS:  # records expire: running again is a new window
            TOTALS["TTLs run out"] += 1
            self.expiries.update(unit for unit in self.units if self.starts[unit])
            self.acknowledged.clear()  # what the source still delivers runs again

    @invariant()
    def nothing_runs_twice_outside_the_window(self) -> None:
        for unit in self.units:
            if self.at_most_once:  # no window: the work never starts twice
                starts = self.starts[unit]
                assert starts <= 1 + self.expiries[unit], f"{unit}'s work started {starts} times"
                continue
            window = self.allowed[unit] + self.expiries[unit]
            assert self.runs[unit] <= 1 + window, f"{unit} ran {self.runs[unit]} times"

{%- if not source.http %}

    def status(self, unit: str) -> str | None:
        """The status of the unit's record, as the table has it now: under the key the
        handler gives it (events.py), which for some sources is not the order id."""
{%- if source.batch %}
        [found] = events.units(delivery.event([unit]), FakeLambdaContext(), business_id=None)
        key = {claims.KEY: {"S": found.key}}
{%- else %}
        handed = events.key(delivery.event([unit]), FakeLambdaContext(), business_id=None)
        key = {claims.KEY: {"S": handed}}
{%- endif %}
        table = self.tables["DEDUP_TABLE_NAME"]
        item = store.client().get_item(TableName=table, Key=key, ConsistentRead=True)
        return item.get("Item", {}).get(claims.STATUS, {}).get("S")
{%- endif %}

    def writes_committed_once_per_window(self) -> None:
        for unit in self.units:
            committed = committed_runs(store.client(), self.ledger, unit)
            assert committed <= 1 + self.expiries[unit], f"{unit}'s write committed {committed}x"


{% if source.http -%}
@pytest.mark.parametrize("at_most_once", [False], ids=["at least once"])  # the only mode here
{%- else -%}
@pytest.mark.parametrize("at_most_once", [False, True], ids=["at least once", "at most once"])
{%- endif %}
def test_no_schedule_loses_a_unit_or_runs_it_twice_outside_the_window(
    endpoint, no_backoff, monkeypatch, capsys, at_most_once
):
    monkeypatch.setattr(service, "process", service.process)  # the machine replaces it
    monkeypatch.setattr(service, "AT_MOST_ONCE", at_most_once, raising=False)
    TOTALS.clear()

    steps = settings(stateful_step_count=10)
    # The decision lines go nowhere: kept, as pytest keeps a test's output, 10,000 schedules'
    # worth (make soak) would fill the memory of the machine.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        run_state_machine_as_test(lambda: Schedules(endpoint, at_most_once), settings=steps)

    with capsys.disabled():
        mode = "at most once" if at_most_once else "at least once"
        print(f"\n{mode}: " + ", ".join(f"{name}: {n}" for name, n in sorted(TOTALS.items())))
