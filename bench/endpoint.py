"""The endpoint both contenders use: a baked project's DynamoDB server, partitioned by item.

DynamoDB spreads a table's items over partitions and routes each request to the partition of
the item it names; requests on different items never queue behind one another. One moto
process cannot do that: every request takes a few ms of its CPU under one interpreter lock,
so a batch's overlapping requests would queue there, and the benchmark would measure moto.
So the endpoint is several processes, each a baked project's own server (atomic per item,
adding a delay to every request as DynamoDB has one seen from Lambda), each holding the items
whose key hashes to it, and each client routes a request on an item to its process.

Both contenders' clients are routed alike (:meth:`Endpoint.route` hooks the boto3 session
they are made from). The processes are apart from the client's so that the benchmark's CPU
figures are the client's alone; requests and CPU are summed over all of them. The requests in
flight are counted across all of them at once (a shared counter, taken under one lock as each
request starts and ends: a few microseconds), so that the most at once is the whole
endpoint's, not one process's.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import zlib
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

import boto3

ITEM_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "GetItem")
KEY = "id"  # the partition key of every table the benchmark uses, ours and Powertools'


class Endpoint:
    def __init__(self, project: Path, latency_seconds: float, partitions: int) -> None:
        # [requests in flight now, the most at once since the last reset], for all partitions
        self._in_flight = multiprocessing.get_context("spawn").Array("i", 2)
        self._partitions = [
            _Partition(project, latency_seconds, self._in_flight) for _ in range(partitions)
        ]
        self.urls = [partition.url for partition in self._partitions]
        self.url = self.urls[0]  # where table-level requests (CreateTable, ...) go

    def route(self, session: boto3.Session) -> None:
        """Send each item request of every client ``session`` makes to its item's partition.

        Register before the clients are made: a client copies the session's handlers.
        """

        def pick(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["bench_partition"] = self._partition_of(params)

        def redirect(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            partition = context.get("bench_partition")
            if partition is not None:
                params["url"] = self.urls[partition] + "/"

        for operation in (*ITEM_OPERATIONS, "TransactWriteItems"):
            session.events.register(f"before-parameter-build.dynamodb.{operation}", pick)
            session.events.register(f"before-call.dynamodb.{operation}", redirect)

    def clients(self) -> list[Any]:
        """One client per partition, for what every partition needs: its tables."""
        return [boto3.client("dynamodb", endpoint_url=url) for url in self.urls]

    def create_table(self, name: str) -> None:
        """A table keyed on KEY, on every partition."""
        for client in self.clients():
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )

    def requests(self) -> Counter[str]:
        """Requests received so far, by operation (counted by the servers)."""
        return sum(self.requests_by_partition(), Counter())

    def requests_by_partition(self) -> list[Counter[str]]:
        return [Counter(partition.ask("requests")) for partition in self._partitions]

    def cpu_seconds(self) -> float:
        """CPU the servers have spent so far (moto's work, not the network's delay)."""
        return sum(float(partition.ask("cpu")) for partition in self._partitions)

    def reset_peak(self) -> None:
        """Start counting the most requests in flight at once again from now."""
        with self._in_flight.get_lock():
            self._in_flight[1] = self._in_flight[0]

    def peak_in_flight(self) -> int:
        """The most requests the servers were answering at once since :meth:`reset_peak`."""
        with self._in_flight.get_lock():
            return self._in_flight[1]

    def close(self) -> None:
        for partition in self._partitions:
            partition.close()

    def _partition_of(self, params: dict[str, Any]) -> int:
        if "TransactItems" in params:  # a transaction must not span partitions
            entries = [next(iter(entry.values())) for entry in params["TransactItems"]]
            found = {self._partition_of(entry) for entry in entries}
            if len(found) != 1:
                raise ValueError("a transaction's items are on different partitions")
            return found.pop()
        key = (params.get("Key") or params["Item"])[KEY]
        return zlib.crc32(repr(key).encode()) % len(self.urls)


class _Partition:
    """One server process, answering questions about itself over a pipe."""

    def __init__(self, project: Path, latency_seconds: float, in_flight: SynchronizedArray) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._pipe, theirs = spawn.Pipe()
        self._process = spawn.Process(
            target=_serve, args=(theirs, str(project), latency_seconds, in_flight), daemon=True
        )
        self._process.start()
        self.url: str = self.ask("url")

    def ask(self, question: str) -> Any:
        self._pipe.send(question)
        return self._pipe.recv()

    def close(self) -> None:
        self._pipe.send(None)
        self._process.join(timeout=10)


def _serve(
    pipe: Connection, project: str, latency_seconds: float, in_flight: SynchronizedArray
) -> None:
    sys.path.insert(0, project)
    # A longer switch interval lets each request thread finish its work before another
    # takes the interpreter lock, so overlapping requests do not also pay for thrashing.
    sys.setswitchinterval(0.05)
    from tools.dynamodb_server import DynamoServer

    class Counted(DynamoServer):
        """The project's server, counting the requests it is answering (delay included)."""

        def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
            with in_flight.get_lock():
                in_flight[0] += 1
                in_flight[1] = max(in_flight[1], in_flight[0])
            try:
                return super()._app(environ, start_response)
            finally:
                with in_flight.get_lock():
                    in_flight[0] -= 1

    with Counted(latency_seconds=latency_seconds) as server:
        answers = {
            "url": lambda: server.url,
            "requests": lambda: dict(server.requests),
            "cpu": time.process_time,
        }
        while (question := pipe.recv()) is not None:
            pipe.send(answers[question]())
