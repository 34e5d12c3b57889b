"""Copies of the function in other processes, as Lambda runs concurrent invocations.

Each copy is an OS process with its own interpreter, boto3 client and connections, running
the handler as a deployed function does, against the DynamoDB endpoint it is told. The
parent hands every copy an event at the same moment. The copies' stand-in for
``service.process`` appends one line per run of a unit's work to a file they share (lines
that short are written whole), so the parent can count how often each unit really ran.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SETTINGS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_DYNAMODB",
    *("DEDUP_TABLE_NAME", "DEDUP_TTL_SECONDS"),
)


class Copies:
    """``count`` copies of the function, started once, each waiting for events to deliver."""

    def __init__(self, count: int, runs_file: Path, work_seconds: float = 0.02) -> None:
        self.runs_file = runs_file
        self.runs_file.touch()
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, as Lambda's is
        self._pipes: list[Connection] = []
        self._processes = []
        for _ in range(count):
            ours, theirs = spawn.Pipe()
            process = spawn.Process(
                target=_serve, args=(theirs, str(runs_file), work_seconds), daemon=True
            )
            process.start()
            self._pipes.append(ours)
            self._processes.append(process)

    def deliver(self, events: list[Any]) -> list[list[str]]:
        """Hand ``events[n]`` to copy n, all at the same moment; what each acknowledged."""
        settings = {name: os.environ[name] for name in SETTINGS}
        start_at = time.time() + 0.2
        for pipe, event in zip(self._pipes, events, strict=True):
            pipe.send((event, settings, start_at))
        answers = []
        for pipe in self._pipes[: len(events)]:
            if not pipe.poll(60):
                raise TimeoutError("a copy of the function did not answer within 60 s")
            answer = pipe.recv()
            if isinstance(answer, BaseException):
                raise answer
            answers.append(answer)
        return answers

    def runs(self) -> Counter[str]:
        """How often each unit's work ran, in every copy, so far."""
        return Counter(self.runs_file.read_text(encoding="utf-8").split())

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(None)
        for process in self._processes:
            process.join(timeout=10)


def _serve(pipe: Connection, runs_file: str, work_seconds: float) -> None:
    """A copy: deliver each event it is sent, at the moment it is told, until told to stop."""
    from {{ cookiecutter.package_name }} import service
    from {{ cookiecutter.package_name }}.dedup import store
    from tools import delivery
    from tools.local_aws import FakeLambdaContext

    def process(payload: Any) -> Any:
        unit = delivery.unit_id(payload)
        with open(runs_file, "a", encoding="utf-8") as runs:
            runs.write(f"{unit}\n")
        time.sleep(work_seconds)
        return delivery.result(payload)

    service.process = process
    service.AT_MOST_ONCE = False  # type: ignore[attr-defined]  # the proof's own choice
    service.LEASE_SECONDS = None  # type: ignore[attr-defined]
    while (message := pipe.recv()) is not None:
        event, settings, start_at = message
        if settings["AWS_ENDPOINT_URL_DYNAMODB"] != os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
            store.use_client(None)  # made again, for the new endpoint, on first use
        os.environ.update(settings)
        time.sleep(max(0.0, start_at - time.time()))
        try:
            pipe.send(delivery.deliver(event, FakeLambdaContext()))
        except Exception as error:  # handed to the parent, which raises it in the test
            pipe.send(error)
