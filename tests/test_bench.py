"""The benchmark keeps working: bench/run.py, once, at its smallest.

It measures and prints; what it prints is not judged here, only that every section comes out
with both contenders in it (make bench runs it at full size, and writes docs/batch-curve.png),
and that the endpoint it measures against routes each item to one of its partitions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from conftest import TEMPLATE_DIR, run

pytestmark = pytest.mark.full  # the full tier only (make test): see README.md


def test_the_benchmark_runs_and_reports_both_contenders():
    result = run([sys.executable, "bench/run.py", "--tiny"], cwd=TEMPLATE_DIR, timeout=900)

    assert result.returncode == 0, result.stderr[-3000:]
    report = result.stdout
    for section in (
        "Wall time per invocation",
        "Requests per unit, by operation",
        "Client CPU per unit",
        "SQS batch wall time against batch size",
        "Own-module import self-time",
        "Package size",
    ):
        assert section in report
    assert "| SQS batch of 10, fresh |" in report
    assert "| 20 / 20 |" in report  # 2 requests per fresh message, for both
    assert "| Kinesis batch of 10, unit 6 fails |" in report  # its releases are counted


def test_the_endpoint_keeps_each_item_on_one_partition_and_spreads_the_items(
    bake: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
):
    """A claim and its completion must meet on one partition, or every completion would be
    refused; and the items must spread, or the partitions would be one server again."""
    monkeypatch.syspath_prepend(str(TEMPLATE_DIR / "bench"))
    from endpoint import Endpoint

    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    endpoint = Endpoint(bake(event_source="sqs"), latency_seconds=0.0, partitions=3)
    try:
        session = boto3.Session()
        endpoint.route(session)
        endpoint.create_table("units")
        client = session.client("dynamodb", endpoint_url=endpoint.url)
        for n in range(30):
            key = {"id": {"S": f"op#unit-{n}"}}
            client.put_item(TableName="units", Item={**key, "status": {"S": "IN_PROGRESS"}})
            client.update_item(
                TableName="units",
                Key=key,
                UpdateExpression="SET #s = :done",
                ConditionExpression="#s = :claimed",  # refused where the claim is not
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":done": {"S": "COMPLETED"},
                    ":claimed": {"S": "IN_PROGRESS"},
                },
            )

        by_partition = endpoint.requests_by_partition()
        assert [sent["PutItem"] > 0 for sent in by_partition] == [True, True, True]
        assert [sent["PutItem"] - sent["UpdateItem"] for sent in by_partition] == [0, 0, 0]
        assert sum(sent["PutItem"] for sent in by_partition) == 30
        with pytest.raises(ValueError, match="different partitions"):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "units", "Item": {"id": {"S": f"op#other-{n}"}}}}
                    for n in range(10)
                ]
            )
    finally:
        endpoint.close()
