{%- import "common/source.j2" as source with context -%}
"""The operator's command: what the dedup table holds for a unit, and what to do about it.

    make records ARGS="show ID..."
    make records ARGS="list --state in_progress [--since 1h] [--limit 20] [--json]"
    make records ARGS="forget ID... [--force] [--dry-run]"
{%- if source.http %}
    make records ARGS="settle ID --done|--again [--dry-run]"   (requests are never in doubt)
{%- else %}
    make records ARGS="settle ID --done|--again [--dry-run]"
{%- endif %}

An ID is what you have in hand: ``make records ARGS="show --help"`` says what it is for this
source. The key it goes under is found by the handler's own code (``keys.key_in`` and
events.py), not a copy of it, so what this command looks up is what the handler wrote.
``--key`` takes keys instead, as ``list`` prints them.

Every write is conditional on the record this command read just before (its status and claim
token): a record that changed in between, because an invocation or another operator got there
first, is left alone and the unit is reported refused. The table is ``--table``, else
``DEDUP_TABLE_NAME``, else the stack's ``DedupTableName`` output (``--stack``, else
samconfig.toml's stack name); region and credentials are boto3's. Exit status: 0 done, 1 a
unit was refused, 2 bad input or AWS trouble (one line on stderr, nothing changed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
{%- if cookiecutter.event_source == "kinesis" or source.family == "kafka" %}
import re
{%- endif %}
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

{%- if source.http %}

from {{ cookiecutter.package_name }}.dedup import claims, events, idempotency_key, keys, store
{%- else %}

from {{ cookiecutter.package_name }} import handler
{%- if source.family == "kafka" or cookiecutter.event_source == "s3" %}
from {{ cookiecutter.package_name }}.dedup import claims, events, keys, store
{%- else %}
from {{ cookiecutter.package_name }}.dedup import claims, keys, store
{%- endif %}
{%- endif %}
from tools.local_aws import PROJECT, default_ttl_seconds

SAMCONFIG = PROJECT / "samconfig.toml"
SEGMENTS = 4  # parallel Scan segments, one thread each
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})
THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}

# What an operator calls each state, and the status a record in it stores.
STATUSES = {
    "in_progress": claims.State.IN_PROGRESS,
    "completed": claims.State.COMPLETED,
{%- if not source.http %}
    "in_doubt": claims.State.IN_DOUBT,
{%- endif %}
}
STATES = ["in_progress", "in_doubt", "completed", "expired"]  # what list --state takes
# What list reads of each record (never the kept response or the unit: they are large).
{%- if source.http %}
LISTED = [claims.KEY, claims.STATUS, claims.EXPIRES_AT, claims.LEASE_EXPIRES_AT, claims.CLAIM_TOKEN]
{%- else %}
LISTED = [
    claims.KEY,
    claims.STATUS,
    claims.EXPIRES_AT,
    claims.LEASE_EXPIRES_AT,
    claims.CLAIM_TOKEN,
    claims.IN_DOUBT_SINCE,
    claims.IN_DOUBT_REASON,
]
{%- endif %}


class Problem(Exception):
    """Bad input, or AWS could not be asked: one line on stderr, exit 2, nothing changed."""


class Session:
    """Where the records are, found once, on first need: the table, the operation, the stack."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self._clients: dict[str, BaseClient] = {}
        self._outputs: dict[str, str] | None = None
        self._table: str | None = None

    def client(self, service: str) -> BaseClient:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, config=CLIENT_CONFIG)
        return self._clients[service]

    def stack_name(self) -> str:
        name = self.options.stack or _samconfig_stack_name()
        if not name:
            raise Problem(
                "no stack: pass --stack NAME (or --table NAME), or deploy first"
                " (sam deploy writes the stack name to samconfig.toml)"
            )
        return name

    def outputs(self) -> dict[str, str]:
        """The stack's outputs (DedupTableName, ProcessorFunctionName, ...)."""
        if self._outputs is None:
            name = self.stack_name()
            try:
                stack = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
            except ClientError as error:
                if error.response["Error"]["Code"] == "ValidationError":
                    raise Problem(f"no stack {name!r} in {self.region()}") from None
                raise
            found = {out["OutputKey"]: out["OutputValue"] for out in stack.get("Outputs", [])}
            self._outputs = found
        return self._outputs

    def output(self, name: str) -> str:
        value = self.outputs().get(name)
        if not value:
            raise Problem(f"stack {self.stack_name()!r} has no {name} output")
        return value

    def region(self) -> str:
        return self.client("cloudformation").meta.region_name

    def table(self) -> str:
        """The dedup table's name, once it is known to be one (key and TTL as template.yaml's)."""
        if self._table is None:
            name = (
                self.options.table
                or os.environ.get(store.TABLE_NAME_ENV)
                or self.output("DedupTableName")
            )
            _check_dedup_table(self.client("dynamodb"), name)
            self._table = name
        return self._table

    def operation(self) -> str:
        """The first part of every key: --operation, DEDUP_OPERATION, or the stack's function."""
        name = (
            self.options.operation
            or os.environ.get(keys.OPERATION_ENV)
            or self.output("ProcessorFunctionName")
        )
        try:
            return keys.valid_operation(name)
        except store.NotConfigured as error:
            raise Problem(str(error)) from None

    def ttl_seconds(self) -> int:
        """How long a record counts: DEDUP_TTL_SECONDS, else the deployed function's, else
        template.yaml's default."""
        if os.environ.get(store.TTL_SECONDS_ENV):
            try:
                return store.ttl_seconds()
            except store.NotConfigured as error:
                raise Problem(str(error)) from None
        if self.options.stack or _samconfig_stack_name():
            function = self.output("ProcessorFunctionName")
            settings = self.client("lambda").get_function_configuration(FunctionName=function)
            value = settings.get("Environment", {}).get("Variables", {}).get(store.TTL_SECONDS_ENV)
            if value and value.isdigit():
                return int(value)
        return default_ttl_seconds()

    def read(self, key: str) -> store.Item | None:
        """The record under ``key`` as it is now (a strongly consistent read), or None."""
        found = self.client("dynamodb").get_item(
            TableName=self.table(), Key={claims.KEY: {"S": key}}, ConsistentRead=True
        )
        return found.get("Item")


def _samconfig_stack_name() -> str:
    """The stack name `sam deploy --guided` saved, or "" when there is none."""
    if not SAMCONFIG.is_file():
        return ""
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8")).get("default", {})
    for command in ("deploy", "global"):
        name = config.get(command, {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    return ""


def _check_dedup_table(client: BaseClient, name: str) -> None:
    """Problem unless ``name`` is a dedup table: keyed on claims.KEY, TTL on claims.EXPIRES_AT."""
    try:
        schema = client.describe_table(TableName=name)["Table"]["KeySchema"]
        ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            raise Problem(f"no table {name!r}") from None
        raise
    expected = [{"AttributeName": claims.KEY, "KeyType": "HASH"}]
    if schema != expected or ttl.get("AttributeName") != claims.EXPIRES_AT:
        raise Problem(
            f"{name!r} is not a dedup table (its key is not {claims.KEY!r}"
            f" or its TTL is not on {claims.EXPIRES_AT!r})"
        )


{% include [source.own ~ "records_ids.py.j2", source.shared ~ "records_ids.py.j2", "common/records_ids.py.j2"] %}

def keys_for(session: Session) -> list[tuple[str, str]]:
    """Each ID given, with the key its unit goes under (``--key``: the ID is the key)."""
    given = list(session.options.ids)
    if any(not one for one in given):
        raise Problem("an ID is empty")
    if session.options.key:
        if not all("#" in one for one in given):
            raise Problem("--key takes keys as list prints them: <operation>#<unit id>")
        return [(one, one) for one in given]
    operation = session.operation()
{%- if source.http %}
    unit_ids = own_unit_ids(session)
{%- else %}
    # The service module the handler calls: with a unit_id, the ids are business ids.
    business = getattr(handler.service, "unit_id", None) is not None
    unit_ids = given if business else own_unit_ids(session)
{%- endif %}
    return [(one, keys.key_in(operation, unit)) for one, unit in zip(given, unit_ids, strict=True)]


def state_of(item: store.Item | None, now: float) -> str:
    """What the handler makes of the record now (claims.claim's conditions)."""
    if item is None:
        return "none"
    if _number(item, claims.EXPIRES_AT) < now:
        return "expired"  # it no longer counts, although TTL may not have deleted it yet
    status = item.get(claims.STATUS, {}).get("S", "")
    return next((state for state, stored in STATUSES.items() if stored == status), status.lower())


def describe(given: str, key: str, item: store.Item | None, now: float) -> dict[str, Any]:
    """The record as plain values, for --json and for the text."""
    described: dict[str, Any] = {"id": given, "key": key, "state": state_of(item, now)}
    if item is None:
        return described
    described["status"] = item.get(claims.STATUS, {}).get("S")
    described["expires_at"] = _number(item, claims.EXPIRES_AT)
    if claims.LEASE_EXPIRES_AT in item:
        lease = _number(item, claims.LEASE_EXPIRES_AT)
        described["lease_expires_at"] = lease
        described["lease"] = "live" if lease >= now else "lapsed"
    described["claim_token"] = item.get(claims.CLAIM_TOKEN, {}).get("S")
{%- if not source.http %}
    if claims.IN_DOUBT_SINCE in item:
        described["in_doubt_since"] = _number(item, claims.IN_DOUBT_SINCE)
    if claims.IN_DOUBT_REASON in item:
        described["in_doubt_reason"] = item[claims.IN_DOUBT_REASON].get("S")
    if claims.UNIT in item:
        described["unit"] = item[claims.UNIT].get("S")
{%- endif %}
    return described


def when(epoch: float) -> str:
    """``epoch`` in local time and in UTC."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({moment:%Y-%m-%d %H:%M:%S} UTC)"


def show_text(described: dict[str, Any], out: TextIO) -> None:
    print(f"{described['id']}: {described['state']}", file=out)
    print(f"  key       {described['key']}", file=out)
    if described["state"] == "none":
        print("  no record: the next delivery of it runs it", file=out)
        return
    print(f"  status    {described['status']}", file=out)
    print(f"  expires   {when(described['expires_at'])}", file=out)
    if "lease_expires_at" in described:
        lease = "live until" if described["lease"] == "live" else "lapsed at"
        print(f"  lease     {lease} {when(described['lease_expires_at'])}", file=out)
    print(f"  token     {described['claim_token']}", file=out)
{%- if not source.http %}
    if "in_doubt_since" in described:
        print(f"  in doubt  since {when(described['in_doubt_since'])}", file=out)
    if "in_doubt_reason" in described:
        print(f"  reason    {described['in_doubt_reason']}", file=out)
    if "unit" in described:
        print(f"  unit      {described['unit']}", file=out)
{%- endif %}


def show(session: Session, out: TextIO) -> int:
    now = time.time()
    for given, key in keys_for(session):
        described = describe(given, key, session.read(key), now)
        if session.options.json:
            print(json.dumps(described), file=out)
        else:
            show_text(described, out)
    return 0


class Progress:
    """A bar on stderr while a scan runs, only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = max(total, 1)
        self.shown = stream.isatty()
        self.scanned = 0

    def add(self, scanned: int, found: int) -> None:
        self.scanned += scanned
        if self.shown:
            filled = min(self.WIDTH, self.WIDTH * self.scanned // self.total)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            line = f"\r[{bar}] scanned {self.scanned:,} of about {self.total:,}, found {found:,}"
            self.stream.write(line)
            self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def scan_request(session: Session, state: str, since: float | None) -> dict[str, Any]:
    """A Scan that reads only the records in ``state`` (since ``since``), and only LISTED."""
    now = time.time()
    names = {f"#a{index}": name for index, name in enumerate(LISTED)}
    by_name = {name: alias for alias, name in names.items()}
    status, expires = by_name[claims.STATUS], by_name[claims.EXPIRES_AT]
    values: dict[str, Any] = {":now": {"N": f"{now:.3f}"}}
    if state == "expired":
        # attribute_exists(status): a kept response's chunks are items too, not records.
        conditions = [f"attribute_exists({status})", f"{expires} < :now"]
    else:
        values[":status"] = {"S": STATUSES[state]}
        conditions = [f"{status} = :status", f"{expires} >= :now"]
    if since is not None:
{%- if source.http %}
        values[":since"] = {"N": str(int(since) + session.ttl_seconds())}
        conditions.append(f"{expires} >= :since")  # written since: expiry is write time + TTL
{%- else %}
        if state == "in_doubt":
            values[":since"] = {"N": f"{since:.3f}"}
            conditions.append(f"{by_name[claims.IN_DOUBT_SINCE]} >= :since")
        else:
            values[":since"] = {"N": str(int(since) + session.ttl_seconds())}
            conditions.append(f"{expires} >= :since")  # written since: expiry is write time + TTL
{%- endif %}
    return {
        "TableName": session.table(),
        "FilterExpression": " AND ".join(conditions),
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def scan(session: Session, request: dict[str, Any], limit: int | None, progress: Progress) -> list:
    """The items ``request`` finds, from SEGMENTS segments at once; no more pages once
    ``limit`` items are found."""
    client = session.client("dynamodb")
    found: list[store.Item] = []
    lock = threading.Lock()
    enough = threading.Event()

    def segment(number: int) -> None:
        start: dict[str, Any] | None = None
        while not enough.is_set():
            page = client.scan(
                **request,
                Segment=number,
                TotalSegments=SEGMENTS,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            with lock:
                found.extend(page["Items"])
                progress.add(page["ScannedCount"], len(found))
                if limit is not None and len(found) >= limit:
                    enough.set()
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    try:
        with ThreadPoolExecutor(SEGMENTS) as pool:
            list(pool.map(segment, range(SEGMENTS)))
    finally:
        progress.close()
    return found[:limit]


def list_records(session: Session, out: TextIO, err: TextIO) -> int:
    options = session.options
{%- if source.http %}
    if options.state == "in_doubt":  # at most once is not for requests: none is ever in doubt
        if not options.json:
            print("no records in_doubt (requests are never in doubt)", file=out)
        return 0
{%- endif %}
    since = parse_when(options.since) if options.since else None
    request = scan_request(session, options.state, since)
    total = session.client("dynamodb").describe_table(TableName=session.table())
    progress = Progress(err, total["Table"].get("ItemCount", 0))
    now = time.time()
    found = [
        describe("", item[claims.KEY]["S"], item, now)
        for item in scan(session, request, options.limit, progress)
    ]
    found.sort(key=lambda described: described["expires_at"])
    for described in found:
        del described["id"]
        if options.json:
            print(json.dumps(described), file=out)
    if not options.json:
        print_table(found, out)
    return 0


def print_table(found: Sequence[dict[str, Any]], out: TextIO) -> None:
    if not found:
        print("no records", file=out)
        return
    width = max(len(described["key"]) for described in found)
    print(f"{'KEY':<{width}}  {'STATE':<11}  EXPIRES (UTC)        LEASE", file=out)
    for described in found:
        expires = datetime.datetime.fromtimestamp(described["expires_at"], datetime.UTC)
        lease = described.get("lease", "")
        print(
            f"{described['key']:<{width}}  {described['state']:<11}  {expires:%Y-%m-%d %H:%M:%S}"
            f"  {lease}",
            file=out,
        )


def parse_when(text: str) -> float:
    """``30m``, ``2h``, ``7d`` ago, or an ISO 8601 time (local time unless it says)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return time.time() - int(text[:-1]) * units[text[-1]]
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise Problem(f"--since {text!r}: give 30m, 2h, 7d or a time: 2026-12-06T09:00") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def held_by(item: store.Item) -> dict[str, Any]:
    """A write's condition: the record is still ``item`` (the same status and claim token)."""
    return {
        "ConditionExpression": "#status = :status AND #claim_token = :token",
        "ExpressionAttributeNames": {"#status": claims.STATUS, "#claim_token": claims.CLAIM_TOKEN},
        "ExpressionAttributeValues": {
            ":status": item[claims.STATUS],
            ":token": item[claims.CLAIM_TOKEN],
        },
    }


def conditional(write: Callable[[], object]) -> bool:
    """Run a conditional write; False when the record had changed, so nothing was written."""
    try:
        write()
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def forget(session: Session, out: TextIO) -> int:
    """Delete each unit's record, so that its next delivery runs it; 1 when any is refused."""
    options, now, refused = session.options, time.time(), False
    client = session.client("dynamodb")
    for given, key in keys_for(session):
        item = session.read(key)
        state = state_of(item, now)
        if item is None:
            print(f"{given}: no record, nothing to forget ({key})", file=out)
            continue
        lease = _number(item, claims.LEASE_EXPIRES_AT, default=0.0)
        if state == "in_progress" and lease >= now and not options.force:
            print(
                f"{given}: refused, in progress under a live lease until {when(lease)}"
                " (an invocation may be running it; --force forgets it anyway)",
                file=out,
            )
            refused = True
            continue
        if options.dry_run:
            print(f"{given}: would forget its {state} record ({key})", file=out)
            continue
        condition = held_by(item)
        deleted = conditional(
            lambda key=key, condition=condition: client.delete_item(
                TableName=session.table(), Key={claims.KEY: {"S": key}}, **condition
            )
        )
        if deleted:
            print(f"{given}: forgot its {state} record; the next delivery runs it", file=out)
        else:
            print(f"{given}: refused, the record changed since it was read; nothing done", file=out)
            refused = True
    return 1 if refused else 0
{%- if source.http %}


def settle(session: Session, out: TextIO) -> int:
    """Refuse: a request is never in doubt (at most once is not for HTTP sources)."""
    ((given, key),) = keys_for(session)
    state = state_of(session.read(key), time.time())
    print(f"{given}: refused, {state}, not in doubt (requests never are); nothing done", file=out)
    return 1
{%- else %}


def settle(session: Session, out: TextIO) -> int:
    """A unit in doubt: completed (--done, its TTL kept) or forgotten (--again); 1 if refused."""
    options = session.options
    ((given, key),) = keys_for(session)
    item = session.read(key)
    state = state_of(item, time.time())
    if item is None or state != "in_doubt":
        print(f"{given}: refused, {state}, not in doubt; nothing done ({key})", file=out)
        return 1
    verb = "mark it completed" if options.done else "forget it, so that the next delivery runs it"
    if options.dry_run:
        print(f"{given}: would {verb} ({key})", file=out)
        return 0
    client = session.client("dynamodb")
    condition = held_by(item)
    if options.done:
        condition["ExpressionAttributeNames"]["#lease"] = claims.LEASE_EXPIRES_AT
        condition["ExpressionAttributeValues"][":completed"] = {"S": claims.State.COMPLETED}
        written = conditional(
            lambda: client.update_item(
                TableName=session.table(),
                Key={claims.KEY: {"S": key}},
                UpdateExpression="SET #status = :completed REMOVE #lease",
                **condition,
            )
        )
    else:
        written = conditional(
            lambda: client.delete_item(
                TableName=session.table(), Key={claims.KEY: {"S": key}}, **condition
            )
        )
    if not written:
        print(f"{given}: refused, the record changed since it was read; nothing done", file=out)
        return 1
    done = "completed" if options.done else "forgotten: the next delivery or a redrive runs it"
    print(f"{given}: settled, {done} ({key})", file=out)
    return 0
{%- endif %}


def _number(item: store.Item, name: str, default: float = float("inf")) -> float:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else default


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line, as the command's other errors are."""

    def error(self, message: str) -> Any:
        raise Problem(f"{message} (--help says more)")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where the records are")
    where.add_argument(
        "--table", help=f"the dedup table (else ${store.TABLE_NAME_ENV}, else the stack's)"
    )
    where.add_argument("--stack", help="the stack that holds it (else samconfig.toml's)")
    where.add_argument(
        "--operation",
        help=f"the keys' first part (else ${keys.OPERATION_ENV}, else the stack's function name)",
    )
    ids = argparse.ArgumentParser(add_help=False)
    ids.add_argument("--key", action="store_true", help="the IDs are keys, as list prints them")

    top = Parser(prog="records", description=__doc__.split("\n\n")[0])
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=Parser)
    show_verb = verbs.add_parser("show", parents=[common, ids], help="each unit's record")
    add_ids(show_verb, "+")
    show_verb.add_argument("--json", action="store_true", help="one JSON object per line")

    list_verb = verbs.add_parser("list", parents=[common], help="the records in one state")
    list_verb.add_argument("--state", required=True, choices=STATES)
    list_verb.add_argument("--since", metavar="WHEN", help="written since: 30m, 2h, 7d, or a time")
    list_verb.add_argument("--limit", type=_positive, metavar="N", help="stop after N records")
    list_verb.add_argument("--json", action="store_true", help="one JSON object per line")

    forget_verb = verbs.add_parser("forget", parents=[common, ids], help="delete, to run again")
    add_ids(forget_verb, "+")
    forget_verb.add_argument("--force", action="store_true", help="even under a live lease")
    forget_verb.add_argument("--dry-run", action="store_true", help="say what it would do")

    settle_verb = verbs.add_parser("settle", parents=[common, ids], help="decide a unit in doubt")
    add_ids(settle_verb, 1)
    outcome = settle_verb.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--done", action="store_true", help="its work ran: mark it completed")
    outcome.add_argument("--again", action="store_true", help="it did not: forget it, to run again")
    settle_verb.add_argument("--dry-run", action="store_true", help="say what it would do")
    return top


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


VERBS = {"show": show, "forget": forget, "settle": settle}


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run one verb; the exit status (0, 1 refused, 2 bad input or AWS trouble)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        options = parser().parse_args(argv)
        session = Session(options)
        if options.verb == "list":
            return list_records(session, out, err)
        return VERBS[options.verb](session, out)
    except Problem as problem:
        message = str(problem)
    except NoCredentialsError:
        message = "no AWS credentials: set AWS_PROFILE, or run aws configure (or aws sso login)"
    except NoRegionError:
        message = "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or AWS_PROFILE's region"
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in THROTTLED:
            message = f"throttled by AWS ({code}), even after retries: try again shortly"
        else:
            message = f"AWS refused: {code}: {error.response['Error'].get('Message', '')}"
    except BotoCoreError as error:
        message = f"AWS could not be reached: {error}"
    print(f"records: {message}", file=err)
    return 2


if __name__ == "__main__":
    sys.exit(main())
