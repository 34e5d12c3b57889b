"""Fixtures for every test: fake AWS credentials, the dedup table in moto, a Lambda context.

Nothing here reaches AWS. The table is created from template.yaml's own definition, and the
TTL is the template's default, so the tests exercise what a deployment would run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from {{ cookiecutter.package_name }} import dedup
from tools.local_aws import FakeLambdaContext, create_dedup_table, default_ttl_seconds

TABLE_NAME = "dedup-test"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials (so nothing can reach a real account) and the function's settings."""
    for name in ("AWS_PROFILE", "DEDUP_OPERATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(dedup.TABLE_NAME_ENV, TABLE_NAME)
    monkeypatch.setenv(dedup.TTL_SECONDS_ENV, str(default_ttl_seconds()))


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A moto DynamoDB client holding the dedup table, injected into dedup.py."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_dedup_table(client, TABLE_NAME)
        dedup.use_client(client)
        yield client
        dedup.use_client(None)


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def stored(dynamodb: Any) -> Any:
    """``stored(key)``: the dedup record under ``key`` as plain values, or None."""

    def read(key: str) -> dict[str, str] | None:
        item = dynamodb.get_item(TableName=TABLE_NAME, Key={dedup.KEY: {"S": key}}).get("Item")
        return None if item is None else {name: next(iter(v.values())) for name, v in item.items()}

    return read
