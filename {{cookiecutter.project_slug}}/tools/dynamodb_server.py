"""DynamoDB on 127.0.0.1 for tests that need a real endpoint: moto, made atomic per item.

moto applies a conditional write in several steps and takes no lock, so two writers racing
for one item can both win (about one round in a hundred with eight writers); DynamoDB never
lets that happen. This server runs moto's own server application and holds a lock per item
while it handles a request, so requests on one item run one at a time and requests on
different items at once, as in DynamoDB.

Transactions run alone. moto makes a refused transaction undo its writes by copying every
table it touches first and putting the copies back after, so a write to any other item of
those tables that lands in between is undone with it: with requests running at once, a
committed completion and its business write were rolled back that way, and a later retry
wrote the business item a second time (found by tests/dedup/test_schedules.py). A transaction
therefore takes every lock, and runs while nothing else does. tests/dedup/test_endpoint.py shows
both: one winner among writers racing for an item, and no write lost to a refused
transaction.

It also plays the network and the service misbehaving, on demand, per operation and per
call (:meth:`DynamoServer.inject`):

* ``throttle``: a ThrottlingException, as when the table is over its capacity;
* ``server_error``: an HTTP 500 InternalServerError;
* ``drop``: the connection is closed before the request is applied;
* ``lost``: the request is applied, then the connection is closed: the client never hears
  that it succeeded, and retries;
* ``delay``: the answer comes ``seconds`` late (beyond the client's read timeout, the client
  gives up, and may retry while the first request is still being applied).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.core.model_instances import model_data
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

FAULT_KINDS = ("throttle", "server_error", "drop", "lost", "delay")
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_STRIPES = 64
_JSON = [("Content-Type", "application/x-amz-json-1.0")]
_THROTTLED = b'{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}'
_INTERNAL = b'{"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}'


@dataclass
class Fault:
    """What the next ``calls`` requests of ``operation`` (e.g. "PutItem") meet."""

    operation: str
    kind: str
    calls: int = 1
    seconds: float = 0.0


class DynamoServer:
    """moto's DynamoDB on a free port of 127.0.0.1, atomic per item, with injectable faults."""

    def __init__(self, latency_seconds: float = 0.0) -> None:
        self.latency_seconds = latency_seconds  # added to every request, like a network
        self.requests: Counter[str] = Counter()  # operation name: requests received
        self._faults: list[Fault] = []
        self._guard = threading.Lock()  # for the counter, the faults and the key schemas
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._key_names: dict[str, list[str]] = {}  # table: its key attributes (from CreateTable)
        self._moto = create_backend_app("dynamodb")  # DynamoDB only: no routing by host
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_RequestHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> DynamoServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def client(self, **config: Any) -> Any:
        """A boto3 DynamoDB client for this endpoint (``config``: a botocore Config's options)."""
        from botocore.config import Config

        return boto3.client(
            "dynamodb",
            endpoint_url=self.url,
            region_name=REGION,
            config=Config(**config) if config else None,
            **CREDENTIALS,
        )

    def new_table_name(self, prefix: str = "dedup") -> str:
        """A table name not used before on this server (moto's state outlives every test)."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def inject(self, operation: str, kind: str, calls: int = 1, seconds: float = 0.0) -> None:
        """Make the next ``calls`` requests of ``operation`` meet the fault ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(FAULT_KINDS)}")
        with self._guard:
            self._faults.append(Fault(operation, kind, calls, seconds))

    def clear(self) -> None:
        """No more faults, and the request counts start again from zero."""
        with self._guard:
            self._faults.clear()
            self.requests.clear()

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        request = json.loads(body or b"{}")
        fault = self._count_and_take_fault(operation, request)
        time.sleep(self.latency_seconds + (fault.seconds if fault else 0.0))
        if fault and fault.kind == "throttle":
            start_response("400 Bad Request", _JSON)
            return [_THROTTLED]
        if fault and fault.kind == "server_error":
            start_response("500 Internal Server Error", _JSON)
            return [_INTERNAL]
        if fault and fault.kind == "drop":
            return _close(environ, start_response)
        with self._locked(self._stripes_of(operation, request)):
            reply: dict[str, Any] = {}

            def keep(status: str, headers: list[Any], *_: Any) -> None:
                reply.update(status=status, headers=headers)

            answer = b"".join(self._moto(environ, keep))
        _forget_model_objects()
        if fault and fault.kind == "lost":
            return _close(environ, start_response)
        start_response(reply["status"], reply["headers"])
        return [answer]

    def _count_and_take_fault(self, operation: str, request: dict[str, Any]) -> Fault | None:
        with self._guard:
            self.requests[operation] += 1
            if operation == "CreateTable":
                key_schema = request.get("KeySchema", [])
                self._key_names[request["TableName"]] = [k["AttributeName"] for k in key_schema]
            for fault in self._faults:
                if fault.operation == operation and fault.calls > 0:
                    fault.calls -= 1
                    return fault
        return None

    def _stripes_of(self, operation: str, request: dict[str, Any]) -> list[int]:
        """The locks a request needs: the one of the item it touches, or all of them."""
        if operation == "TransactWriteItems":
            return list(range(_STRIPES))  # alone: see the module's docstring
        if operation not in ("PutItem", "UpdateItem", "DeleteItem", "GetItem"):
            return []
        table = request.get("TableName", "")
        key = request.get("Key")
        if key is None:  # a put names its item whole: keep its key attributes only
            names = self._key_names.get(table)
            if names is None:
                return list(range(_STRIPES))  # a table made elsewhere: lock them all
            key = {name: request["Item"].get(name) for name in names}
        digest = hashlib.sha256(json.dumps([table, key], sort_keys=True).encode()).digest()
        return [int.from_bytes(digest[:4], "big") % _STRIPES]

    @contextmanager
    def _locked(self, stripes: list[int]) -> Iterator[None]:
        with ExitStack() as held:
            for stripe in stripes:
                held.enter_context(self._stripes[stripe])
            yield


def _forget_model_objects() -> None:
    """Drop moto's list of every DynamoDB model object it has made (kept for its dashboard).

    The list would hold every item ever written, and each table copy a transaction makes:
    a long run (``make soak``) would fill the machine's memory with them.
    """
    for model in model_data["dynamodb"].values():
        model.instances_tracked.clear()


class _RequestHandler(MotoRequestHandler):
    """moto's, answering at once: without TCP_NODELAY, the answer's second write waits for
    the client's delayed acknowledgement, some 10 ms a request on loopback."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _close(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Close the client's connection without an answer, as a failing network would."""
    connection: socket.socket = environ["werkzeug.socket"]
    connection.shutdown(socket.SHUT_RDWR)
    start_response("500 Internal Server Error", _JSON)  # never reaches the client
    return []
