"""Fixtures for every test: fake AWS credentials, the function's settings, DynamoDB two ways.

Nothing here reaches AWS. ``dynamodb`` is moto in this process (fast; most tests use it);
``endpoint`` is moto served over HTTP on 127.0.0.1, atomic per item and able to fail on
demand (tools/dynamodb_server.py), for races between processes and for faults. Either way
the tables are built from template.yaml's own definitions, and the settings are the ones
template.yaml gives the function, so the tests exercise what a deployment would run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import freezegun.api
import pytest
from botocore.retries.standard import ExponentialBackoff, RetryQuotaChecker
from hypothesis import HealthCheck, settings
from moto import mock_aws

from {{ cookiecutter.package_name }}.dedup import store
from tools.dynamodb_server import DynamoServer
from tools.local_aws import FakeLambdaContext, create_ledger, create_tables, function_environment

# freezegun would hand real time to code near the top of a thread's stack (a batch's claims
# run in threads): with no stack inspection, every thread sees the frozen clock.
freezegun.api.call_stack_inspection_limit = 0

# The randomized schedules (tests/dedup/test_schedules.py): a quick run by default, a long one
# with `make soak`.
settings.register_profile(
    "default", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "soak", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials (so nothing can reach a real account) and the function's settings."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in function_environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def moto() -> Iterator[None]:
    """moto in this process, for one test module at a time (each test makes its own tables)."""
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(moto: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto DynamoDB client holding fresh tables of template.yaml's, injected into the code."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    for name, value in create_tables(client, suffix=f"-{uuid.uuid4().hex[:8]}").items():
        monkeypatch.setenv(name, value)
    store.use_client(client)
    yield client
    store.use_client(None)


@pytest.fixture(scope="session")
def server() -> Iterator[DynamoServer]:
    """moto's DynamoDB over HTTP on 127.0.0.1, started once for the session."""
    with DynamoServer() as running:
        yield running


@pytest.fixture
def endpoint(server: DynamoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoServer]:
    """The HTTP endpoint with fresh tables, no faults, and the code's own client pointed at it.

    The code builds its client itself, as in Lambda: only AWS_ENDPOINT_URL_DYNAMODB differs.
    """
    tables = create_tables(server.client(), suffix=f"-{uuid.uuid4().hex[:8]}")
    for name, value in tables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)
    server.clear()
    store.use_client(None)
    yield server
    server.clear()
    store.use_client(None)


@pytest.fixture
def ledger(endpoint: DynamoServer) -> str:
    """A business table of the tests' own on the endpoint, for enlisted writes (its name)."""
    table = create_ledger(endpoint.client(), f"ledger-{uuid.uuid4().hex[:8]}")
    endpoint.clear()  # the test counts its own requests, from zero
    return table


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client retries at once instead of backing off (up to 3 s after a throttle): when
    a retry is sent does not change what it finds, and the fault tests send many.

    And it always makes all its attempts. botocore's retry quota, drained by many faults in a
    row, stops retries for a while (as it should in Lambda); in a test it would make how many
    attempts a fault meets depend on every test that ran before.
    """
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(RetryQuotaChecker, "acquire_retry_quota", lambda self, context: True)


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def stored(dynamodb: Any) -> Any:
    """``stored(key)``: the dedup record under ``key`` as plain values, or None."""

    def read(key: str) -> dict[str, Any] | None:
        table = store.table_name()
        item = dynamodb.get_item(TableName=table, Key={"id": {"S": key}}).get("Item")
        return None if item is None else {name: next(iter(v.values())) for name, v in item.items()}

    return read
