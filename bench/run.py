"""Benchmark the generated dedup against Powertools' idempotency utility, in one run.

Bakes an SQS, a Kinesis, an EventBridge, an SQS FIFO and an MSK (Kafka) project, starts one
DynamoDB endpoint (a baked
project's own server, atomic per item, adding a delay to every request as DynamoDB has one
seen from Lambda, run as several processes that each hold a share of the items, as DynamoDB's
partitions do: bench/endpoint.py), and runs the generated handlers and their Powertools
equivalents (bench/powertools_app.py) against it, alternating, with the same no-op work. It
prints medians and the ratio ours / Powertools of: requests per unit (counted by the server),
wall time per event and per batch, the most requests in flight at once (counted by the
endpoint), a curve of batch wall time against batch size, client CPU per unit, own-module
import self-time (with and without bytecode compiled ahead), and package size.

Each batch source is compared with the Powertools batch processor made for it (every one it
has: SQS, Kinesis, SQS FIFO with ``SqsFifoPartialProcessor``, Kafka with
``BatchProcessor(EventType.Kafka)``), with ``@idempotent_function`` on each record: see
bench/powertools_app.py. The Kafka batch of 1,000 records over 4 partitions is the largest;
its slowest round is printed against a 60 s function timeout.

It measures and prints; it asserts nothing about time. tests/test_bench.py runs it --tiny.

Usage, from the template repository:
    make bench                      # everything; writes docs/batch-curve.png
    .venv/bin/python bench/run.py --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from cookiecutter.main import cookiecutter

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
sys.path.insert(0, str(HERE))

from endpoint import Endpoint  # noqa: E402 (bench/ is on the path only now)
from powertools_app import batch_handler, single_event_handler  # noqa: E402

REGION = "us-east-1"
SETTINGS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
}


class Project:
    """A baked project, its package imported, its delivery module loaded under its own name."""

    def __init__(self, source: str, into: Path) -> None:
        self.source = source
        self.package = f"bench_{source}"
        baked = cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(into),
            extra_context={"event_source": source, "project_name": f"Bench {source}"},
        )
        self.path = Path(baked)
        self.failing: set[str] = set()  # the ids of the units whose work raises
        sys.path.insert(0, str(self.path / "src"))
        self.handler = importlib.import_module(f"{self.package}.handler")
        self.service = importlib.import_module(f"{self.package}.service")
        self.store = importlib.import_module(f"{self.package}.dedup.store")
        self.local_aws = _load(f"local_aws_{source}", self.path / "tools" / "local_aws.py")
        with _as_tools(self.local_aws):  # delivery.py imports tools.local_aws
            self.delivery = _load(f"delivery_{source}", self.path / "tools" / "delivery.py")


@contextlib.contextmanager
def _as_tools(local_aws: ModuleType) -> Iterator[None]:
    """Make ``tools.local_aws`` this project's module for a while: every baked project has a
    ``tools`` package, and one imported for good would serve every project its own."""
    tools = ModuleType("tools")
    tools.local_aws = local_aws  # type: ignore[attr-defined]
    saved = {name: sys.modules.pop(name, None) for name in ("tools", "tools.local_aws")}
    sys.modules.update({"tools": tools, "tools.local_aws": local_aws})
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Sample:
    """One invocation: wall and client CPU seconds, the server's CPU seconds, its requests."""

    def __init__(
        self, wall: float, cpu: float, server_cpu: float, sent: Counter[str], peak: int
    ) -> None:
        self.wall, self.cpu, self.server_cpu, self.sent = wall, cpu, server_cpu, sent
        self.peak = peak  # the most requests the endpoint answered at once


class Contender:
    """One way of handling a source's events: ours, or Powertools'."""

    def __init__(self, name: str, handler: Callable[[Any, Any], Any], project: Project) -> None:
        self.name = name
        self.handler = handler
        self.project = project

    def deliver(self, event: Any, endpoint: Endpoint) -> Sample:
        """Invoke once and measure it."""
        before, server_before = endpoint.requests(), endpoint.cpu_seconds()
        endpoint.reset_peak()
        context = self.project.local_aws.FakeLambdaContext(
            function_name=f"bench-{self.project.source}-{self.name}"
        )
        # Lambda takes what the function prints through a pipe; here it is written and dropped,
        # so ours pays for its decision lines without flooding the report.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            cpu, started = time.process_time(), time.perf_counter()
            self.handler(event, context)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = endpoint.peak_in_flight()
        server_cpu = endpoint.cpu_seconds() - server_before
        return Sample(wall, cpu, server_cpu, endpoint.requests() - before, peak)


def contenders(project: Project, endpoint: Endpoint) -> tuple[Contender, Contender]:
    """The generated handler and the Powertools one, doing the same no-op work (which fails
    for the units in ``project.failing``)."""

    def work(payload: Any) -> Any:
        if project.failing and project.delivery.unit_id(payload) in project.failing:
            raise RuntimeError("this unit's work fails")
        return project.delivery.result(payload)

    project.service.process = work
    table = f"powertools-{project.source}-{uuid.uuid4().hex[:6]}"
    endpoint.create_table(table)
    client = boto3.client("dynamodb", endpoint_url=endpoint.url)  # routed by item
    if project.source == "eventbridge":
        theirs = single_event_handler(client, table, work)
    else:
        theirs = batch_handler(client, table, project.source, work)
    return Contender("ours", project.handler.lambda_handler, project), Contender(
        "powertools", theirs, project
    )


def fresh_ids(count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{run}-{n}" for n in range(count)]


Build = Callable[[Project, list[str]], Any]  # an event carrying one unit per id


def as_delivered(project: Project, ids: list[str]) -> Any:
    """The project's own event for ``ids`` (tools/delivery.py)."""
    return project.delivery.event(ids)


def in_groups(groups: int) -> Build:
    """SQS FIFO messages dealt in turn into ``groups`` message groups (delivery.py puts them
    all in one)."""

    def build(project: Project, ids: list[str]) -> Any:
        event = project.delivery.event(ids)
        for position, record in enumerate(event["Records"]):
            record["attributes"]["MessageGroupId"] = f"group-{position % groups}"
        return event

    return build


def in_partitions(partitions: int) -> Build:
    """Kafka records split into ``partitions`` partitions of consecutive records, each in
    offset order (delivery.py puts them all in one; its offsets are never used twice)."""

    def build(project: Project, ids: list[str]) -> Any:
        event = project.delivery.event(ids)
        (records,) = event["records"].values()
        size = -(-len(records) // partitions)
        by_partition = {}
        for partition in range(partitions):
            share = records[partition * size : (partition + 1) * size]
            for record in share:
                record["partition"] = partition
            by_partition[f"{records[0]['topic']}-{partition}"] = share
        return {**event, "records": by_partition}

    return build


Result = dict[str, dict[str, Any]]


def scenario(
    pair: tuple[Contender, Contender],
    endpoint: Endpoint,
    units: int,
    rounds: int,
    duplicate: bool,
    failing_at: int | None = None,
    build: Build = as_delivered,
) -> Result:
    """Medians per contender over ``rounds`` alternating runs of a ``units``-unit event
    (whose unit at position ``failing_at``, if any, fails)."""
    samples: dict[str, list[Sample]] = {c.name: [] for c in pair}
    for number in range(rounds):
        for contender in pair if number % 2 == 0 else pair[::-1]:
            ids = fresh_ids(units)
            contender.project.failing = {ids[failing_at]} if failing_at is not None else set()
            event = build(contender.project, ids)
            if duplicate:
                contender.deliver(event, endpoint)  # the first copy, not measured
            samples[contender.name].append(contender.deliver(event, endpoint))
            contender.project.failing = set()
    return summary(samples, units)


def at_most_once(project: Project, measure: Callable[[], Result]) -> Result:
    """``measure()`` with ``AT_MOST_ONCE = True`` in ours' service.py (Powertools has no such
    mode: its row is at least once, as everywhere)."""
    project.service.AT_MOST_ONCE = True
    try:
        return measure()
    finally:
        project.service.AT_MOST_ONCE = False


def fresh_and_redelivered(
    pair: tuple[Contender, Contender], endpoint: Endpoint, units: int, rounds: int, build: Build
) -> tuple[Result, Result]:
    """Like two scenarios, fresh and duplicate, for an event too large to send twice for one
    measurement: each round's event is measured fresh, then measured again as redelivered."""
    fresh: dict[str, list[Sample]] = {c.name: [] for c in pair}
    again: dict[str, list[Sample]] = {c.name: [] for c in pair}
    for number in range(rounds):
        for contender in pair if number % 2 == 0 else pair[::-1]:
            event = build(contender.project, fresh_ids(units))
            fresh[contender.name].append(contender.deliver(event, endpoint))
            again[contender.name].append(contender.deliver(event, endpoint))
    return summary(fresh, units), summary(again, units)


def summary(samples: dict[str, list[Sample]], units: int) -> Result:
    return {
        name: {
            "wall_ms": statistics.median(run.wall for run in runs) * 1000,
            "slowest_ms": max(run.wall for run in runs) * 1000,
            "cpu_ms_per_unit": statistics.median(run.cpu for run in runs) * 1000 / units,
            "server_cpu_ms": statistics.median(run.server_cpu for run in runs) * 1000,
            "requests": statistics.median(sum(run.sent.values()) for run in runs),
            "operations": dict(runs[-1].sent),
            "peak": max(run.peak for run in runs),
            "units": units,
        }
        for name, runs in samples.items()
    }


def own_import_self_time(package_dir: Path, module: str, prefix: str, compiled: bool) -> float:
    """Median, over 7 fresh interpreters, of the import self-time of ``prefix``'s modules (ms).

    The package is copied to a read-only place first, as Lambda's code directory is, with its
    bytecode compiled ahead (``compiled``) or not there at all (then compiled on every import).
    A standard-library module is imported first, as Lambda's runtime imports many before the
    handler: the path's finders are made then, not charged to the first module of the package.
    """
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / package_dir.name
        shutil.copytree(package_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
        if compiled:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "compileall",
                    "-q",
                    "--invalidation-mode",
                    "unchecked-hash",
                    str(copy),
                ],
                check=True,
            )
        subprocess.run(["chmod", "-R", "a-w", str(copy)], check=True)
        env = {**os.environ, "PYTHONPATH": scratch, "PYTHONDONTWRITEBYTECODE": "1"}
        totals = []
        for _ in range(7):
            traced = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import decimal; import {module}"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            totals.append(
                sum(
                    int(line.split("|")[0].split(":")[1])
                    for line in traced.stderr.splitlines()
                    if line.split("|")[-1].strip().startswith(prefix)
                )
            )
        subprocess.run(["chmod", "-R", "u+w", str(copy)], check=True)
    return statistics.median(totals) / 1000


def empty_copy(package_dir: Path, into: Path) -> Path:
    """A package with ``package_dir``'s module names, each empty but for the handler, which
    imports the others as ours does."""
    copy = into / f"empty_{package_dir.name}"
    copy.mkdir()
    names = sorted(path.stem for path in package_dir.glob("*.py"))
    for name in names:
        (copy / f"{name}.py").write_text("")
    others = [name for name in names if name not in ("__init__", "handler")]
    (copy / "handler.py").write_text(f"from . import {', '.join(others)}\n")
    return copy


def zipped_size(directory: Path) -> int:
    """Bytes of ``directory``'s .py files, zipped as a Lambda deployment package is."""
    with tempfile.TemporaryFile() as archive:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(directory.rglob("*.py")):
                zipped.write(path, path.relative_to(directory.parent))
        return archive.tell()


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def report(title: str, rows: list[tuple[str, Result]]) -> None:
    print(f"\n{title}\n")
    print("| scenario | ours | Powertools | ours / Powertools | requests ours / Powertools |")
    print("|---|---|---|---|---|")
    for label, result in rows:
        ours, theirs = result["ours"], result["powertools"]
        print(
            f"| {label} | {ours['wall_ms']:.1f} ms | {theirs['wall_ms']:.1f} ms"
            f" | {ratio(ours['wall_ms'], theirs['wall_ms'])}"
            f" | {ours['requests']:g} / {theirs['requests']:g} |"
        )


SOURCES = ("sqs", "kinesis", "eventbridge", "sqs_fifo", "msk")
TIMEOUT_SECONDS = 60  # what the largest batch must finish well inside
POWERTOOLS_MODULES = (
    "aws_lambda_powertools.utilities.idempotency, aws_lambda_powertools.utilities.batch"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The generated dedup against Powertools.")
    parser.add_argument("--tiny", action="store_true", help="one quick round, to keep it working")
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument(
        "--partitions", type=int, default=4, help="server processes the items are spread over"
    )
    parser.add_argument("--plot", type=Path, help="write the batch-size curve to this PNG")
    options = parser.parse_args(argv)
    os.environ.update(SETTINGS)
    with tempfile.TemporaryDirectory() as scratch:
        projects = {source: Project(source, Path(scratch)) for source in SOURCES}
        endpoint = Endpoint(projects["sqs"].path, options.latency_ms / 1000, options.partitions)
        boto3.setup_default_session()  # every client below is made from it, ours too
        endpoint.route(boto3.DEFAULT_SESSION)
        try:
            curve = measure_requests_and_time(projects, endpoint, options)
        finally:
            endpoint.close()
        measure_cold_start(projects["sqs"])
    if options.plot:
        plot(curve, options.plot, options.latency_ms)


def measure_requests_and_time(
    projects: dict[str, Project], endpoint: Endpoint, options: argparse.Namespace
) -> list[tuple[int, Result]]:
    rounds = 1 if options.tiny else 9
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint.url
    os.environ.update(projects["sqs"].local_aws.function_environment())
    for partition in endpoint.clients():
        tables = projects["sqs"].local_aws.create_tables(partition, "-bench")
    os.environ.update(tables)
    pairs = {source: contenders(project, endpoint) for source, project in projects.items()}
    for pair in pairs.values():  # warm: clients made, connections open, as in Lambda
        for contender in pair:
            contender.deliver(contender.project.delivery.event(fresh_ids(1)), endpoint)

    stream_batch = 10 if options.tiny else 100
    single = 3 * rounds  # one event is quick and noisier: more rounds for a steady median
    kafka_batch = 40 if options.tiny else 1000
    kafka_rounds = 1 if options.tiny else 3  # some 20 s a round for ours, 60 s for theirs
    print(
        f"Endpoint: moto over HTTP, {options.latency_ms:g} ms added per request, locked per"
        f" item, items spread over {options.partitions} processes by key;"
        f" {rounds} alternating rounds ({single} for one event, {kafka_rounds} for the Kafka"
        f" batch of {kafka_batch:,}), medians."
    )
    print(
        "Powertools 3.37 as its documentation shows it: @idempotent for one event; for a batch,"
        " its processor for the source with @idempotent_function on each record:"
        " BatchProcessor (SQS, keyed on messageId; Kinesis, eventID),"
        " SqsFifoPartialProcessor(skip_group_on_error=True) (SQS FIFO, messageId),"
        " BatchProcessor(EventType.Kafka) (Kafka, topic, partition and offset)."
    )
    rows = [
        ("one event, fresh", scenario(pairs["eventbridge"], endpoint, 1, single, False)),
        ("one event, duplicate", scenario(pairs["eventbridge"], endpoint, 1, single, True)),
        ("SQS batch of 10, fresh", scenario(pairs["sqs"], endpoint, 10, rounds, False)),
        (
            "SQS batch of 10, fresh, ours at most once",
            at_most_once(
                projects["sqs"], lambda: scenario(pairs["sqs"], endpoint, 10, rounds, False)
            ),
        ),
        ("SQS batch of 10, duplicates", scenario(pairs["sqs"], endpoint, 10, rounds, True)),
        (
            f"Kinesis batch of {stream_batch}, fresh",
            scenario(pairs["kinesis"], endpoint, stream_batch, rounds, False),
        ),
        (
            f"Kinesis batch of {stream_batch}, unit {stream_batch // 2 + 1} fails",
            scenario(pairs["kinesis"], endpoint, stream_batch, rounds, False, stream_batch // 2),
        ),
        (
            "SQS FIFO batch of 10 in 3 groups, fresh",
            scenario(pairs["sqs_fifo"], endpoint, 10, rounds, False, build=in_groups(3)),
        ),
        (
            "SQS FIFO batch of 10 in 3 groups, duplicates",
            scenario(pairs["sqs_fifo"], endpoint, 10, rounds, True, build=in_groups(3)),
        ),
    ]
    kafka = f"Kafka batch of {kafka_batch:,} over 4 partitions"
    kafka_fresh, kafka_again = fresh_and_redelivered(
        pairs["msk"], endpoint, kafka_batch, kafka_rounds, in_partitions(4)
    )
    rows += [(f"{kafka}, fresh", kafka_fresh), (f"{kafka}, redelivered", kafka_again)]
    report("Wall time per invocation (median) and DynamoDB requests", rows)

    print("\nRequests per unit, by operation (the last round)\n")
    print("| scenario | ours | Powertools |")
    print("|---|---|---|")
    for label, result in rows:
        print(f"| {label} | {_ops(result['ours'])} | {_ops(result['powertools'])} |")

    print("\nClient CPU per unit (median)\n")
    print("| scenario | ours | Powertools | ours / Powertools |")
    print("|---|---|---|---|")
    for label, result in rows:
        ours = result["ours"]["cpu_ms_per_unit"]
        theirs = result["powertools"]["cpu_ms_per_unit"]
        print(f"| {label} | {ours:.2f} ms | {theirs:.2f} ms | {ratio(ours, theirs)} |")

    print("\nWhere ours' wall time goes: its own CPU and the endpoint's, per invocation (median)\n")
    print("| scenario | wall | client CPU | endpoint CPU | endpoint CPU per request |")
    print("|---|---|---|---|---|")
    for label, result in rows:
        ours = result["ours"]
        client, server = ours["cpu_ms_per_unit"] * ours["units"], ours["server_cpu_ms"]
        print(
            f"| {label} | {ours['wall_ms']:.1f} ms | {client:.1f} ms | {server:.1f} ms"
            f" | {server / ours['requests']:.2f} ms |"
        )

    bound = projects["sqs"].store.MAX_CONCURRENT_REQUESTS
    print(
        "\nRequests in flight at once, counted by the endpoint (the most in any round; ours"
        f" sends at most store.MAX_CONCURRENT_REQUESTS = {bound})\n"
    )
    print("| scenario | ours | Powertools |")
    print("|---|---|---|")
    for label, result in rows:
        print(f"| {label} | {result['ours']['peak']} | {result['powertools']['peak']} |")

    print(f"\n{kafka}, against a {TIMEOUT_SECONDS} s function timeout\n")
    print("| | ours, median | ours, slowest | Powertools, median | Powertools, slowest |")
    print("|---|---|---|---|---|")
    for label, result in (("fresh", kafka_fresh), ("redelivered", kafka_again)):
        ours, theirs = result["ours"], result["powertools"]
        print(
            f"| {label} | {ours['wall_ms'] / 1000:.1f} s | {ours['slowest_ms'] / 1000:.1f} s"
            f" | {theirs['wall_ms'] / 1000:.1f} s | {theirs['slowest_ms'] / 1000:.1f} s |"
        )

    curve = []
    for size in [1, 10] if options.tiny else [1, 10, 100, 1000]:
        times = 1 if size >= 1000 or options.tiny else 3
        curve.append((size, scenario(pairs["sqs"], endpoint, size, times, False)))
    report("SQS batch wall time against batch size", [(f"{n}", r) for n, r in curve])
    return curve


def measure_cold_start(project: Project) -> None:
    print("\nOwn-module import self-time (median of 7 interpreters)\n")
    print("| | ours | Powertools |")
    print("|---|---|---|")
    ours_dir = project.path / "src" / project.package
    theirs_file = importlib.import_module("aws_lambda_powertools").__file__
    assert theirs_file is not None
    theirs_dir = Path(theirs_file).parent
    for compiled in (False, True):
        ours = own_import_self_time(
            ours_dir, f"{project.package}.handler", project.package, compiled
        )
        theirs = own_import_self_time(
            theirs_dir, POWERTOOLS_MODULES, "aws_lambda_powertools", compiled
        )
        label = "bytecode compiled ahead" if compiled else "no bytecode (compiled on import)"
        print(f"| {label} | {ours:.2f} ms | {theirs:.2f} ms |")
    with tempfile.TemporaryDirectory() as scratch:
        empty = empty_copy(ours_dir, Path(scratch))
        floor = own_import_self_time(empty, f"{empty.name}.handler", empty.name, compiled=True)
        modules = len(list(empty.glob("*.py")))
    print(
        f"\nThe same {modules} modules, empty (what importing a module costs here, whatever is"
        f" in it), bytecode compiled ahead: {floor:.2f} ms"
    )

    print("\nPackage size (.py files, zipped)\n")
    print("| package | size |")
    print("|---|---|")
    print(f"| ours (src/{project.package}) | {zipped_size(ours_dir) / 1024:.0f} KB |")
    print(f"| aws_lambda_powertools | {zipped_size(theirs_dir) / 1024:.0f} KB |")


def _ops(result: dict[str, Any]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(result["operations"].items()))


def plot(curve: list[tuple[int, Result]], path: Path, latency_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = [size for size, _ in curve]
    figure, axes = pyplot.subplots(figsize=(6.4, 4.2))
    for name, label, offset in (
        ("ours", "this template", (6, -12)),
        ("powertools", "Powertools 3.37", (-10, 6)),
    ):
        walls = [result[name]["wall_ms"] for _, result in curve]
        axes.plot(sizes, walls, marker="o", label=label)
        for size, wall in zip(sizes, walls, strict=True):
            axes.annotate(f"{wall:.0f}", (size, wall), textcoords="offset points", xytext=offset)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="SQS batch size (fresh messages)",
        ylabel="invocation wall time (ms)",
        title=f"Batch wall time, {latency_ms:g} ms per DynamoDB request",
    )
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
