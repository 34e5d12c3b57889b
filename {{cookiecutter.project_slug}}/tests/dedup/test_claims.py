{%- import "common/source.j2" as source with context -%}
"""The dedup module on its own: claims, leases, expiry, keys, cost and failure, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from freezegun import freeze_time

{% if source.http -%}
from {{ cookiecutter.package_name }}.dedup import claims, effects, keys, responses, store
{% else -%}
from {{ cookiecutter.package_name }}.dedup import claims, effects, keys, once, store
{% endif -%}
from tools.local_aws import FakeLambdaContext, default_ttl_seconds

KEY = "orders#m-1"
START = "2026-01-01 12:00:00"
START_EPOCH = 1767268800


def run_unit(key: str, context: Any, work: Callable[[], object]) -> None:
{%- if source.http %}
    """One request through responses.respond_once, with ``work`` as the service's part."""

    def respond() -> dict[str, Any]:
        work()
        return {"statusCode": 200, "headers": {}, "body": "{}"}

    responses.respond_once(key, "the-same-request", context, respond)
{%- else %}
    """One unit through once.run, the path every handler's units take (at least once)."""
    once.run(key, None, context, lambda unit: work(), once.Guarantee())
{%- endif %}


def decisions_logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def requests_sent(dynamodb: Any) -> list[str]:
    """The name of every DynamoDB operation the client sends, in order."""
    sent: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: sent.append(model.name)
    )
    return sent


@freeze_time(START)
def test_a_fresh_claim_holds_the_unit_until_the_invocation_ends(dynamodb, stored):
    claim = claims.claim(KEY, lease_seconds=30)

    assert claim.state == claims.State.CLAIMED
    record = stored(KEY)
    assert record["status"] == "IN_PROGRESS"
    assert record["claim_token"] == claim.token
    assert float(record["lease_expires_at"]) == START_EPOCH + 30
    assert int(record["expires_at"]) == START_EPOCH + default_ttl_seconds()


def test_a_second_claim_during_the_lease_finds_the_unit_in_progress(dynamodb):
    first = claims.claim(KEY, lease_seconds=30)
    second = claims.claim(KEY, lease_seconds=30)

    assert first.state == claims.State.CLAIMED
    assert second.state == claims.State.IN_PROGRESS
    assert second.token is None
    assert second.holder["claim_token"] == {"S": first.token}  # the record it lost to


def test_a_claim_after_completion_finds_the_unit_completed(dynamodb):
    claims.complete(claims.claim(KEY, lease_seconds=30))

    assert claims.claim(KEY, lease_seconds=30).state == claims.State.COMPLETED


def test_completion_keeps_the_record_for_the_full_ttl_and_ends_the_lease(dynamodb, stored):
    with freeze_time(START) as clock:
        claim = claims.claim(KEY, lease_seconds=30)
        clock.tick(20)
        claims.complete(claim)

    record = stored(KEY)
    assert record["status"] == "COMPLETED"
    assert int(record["expires_at"]) == START_EPOCH + 20 + default_ttl_seconds()
    assert "lease_expires_at" not in record


def test_an_expired_record_still_in_the_table_counts_as_absent(dynamodb, stored):
    with freeze_time(START) as clock:
        claims.complete(claims.claim(KEY, lease_seconds=30))
        clock.tick(default_ttl_seconds() - 1)
        assert claims.claim(KEY, lease_seconds=30).state == claims.State.COMPLETED
        clock.tick(2)  # past expires_at; moto, like DynamoDB's lagging TTL, still holds it
        assert stored(KEY)["status"] == "COMPLETED"

        assert claims.claim(KEY, lease_seconds=30).state == claims.State.CLAIMED


def test_an_in_progress_claim_can_be_taken_over_once_its_lease_has_ended(dynamodb):
    with freeze_time(START) as clock:
        claims.claim(KEY, lease_seconds=30)  # this copy crashes and never comes back
        clock.tick(29)
        assert claims.claim(KEY, lease_seconds=30).state == claims.State.IN_PROGRESS
        clock.tick(2)

        assert claims.claim(KEY, lease_seconds=30).state == claims.State.CLAIMED


def test_release_deletes_the_claim_so_the_retry_runs_at_once(dynamodb, stored):
    claims.release(claims.claim(KEY, lease_seconds=30))

    assert stored(KEY) is None
    assert claims.claim(KEY, lease_seconds=30).state == claims.State.CLAIMED


def test_a_copy_whose_lease_lapsed_can_neither_complete_nor_release_the_new_claim(
    dynamodb, stored, capsys
):
    with freeze_time(START) as clock:
        late = claims.claim(KEY, lease_seconds=30)
        clock.tick(31)
        current = claims.claim(KEY, lease_seconds=30)

        claims.complete(late)
        assert stored(KEY)["status"] == "IN_PROGRESS"
        claims.release(late)
        assert stored(KEY)["claim_token"] == current.token

    assert [line["decision"] for line in decisions_logged(capsys)] == ["lease_lost", "lease_lost"]


def test_a_completed_unit_cannot_be_released(dynamodb, stored):
    claim = claims.claim(KEY, lease_seconds=30)
    claims.complete(claim)

    claims.release(claim)

    assert stored(KEY)["status"] == "COMPLETED"


def test_a_completion_sent_twice_is_recognised_as_done_the_second_time(dynamodb, capsys):
    claim = claims.claim(KEY, lease_seconds=30)
    claims.complete(claim)
    claims.complete(claim)  # as when the first one's answer was lost and the client sent it again

    assert [line["decision"] for line in decisions_logged(capsys)] == ["processed", "processed"]


def test_a_completion_that_cannot_be_recorded_is_reported_and_never_raises(
    dynamodb, stored, capsys
):
    claim = claims.claim(KEY, lease_seconds=30)
    with Stubber(dynamodb) as stub:
        stub.add_client_error("update_item", "ProvisionedThroughputExceededException")
        claims.complete(claim)  # the work is done: failing the unit would only run it again

    assert stored(KEY)["status"] == "IN_PROGRESS"  # until its lease ends
    assert [line["decision"] for line in decisions_logged(capsys)] == ["completion_not_recorded"]


def test_a_commit_refused_by_a_writes_condition_raises_and_releases_the_claim(
    dynamodb, stored, capsys
):
    claim = claims.claim(KEY, lease_seconds=30)
    refused = {
        "Put": {
            "TableName": store.table_name(),
            "Item": {"id": {"S": "elsewhere"}},
            "ConditionExpression": "attribute_exists(id)",
        }
    }

    with pytest.raises(effects.WriteRefused):
        claims.complete_with(claim, [refused])

    assert stored(KEY) is None  # released: the retry runs at once
    assert stored("elsewhere") is None
    assert [line["decision"] for line in decisions_logged(capsys)] == ["failed", "released"]


def test_a_fresh_unit_costs_two_writes_and_a_duplicate_one(requests_sent, context):
    run_unit(KEY, context, lambda: None)
    assert requests_sent == ["PutItem", "UpdateItem"]

    requests_sent.clear()
    run_unit(KEY, context, lambda: None)
    assert requests_sent == ["PutItem"]


def test_failed_work_is_released_and_its_error_raised(requests_sent, context, stored):
    def work() -> None:
        raise ValueError("payment declined")

    with pytest.raises(ValueError, match="payment declined"):
        run_unit(KEY, context, work)

    assert requests_sent == ["PutItem", "DeleteItem"]
    assert stored(KEY) is None


def test_a_failure_is_logged_with_its_traceback(dynamodb, context, capsys):
    def work() -> None:
        raise ValueError("payment declined")

    with pytest.raises(ValueError, match="payment declined"):
        run_unit(KEY, context, work)

    (failed,) = [line for line in decisions_logged(capsys) if line["decision"] == "failed"]
    assert failed["level"] == "ERROR"
    assert failed["traceback"].rstrip().endswith("ValueError: payment declined")


def test_the_lease_ends_when_the_invocation_would(dynamodb, stored):
    leases: list[str] = []
    with freeze_time(START):
        run_unit(
            KEY,
            FakeLambdaContext(remaining_millis=12_500),
            lambda: leases.append(stored(KEY)["lease_expires_at"]),
        )
    assert float(leases[0]) == START_EPOCH + 12.5


def test_the_key_is_the_function_name_and_the_unit_id(monkeypatch):
    context = FakeLambdaContext(function_name="orders-fn")
    assert keys.key("m-1", context) == "orders-fn#m-1"

    monkeypatch.setenv(keys.OPERATION_ENV, "orders")
    assert keys.key("m-1", context) == "orders#m-1"


@pytest.mark.parametrize(
    "unit_id",
    ["x" * 3000, "€" * 1000, "bad surrogate \ud800", "sha256:" + "0" * 64],
    ids=["3000 ASCII characters", "1000 euro signs", "not valid UTF-8", "looks hashed"],
)
def test_an_id_too_long_or_unencodable_for_a_key_is_hashed_and_still_works(
    dynamodb, context, unit_id, capsys
):
    key = keys.key(unit_id, context)
    runs: list[str] = []

    run_unit(key, context, lambda: runs.append("run"))
    run_unit(key, context, lambda: runs.append("run"))

    _, _, stored_id = key.partition("#")
    assert stored_id.startswith(keys.HASHED_ID_PREFIX)
    assert len(key.encode()) < 2048  # DynamoDB's limit for a partition key
    assert runs == ["run"]
    assert [line["decision"] for line in decisions_logged(capsys)] == [
        "processed",
        "duplicate_skipped",
    ]


def test_ids_up_to_the_readable_limit_stay_readable_and_distinct_ids_stay_distinct(context):
    readable = "é" * (keys.MAX_READABLE_ID_BYTES // 2)  # two bytes each in UTF-8
    assert keys.key(readable, context).endswith("#" + readable)
    longer = [readable + "a", readable + "b"]
    assert len({keys.key(unit_id, context) for unit_id in longer}) == 2


@pytest.mark.parametrize("operation", ["orders#v2", "o" * 300])
def test_an_operation_that_cannot_be_a_key_prefix_is_a_configuration_error(
    context, monkeypatch, operation
):
    monkeypatch.setenv(keys.OPERATION_ENV, operation)
    with pytest.raises(store.NotConfigured, match=keys.OPERATION_ENV):
        keys.key("m-1", context)


def test_every_decision_is_one_json_line_that_names_the_key(dynamodb, context, capsys):
    run_unit(KEY, context, lambda: None)
    run_unit(KEY, context, lambda: None)

    lines = decisions_logged(capsys)
    assert [(line["decision"], line["dedup_key"]) for line in lines] == [
        ("processed", KEY),
        ("duplicate_skipped", KEY),
    ]
    assert all(line["level"] == "INFO" for line in lines)


def test_a_missing_table_fails_closed_without_running_the_work(dynamodb, context, monkeypatch):
    monkeypatch.setenv(store.TABLE_NAME_ENV, "no-such-table")
    ran: list[str] = []

    with pytest.raises(store.StoreUnavailable):
        run_unit(KEY, context, lambda: ran.append("work"))
    assert ran == []


def test_an_unreachable_store_fails_closed_without_running_the_work(context, capsys):
    closed_port = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    store.use_client(closed_port)
    ran: list[str] = []
    try:
        with pytest.raises(store.StoreUnavailable):
            run_unit(KEY, context, lambda: ran.append("work"))
    finally:
        store.use_client(None)
    assert ran == []
    assert [line["decision"] for line in decisions_logged(capsys)] == ["store_unavailable"]


def test_throttling_fails_closed_without_running_the_work(dynamodb, context):
    ran: list[str] = []
    with Stubber(dynamodb) as stub:
        stub.add_client_error("put_item", "ProvisionedThroughputExceededException")
        with pytest.raises(store.StoreUnavailable):
            run_unit(KEY, context, lambda: ran.append("work"))
    assert ran == []


@pytest.mark.parametrize("setting", [store.TABLE_NAME_ENV, store.TTL_SECONDS_ENV])
def test_a_missing_setting_fails_closed_and_says_which(
    dynamodb, context, monkeypatch, capsys, setting
):
    monkeypatch.delenv(setting)
    ran: list[str] = []

    with pytest.raises(store.NotConfigured, match=setting):
        run_unit(KEY, context, lambda: ran.append("work"))

    assert ran == []
    (line,) = decisions_logged(capsys)
    assert line["decision"] == "store_unavailable"
    assert setting in line["error"]
    assert "template.yaml" in line["error"]


@pytest.mark.parametrize("value", ["", "0", "a day", "-5", "3.5"])
def test_a_ttl_that_is_not_a_whole_number_of_seconds_fails_closed(
    dynamodb, context, monkeypatch, value
):
    monkeypatch.setenv(store.TTL_SECONDS_ENV, value)
    with pytest.raises(store.NotConfigured, match="whole number of seconds"):
        run_unit(KEY, context, lambda: None)


@freeze_time(START)
def test_the_ttl_is_the_one_the_environment_gives(dynamodb, stored, monkeypatch):
    monkeypatch.setenv(store.TTL_SECONDS_ENV, "7200")

    claims.complete(claims.claim(KEY, lease_seconds=30))

    assert int(stored(KEY)["expires_at"]) == START_EPOCH + 7200


def test_one_client_per_container_created_on_first_use():
    store.use_client(None)
    try:
        assert store.client() is store.client()
    finally:
        store.use_client(None)


def test_the_client_gives_up_after_three_attempts_and_has_a_connection_per_request():
    store.use_client(None)
    try:
        config = store.client().meta.config
    finally:
        store.use_client(None)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.max_pool_connections == store.MAX_CONCURRENT_REQUESTS
