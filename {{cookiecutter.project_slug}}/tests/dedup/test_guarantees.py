{%- import "common/source.j2" as source with context -%}
{%- if source.http -%}
"""LEASE_SECONDS, service.py's bound on one request's work: how long its key is held.

A request's key is held for the invocation's remaining time, and no longer than
``LEASE_SECONDS`` where service.py sets it, so that a copy that died frees its key that much
sooner. (At most once is not for this source: a client chooses by retrying with the same
``Idempotency-Key``.) These tests set the name on a service module of their own.
"""

from __future__ import annotations

import types
from typing import Any

import pytest
from freezegun import freeze_time

from {{ cookiecutter.package_name }} import handler, service
from {{ cookiecutter.package_name }}.dedup import store
from tools import delivery
from tools.local_aws import FakeLambdaContext

START = "2026-01-01 12:00:00"
START_EPOCH = 1767268800


class Crash(BaseException):  # not an Exception: nothing catches it, the invocation dies here
    """The invocation dies after the work, before its completion is written."""


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A service module of the test's own, holding ``process``: it notes each request it runs."""
    module = types.ModuleType(service.__name__)
    module.ran = []  # type: ignore[attr-defined]

    def process(request: Any) -> Any:
        module.ran.append(delivery.unit_id(request))  # type: ignore[attr-defined]
        return delivery.result(request)

    module.process = process  # type: ignore[attr-defined]
    monkeypatch.setattr(handler, "service", module)
    return module


@pytest.mark.parametrize(("remaining", "lease"), [(30_000, 5.0), (3_000, 3.0)])
def test_the_lease_is_lease_seconds_or_the_remaining_time_whichever_is_less(
    dynamodb, own, stored, monkeypatch, remaining, lease
):
    monkeypatch.setattr(own, "LEASE_SECONDS", 5, raising=False)
    seen: list[float] = []
    context = FakeLambdaContext(remaining_millis=remaining)

    def process(request: Any) -> Any:
        (record,) = [r for r in _records(dynamodb) if r["status"] == "IN_PROGRESS"]
        seen.append(float(record["lease_expires_at"]))
        return delivery.result(request)

    monkeypatch.setattr(own, "process", process)
    with freeze_time(START):
        delivery.deliver(delivery.event(["k-lease"]), context)

    assert seen == [START_EPOCH + lease]


def test_a_key_whose_copy_died_is_free_once_lease_seconds_have_passed(dynamodb, own, monkeypatch):
    monkeypatch.setattr(own, "LEASE_SECONDS", 5, raising=False)
    context = FakeLambdaContext(remaining_millis=30_000)
    process = own.process

    def dies_once(request: Any) -> Any:
        monkeypatch.setattr(own, "process", process)
        process(request)
        raise Crash

    monkeypatch.setattr(own, "process", dies_once)
    with freeze_time(START) as clock:
        with pytest.raises(Crash):
            delivery.deliver(delivery.event(["k-died"]), context)
        clock.tick(4.5)
        assert delivery.deliver(delivery.event(["k-died"]), context) == []  # 409: still held
        clock.tick(1)  # 5.5 s: the lease has ended, 24.5 s before the invocation would have
        assert delivery.deliver(delivery.event(["k-died"]), context) == ["k-died"]

    assert own.ran == ["k-died", "k-died"]


def _records(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=store.table_name())["Items"]
    return [{name: next(iter(v.values())) for name, v in item.items()} for item in items]
{%- else -%}
"""At least once or at most once, and LEASE_SECONDS: what a crash may cost, as service.py chooses.

At least once (the default), a {{ source.unit }} whose invocation died after its side effect runs
again once its lease ends. At most once (``AT_MOST_ONCE = True``), it never runs again: the
first delivery after the lease ends puts it IN_DOUBT and acknowledges it, as does every
later one, with one ``in_doubt`` line each; work that raised puts it in doubt itself, unless
it raised ``NothingDone``, which releases it. ``LEASE_SECONDS`` bounds the lease. These tests
set the names on a service module of their own, so they hold whatever service.py says.
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
from freezegun import freeze_time

from {{ cookiecutter.package_name }} import handler, service
from {{ cookiecutter.package_name }}.dedup import NothingDone, claims, keys
from tools import delivery
from tools.local_aws import FakeLambdaContext, default_ttl_seconds

START = "2026-01-01 12:00:00"
START_EPOCH = 1767268800
REMAINING_SECONDS = 30  # each invocation's remaining time when it starts
TTL_SECONDS = default_ttl_seconds()


class Crash(BaseException):  # not an Exception: nothing catches it, the invocation dies here
    """The invocation dies after the side effect, before its completion is written."""


class Service:
    """A service module of the test's own: ``process`` does a side effect (noted in
    ``effects``) and then does what the test says; ``unit_id`` is the test unit's id."""

    def __init__(self) -> None:
        self.module = types.ModuleType(service.__name__)
        self.module.process = self.process  # type: ignore[attr-defined]
        self.module.unit_id = delivery.unit_id  # type: ignore[attr-defined]
        self.effects: list[str] = []
        self.then: BaseException | None = None  # raised once, after the side effect
        self.during: Any = None  # called during the work, before it ends

    def process(self, payload: Any) -> Any:
        self.effects.append(delivery.unit_id(payload))
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if self.then is not None:
            then, self.then = self.then, None
            raise then
        return delivery.result(payload)

    def choose(self, *, at_most_once: bool, lease_seconds: float | None = None) -> None:
        self.module.AT_MOST_ONCE = at_most_once  # type: ignore[attr-defined]
        self.module.LEASE_SECONDS = lease_seconds  # type: ignore[attr-defined]


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch) -> Service:
    module = Service()
    monkeypatch.setattr(handler, "service", module.module)
    return module


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext(remaining_millis=REMAINING_SECONDS * 1000)


def deliver(unit: str, context: FakeLambdaContext) -> bool:
    """Deliver ``unit`` once; whether the platform is then done with it."""
    return delivery.deliver(delivery.event([unit]), context) == [unit]


def crash_after_the_side_effect(own: Service, unit: str, context: FakeLambdaContext) -> None:
    own.then = Crash()
    with pytest.raises(Crash):
        deliver(unit, context)


def logged(capsys: pytest.CaptureFixture[str], decision: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    return [line for line in lines if line["decision"] == decision]


def test_at_least_once_a_crash_after_the_side_effect_runs_it_again(dynamodb, own, context):
    own.choose(at_most_once=False)
    with freeze_time(START) as clock:
        crash_after_the_side_effect(own, "c-1", context)
        clock.tick(REMAINING_SECONDS + 1)  # the crashed copy's lease has ended

        assert deliver("c-1", context)

    assert own.effects == ["c-1", "c-1"]  # the documented window: done twice


def test_at_most_once_a_crash_after_the_side_effect_never_runs_it_again(
    dynamodb, own, context, stored, capsys
):
    own.choose(at_most_once=True)
    with freeze_time(START) as clock:
        crash_after_the_side_effect(own, "c-2", context)
        crashed = stored(keys.key("c-2", context))[claims.CLAIM_TOKEN]
        clock.tick(REMAINING_SECONDS + 1)
        capsys.readouterr()

        assert deliver("c-2", context)  # acknowledged without running
        (line,) = logged(capsys, "in_doubt")
        clock.tick(TTL_SECONDS - REMAINING_SECONDS - 10)  # as long as a completed record
        assert deliver("c-2", context)
        assert len(logged(capsys, "in_doubt")) == 1

    assert own.effects == ["c-2"]
    assert (line["level"], line["InDoubt"], line["reason"]) == ("ERROR", 1, "lease lapsed")
    record = stored(keys.key("c-2", context))
    assert record[claims.STATUS] == claims.State.IN_DOUBT
    assert record[claims.CLAIM_TOKEN] == crashed  # whose copy it was
    assert record[claims.IN_DOUBT_REASON] == "lease lapsed"
    since = int(record[claims.IN_DOUBT_SINCE])
    assert since == START_EPOCH + REMAINING_SECONDS + 1
    assert int(record[claims.EXPIRES_AT]) >= since + TTL_SECONDS
    assert delivery.unit_id(json.loads(record[claims.UNIT])) == "c-2"  # as delivered


def test_at_most_once_work_that_raised_is_in_doubt_and_acknowledged_next_time(
    dynamodb, own, context, stored, capsys
):
    own.choose(at_most_once=True)
    own.then = TimeoutError("the SMS gateway did not answer")

    assert not deliver("r-1", context)  # reported failed, as any failure
    record = stored(keys.key("r-1", context))
    assert record[claims.STATUS] == claims.State.IN_DOUBT  # written by the copy that raised
    assert record[claims.IN_DOUBT_REASON].startswith("raised: TimeoutError(")
    capsys.readouterr()

    assert deliver("r-1", context)  # at once: no lease to wait for
    assert [line["dedup_key"] for line in logged(capsys, "in_doubt")] == [keys.key("r-1", context)]
    assert own.effects == ["r-1"]


@pytest.mark.parametrize("at_most_once", [False, True], ids=["at least once", "at most once"])
def test_nothing_done_releases_the_unit_and_it_runs_again_at_once(
    dynamodb, own, context, stored, at_most_once
):
    own.choose(at_most_once=at_most_once)
    own.then = NothingDone("the order failed validation before any call")

    assert not deliver("n-1", context)
    assert stored(keys.key("n-1", context)) is None  # released

    assert deliver("n-1", context)
    assert own.effects == ["n-1", "n-1"]


@pytest.mark.parametrize("at_most_once", [False, True], ids=["at least once", "at most once"])
def test_an_owner_set_lease_ends_on_time_after_a_crash(dynamodb, own, context, at_most_once):
    own.choose(at_most_once=at_most_once, lease_seconds=5)
    with freeze_time(START) as clock:
        crash_after_the_side_effect(own, "l-1", context)
        clock.tick(4.5)
        assert not deliver("l-1", context)  # still held: handed back
        clock.tick(1)  # 5.5 s: the lease has ended, 24.5 s before the invocation would have

        assert deliver("l-1", context)

    assert own.effects == (["l-1"] if at_most_once else ["l-1", "l-1"])


@pytest.mark.parametrize(("remaining", "lease"), [(30_000, 5.0), (3_000, 3.0)])
def test_the_lease_is_lease_seconds_or_the_remaining_time_whichever_is_less(
    dynamodb, own, stored, remaining, lease
):
    own.choose(at_most_once=False, lease_seconds=5)
    context = FakeLambdaContext(remaining_millis=remaining)
    leases: list[float] = []
    own.during = lambda: leases.append(
        float(stored(keys.key("l-2", context))[claims.LEASE_EXPIRES_AT])
    )
    with freeze_time(START):
        assert deliver("l-2", context)

    assert leases == [START_EPOCH + lease]


@pytest.mark.parametrize("at_most_once", [False, True], ids=["at least once", "at most once"])
def test_work_longer_than_its_lease(dynamodb, own, context, stored, capsys, at_most_once):
    """At least once, a delivery after the lease takes over and runs the work again: the first
    copy's completion is refused (lease_lost). At most once, that delivery puts the unit in
    doubt without running it, and the first copy, finishing, completes it after all."""
    own.choose(at_most_once=at_most_once, lease_seconds=5)
    redelivered: list[bool] = []
    with freeze_time(START) as clock:

        def outlives_its_lease() -> None:
            clock.tick(6)
            redelivered.append(deliver("w-1", context))

        own.during = outlives_its_lease
        first = deliver("w-1", context)

    assert (first, redelivered) == (True, [True])
    decisions = [line["decision"] for line in logged(capsys, "in_doubt")]
    record = stored(keys.key("w-1", context))
    assert record[claims.STATUS] == claims.State.COMPLETED
    if at_most_once:
        assert own.effects == ["w-1"]
        assert decisions == ["in_doubt"]
        assert {claims.IN_DOUBT_REASON, claims.UNIT}.isdisjoint(record)  # no longer in doubt
    else:
        assert own.effects == ["w-1", "w-1"]
        assert decisions == []


def test_a_unit_in_doubt_stays_in_doubt_when_the_service_goes_back_to_at_least_once(
    dynamodb, own, context, capsys
):
    own.choose(at_most_once=True)
    own.then = RuntimeError("the partner API answered 502 after taking the order")
    deliver("s-1", context)
    own.choose(at_most_once=False)
    capsys.readouterr()

    assert deliver("s-1", context)  # acknowledged, not run: what may have run is not run again

    assert own.effects == ["s-1"]
    assert len(logged(capsys, "in_doubt")) == 1


@pytest.mark.parametrize("at_most_once", [False, True], ids=["at least once", "at most once"])
def test_both_modes_cost_two_writes_per_fresh_unit_and_one_per_duplicate(
    dynamodb, own, context, at_most_once
):
    own.choose(at_most_once=at_most_once)
    sent: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: sent.append(model.name)
    )

    assert deliver("p-1", context)
    assert sorted(sent) == ["PutItem", "UpdateItem"]
    sent.clear()
    assert deliver("p-1", context)
    assert sent == ["PutItem"]
{%- if source.batch %}


def test_at_most_once_a_batch_goes_on_past_a_unit_in_doubt(dynamodb, own, context):
    own.choose(at_most_once=True)
    own.then = RuntimeError("sent, then failed")
    deliver("b-1", context)
    units = ["b-1", "b-2", "b-3"][: delivery.MAX_UNITS]

    assert delivery.deliver(delivery.event(units), context) == units

    assert own.effects == ["b-1", *units[1:]]
{%- endif %}
{%- endif %}
