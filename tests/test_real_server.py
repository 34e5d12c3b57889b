"""A baked project against DynamoDB over real HTTP: racing processes, throttling, outages.

moto runs as a server on 127.0.0.1 that handles one request at a time: moto's own conditional
writes are not atomic under concurrency, real DynamoDB's are, and serving requests one by one
gives moto that property without touching the code under test. The baked handler runs in
separate processes, with the boto3 client it builds itself (AWS_ENDPOINT_URL_DYNAMODB points it
here), so these tests cover the path a deployed function takes, only the endpoint differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from conftest import TEMPLATE_DIR

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from orders_service import handler, service  # the default project name's package
    from tools.local_aws import FakeLambdaContext

    event_path, side_effects, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def process(record):
        with open(side_effects, "a") as log:
            log.write(record["messageId"] + "\\n")
        time.sleep(0.3)

    service.process = process
    event = json.load(open(event_path))
    time.sleep(max(0.0, start_at - time.time()))
    print("RESULT " + json.dumps(handler.lambda_handler(event, FakeLambdaContext())))
    """
)


class Dynamo:
    """moto's DynamoDB as an HTTP server, serving one request at a time, with a fault switch."""

    def __init__(self) -> None:
        self.table = f"dedup-{uuid.uuid4().hex[:8]}"  # moto's state outlives one server
        self.operations: Counter[str] = Counter()
        self.fault: Callable[[str], tuple[str, bytes] | None] = lambda operation: None
        moto = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
            self.operations[operation] += 1
            injected = self.fault(operation)
            if injected:
                status, body = injected
                start_response(status, [("Content-Type", "application/x-amz-json-1.0")])
                return [body]
            return moto(environ, start_response)

        self.server = make_server(
            "127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Dynamo:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def project(cookies_session: Any) -> Path:
    result = cookies_session.bake(template=str(TEMPLATE_DIR), extra_context={"event_source": "sqs"})
    path = Path(result.project_path)
    (path / "worker.py").write_text(WORKER)
    return path


@pytest.fixture
def dynamo(project: Path) -> Iterator[Dynamo]:
    with Dynamo() as server:
        client = boto3.client("dynamodb", endpoint_url=server.url, **_client_settings())
        sys.path.insert(0, str(project))
        try:
            from tools.local_aws import create_dedup_table
        finally:
            sys.path.remove(str(project))
        create_dedup_table(client, server.table)
        server.operations.clear()
        yield server


def _client_settings() -> dict[str, str]:
    return {
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def deliver(project: Path, dynamo: Dynamo, copies: int, tmp_path: Path) -> list[dict[str, Any]]:
    """Start ``copies`` processes that hand events/event.json to the handler at the same moment."""
    env = {
        **CREDENTIALS,
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{project / 'src'}:{project}",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamo.url,
        "DEDUP_TABLE_NAME": dynamo.table,
        "DEDUP_TTL_SECONDS": "3600",
    }
    start_at = str(time.time() + 1.5)
    side_effects = tmp_path / "side-effects.log"
    side_effects.touch()
    workers = [
        subprocess.Popen(
            [sys.executable, "worker.py", "events/event.json", str(side_effects), start_at],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr
        (line,) = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        results.append(json.loads(line.removeprefix("RESULT ")))
    return results


def message_ids(project: Path) -> list[str]:
    event = json.loads((project / "events" / "event.json").read_text())
    return [record["messageId"] for record in event["Records"]]


def test_racing_processes_run_each_message_once_and_never_ack_one_in_flight(
    project, dynamo, tmp_path
):
    copies = 6
    ids = message_ids(project)

    results = deliver(project, dynamo, copies, tmp_path)

    side_effects = (tmp_path / "side-effects.log").read_text().split()
    assert Counter(side_effects) == Counter(ids)  # each message's work ran exactly once
    failed = Counter(f["itemIdentifier"] for r in results for f in r["batchItemFailures"])
    # A copy that lost the race while the winner was still working reported the message
    # failed (SQS delivers it again); one that came after completion skipped it.
    assert set(failed) <= set(ids)
    assert all(count <= copies - 1 for count in failed.values())
    # Requests, counted at the server: 2 per processed message, 1 per duplicate, no reads.
    assert dynamo.operations == {
        "PutItem": copies * len(ids),
        "UpdateItem": len(ids),
    }


def test_throttling_fails_closed_after_the_clients_retries(project, dynamo, tmp_path):
    throttled = b'{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}'
    dynamo.fault = lambda operation: ("400 Bad Request", throttled)

    (result,) = deliver(project, dynamo, 1, tmp_path)

    ids = message_ids(project)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ids
    assert (tmp_path / "side-effects.log").read_text() == ""  # no business logic ran
    assert dynamo.operations == {"PutItem": 3 * len(ids)}  # 3 attempts each, then give up


def test_a_server_error_on_completion_still_acknowledges_the_finished_work(
    project, dynamo, tmp_path
):
    def fail_updates(operation: str) -> tuple[str, bytes] | None:
        if operation == "UpdateItem":
            return "500 Internal Server Error", b'{"__type": "InternalServerError"}'
        return None

    dynamo.fault = fail_updates

    (result,) = deliver(project, dynamo, 1, tmp_path)

    # The work is done; failing the message now would only make it run twice.
    assert result == {"batchItemFailures": []}
    assert sorted((tmp_path / "side-effects.log").read_text().split()) == sorted(
        message_ids(project)
    )


def test_an_unreachable_table_fails_closed(project, dynamo, tmp_path):
    dynamo.server.shutdown()
    dynamo.server.server_close()

    started = time.monotonic()
    (result,) = deliver(project, dynamo, 1, tmp_path)

    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == message_ids(project)
    assert (tmp_path / "side-effects.log").read_text() == ""
    assert time.monotonic() - started < 30  # bounded by the client's timeouts, not Lambda's
