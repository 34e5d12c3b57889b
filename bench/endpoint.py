"""The endpoint both contenders use: a baked project's DynamoDB server, in a process of its own.

In its own process so that the benchmark's CPU figures are the client's alone. It adds a
delay to every request, as DynamoDB has one seen from Lambda, and locks per item, not
globally, so that requests on different items overlap as they do in DynamoDB.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


class Endpoint:
    def __init__(self, project: Path, latency_seconds: float) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._pipe, theirs = spawn.Pipe()
        self._process = spawn.Process(
            target=_serve, args=(theirs, str(project), latency_seconds), daemon=True
        )
        self._process.start()
        self.url: str = self._ask("url")

    def requests(self) -> Counter[str]:
        """Requests received so far, by operation (counted by the server)."""
        return Counter(self._ask("requests"))

    def cpu_seconds(self) -> float:
        """CPU the server process has spent so far (moto's work, not the network's delay)."""
        return float(self._ask("cpu"))

    def close(self) -> None:
        self._pipe.send(None)
        self._process.join(timeout=10)

    def _ask(self, question: str) -> Any:
        self._pipe.send(question)
        return self._pipe.recv()


def _serve(pipe: Connection, project: str, latency_seconds: float) -> None:
    sys.path.insert(0, project)
    # DynamoDB's own CPU is not on the client's path; moto's is (a few ms per request, one
    # process). A longer switch interval lets each request thread finish its work before
    # another takes the GIL, so overlapping requests do not also pay for thrashing.
    sys.setswitchinterval(0.05)
    from tools.dynamodb_server import DynamoServer

    with DynamoServer(latency_seconds=latency_seconds) as server:
        answers = {
            "url": lambda: server.url,
            "requests": lambda: dict(server.requests),
            "cpu": time.process_time,
        }
        while (question := pipe.recv()) is not None:
            pipe.send(answers[question]())
