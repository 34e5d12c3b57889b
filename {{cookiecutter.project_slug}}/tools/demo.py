"""See the point in ten seconds, with no AWS account.

Delivers events/event.json to the handler three times, as an at-least-once event source may,
against an in-process DynamoDB (moto), with the real service.py, and prints what happened to
each unit of work; ``--verbose`` prints the JSON decision lines as the function logs them.

Usage: make demo [ARGS=--verbose]
   or: PYTHONPATH=src .venv/bin/python -m tools.demo [--verbose]
"""

from __future__ import annotations

import argparse
import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from {{ cookiecutter.package_name }} import handler
from {{ cookiecutter.package_name }}.dedup import store
from tools.local_aws import FakeLambdaContext, create_tables, function_environment

EVENT = Path(__file__).resolve().parent.parent / "events" / "event.json"
DELIVERIES = 3
SAYS = {
    "processed": "processed",
    "duplicate_skipped": "skipped as a duplicate",
    "in_progress": "in progress elsewhere: handed back to retry later",
    "failed": "failed: handed back to retry",
}


def deliver(event: dict[str, Any]) -> tuple[Any, list[str]]:
    """Run the handler once; return its result (or the error it raised) and what it printed."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        try:
            result: Any = handler.lambda_handler(event, FakeLambdaContext())
        except Exception as error:
            result = f"raised {error!r}"
    return result, printed.getvalue().splitlines()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Deliver events/event.json three times.")
    parser.add_argument("--verbose", action="store_true", help="print the JSON log lines too")
    verbose = parser.parse_args(argv).verbose
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo")
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", **function_environment())
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    with mock_aws():
        client = boto3.client("dynamodb")
        os.environ.update(create_tables(client))
        store.use_client(client)
        print(f"Delivering {EVENT.name} {DELIVERIES} times (in-process DynamoDB, no AWS):")
        decided: list[dict[str, Any]] = []
        for number in range(1, DELIVERIES + 1):
            result, lines = deliver(event)
            print(f"\ndelivery {number}:")
            for line in lines:
                entry = json.loads(line) if line.startswith("{") else {}
                if "decision" in entry:
                    decided.append(entry)
                    said = SAYS.get(entry["decision"], entry["decision"])
                    print(f"  {entry['dedup_key']}: {said}")
                if verbose:
                    print(f"    {line}")
            print(f"  handler returned: {json.dumps(result)}")
    units = {entry["dedup_key"] for entry in decided}
    runs = sum(entry["decision"] == "processed" for entry in decided)
    print(f"\n{len(units)} unit(s) delivered {DELIVERIES} times each; the work ran {runs} time(s).")


if __name__ == "__main__":
    main()
