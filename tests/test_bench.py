"""The benchmark keeps working: bench/run.py, once, at its smallest.

It measures and prints; its times are not judged here, only that every section comes out
with both contenders in it (make bench runs it at full size, and writes docs/batch-curve.png),
that the requests are those of the scenario, that the generated code keeps its requests in
flight within its bound, and that the endpoint it measures against routes each item to one of
its partitions.
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
        "Requests in flight at once",
        "Kafka batch of 40 over 4 partitions, against a 60 s function timeout",
        "Own-module import self-time",
        "Package size",
    ):
        assert section in report
    assert "| SQS batch of 10, fresh |" in report
    assert "| 20 / 20 |" in report  # 2 requests per fresh message, for both
    walls = table(report, "Wall time per invocation")
    # At most once costs what at least once does: 2 requests per fresh message.
    assert walls["SQS batch of 10, fresh, ours at most once"][-1] == "20 / 20"
    assert "| Kinesis batch of 10, unit 6 fails |" in report  # its releases are counted
    walls = table(report, "Wall time per invocation")
    for label, requests in (  # 2 requests per fresh unit, 1 per duplicate, for both
        ("SQS FIFO batch of 10 in 3 groups, fresh", "20 / 20"),
        ("SQS FIFO batch of 10 in 3 groups, duplicates", "10 / 10"),
        ("Kafka batch of 40 over 4 partitions, fresh", "80 / 80"),
        ("Kafka batch of 40 over 4 partitions, redelivered", "40 / 40"),
    ):
        assert walls[label][-1] == requests, label
    in_flight = table(report, "Requests in flight at once")
    assert len(in_flight) == len(walls)
    for label, (ours, theirs) in in_flight.items():
        assert 1 <= int(ours) <= 16, label  # store.MAX_CONCURRENT_REQUESTS
        assert int(theirs) == 1, label  # Powertools sends one request at a time


def table(report: str, title: str) -> dict[str, list[str]]:
    """The rows of the table under the line starting with ``title``: label -> other cells."""
    lines = report.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(title))
    rows = {}
    for line in lines[start + 4 :]:  # past the title, a blank line, the header, the rule
        if not line.startswith("|"):
            break
        label, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[label] = cells
    return rows


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
