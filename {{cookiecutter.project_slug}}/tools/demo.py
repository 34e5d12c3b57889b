"""See the point in ten seconds, with no AWS account.

Delivers events/event.json to the handler three times, as an at-least-once event source may,
against an in-process DynamoDB (moto), and prints what happened to each unit of work.

Usage: make demo   (or: python -m tools.demo)
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from {{ cookiecutter.package_name }} import dedup, handler
from tools.local_aws import FakeLambdaContext, create_dedup_table, default_ttl_seconds

EVENT = Path(__file__).resolve().parent.parent / "events" / "event.json"
DELIVERIES = 3
SAYS = {
    "processed": "processed",
    "duplicate_skipped": "skipped as a duplicate",
    "in_progress": "in progress elsewhere: handed back to retry later",
    "failed": "failed: handed back to retry",
}


def deliver(event: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """Run the handler once; return its result and the dedup decisions it logged."""
    logged = io.StringIO()
    with redirect_stdout(logged):
        result = handler.lambda_handler(event, FakeLambdaContext())
    lines = (json.loads(line) for line in logged.getvalue().splitlines())
    return result, [line for line in lines if "decision" in line]


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo",
        AWS_SECRET_ACCESS_KEY="demo",
        AWS_DEFAULT_REGION="us-east-1",
        DEDUP_TABLE_NAME="dedup-demo",
        DEDUP_TTL_SECONDS=str(default_ttl_seconds()),
    )
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    with mock_aws():
        client = boto3.client("dynamodb")
        create_dedup_table(client, "dedup-demo")
        dedup.use_client(client)
        print(f"Delivering {EVENT.name} {DELIVERIES} times (in-process DynamoDB, no AWS):")
        seen: list[dict[str, Any]] = []
        for number in range(1, DELIVERIES + 1):
            result, decisions = deliver(event)
            seen += decisions
            print(f"\ndelivery {number}:")
            for decision in decisions:
                said = SAYS.get(decision["decision"], decision["decision"])
                print(f"  {decision['dedup_key']}: {said}")
            print(f"  handler returned: {json.dumps(result)}")
    units = {decision["dedup_key"] for decision in seen}
    runs = sum(decision["decision"] == "processed" for decision in seen)
    print(f"\n{len(units)} unit(s) delivered {DELIVERIES} times each; the work ran {runs} time(s).")


if __name__ == "__main__":
    main()
