{%- import "common/source.j2" as source with context -%}
{%- set kafka = source.family == "kafka" -%}
"""The operator's command, tools/records.py, against moto: records made by the handler itself.

Every record here is one a delivery through the handler left (tools/delivery.py): completed,
in progress after a crash, expired, {% if not source.http %}in doubt (at most once), {% endif %}and none. The command
must find each from the id an operator has in hand, as the handler keys it; refuse what it
must refuse, changing nothing; and answer bad input with one line and a non-zero exit.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
{%- if kafka %}
from botocore.stub import Stubber
{%- endif %}
from freezegun import freeze_time

from {{ cookiecutter.package_name }} import handler, service
from {{ cookiecutter.package_name }}.dedup import claims, store
from tools import delivery, records
from tools.local_aws import PROJECT, FakeLambdaContext, create_ledger, default_ttl_seconds

UNITS = min(delivery.MAX_UNITS, 3)
OPERATION = FakeLambdaContext().function_name
PAST_EXPIRY = datetime.timedelta(seconds=default_ttl_seconds() + 60)  # from now, for freezegun


class Crash(BaseException):  # not an Exception: nothing catches it, the invocation dies
    pass


def units_of(event: Any) -> list[Any]:
    """The units of a delivered event, in order."""
{%- if kafka %}
    return delivery.units(event)
{%- elif source.batch %}
    return event["Records"]
{%- else %}
    return [event]
{%- endif %}


def in_hand(event: Any) -> list[list[str]]:
    """For each unit of ``event``, what an operator has in hand: the id, and its options."""
{%- if cookiecutter.event_source in ("sqs", "sqs_fifo") %}
    return [[record["messageId"]] for record in units_of(event)]
{%- elif cookiecutter.event_source == "sns" %}
    return [[record["Sns"]["MessageId"]] for record in units_of(event)]
{%- elif source.family == "stream" %}
    return [[record["eventID"]] for record in units_of(event)]
{%- elif cookiecutter.event_source == "eventbridge" %}
    return [[event["id"]]]
{%- elif cookiecutter.event_source == "lambda_async" %}
    return [[event["idempotency_key"]]]
{%- elif kafka %}
    cluster = event["{{ 'eventSourceArn' if cookiecutter.event_source == 'msk' else 'bootstrapServers' }}"]
    return [
        [f"{record['topic']}-{record['partition']}:{record['offset']}", "--cluster", cluster]
        for record in units_of(event)
    ]
{%- elif cookiecutter.event_source == "s3" %}
    found = []
    for record in units_of(event):
        s3 = record["s3"]
        version = s3["object"].get("versionId") or s3["object"]["sequencer"]
        place = f"s3://{s3['bucket']['name']}/{s3['object']['key']}"
        found.append([place, "--version", version, "--event-name", record["eventName"]])
    return found
{%- elif cookiecutter.event_source == "apigateway" %}
    caller = event["requestContext"]["identity"]["userArn"]
    return [[event["headers"]["Idempotency-Key"], "--caller", f"iam:{caller}"]]
{%- else %}
    caller = event["requestContext"]["authorizer"]["iam"]["userArn"]
    return [[event["headers"]["Idempotency-Key"], "--caller", f"iam:{caller}"]]
{%- endif %}


# An id the command cannot read, for this source.
{%- if cookiecutter.event_source == "kinesis" %}
BAD_ID = ["49545115243490985018280067714973144582180062593244200961"]  # no shard
{%- elif kafka %}
BAD_ID = ["orders:15", "--cluster", "c"]  # no partition
{%- elif cookiecutter.event_source == "s3" %}
BAD_ID = ["bucket/key", "--version", "v", "--event-name", "ObjectCreated:Put"]  # no s3://
{%- elif source.http %}
BAD_ID = ['"unterminated']  # not a valid quoted Idempotency-Key
{%- else %}
BAD_ID = [""]  # empty
{%- endif %}


def run(*args: str) -> tuple[int, str, str]:
    """The command, as ``make records ARGS="<args>"`` runs it, with the tests' operation."""
    verb, *rest = args
    out, err = io.StringIO(), io.StringIO()
    operation = ["--operation", OPERATION] if verb != "list" and "--operation" not in rest else []
    code = records.main([verb, *rest, *operation], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def shown(*args: str) -> list[dict[str, Any]]:
    code, out, err = run("show", *args, "--json")
    assert (code, err) == (0, "")
    return [json.loads(line) for line in out.splitlines()]


class Service:
    """A service module of the tests' own, in the handler's service.py's place."""

    def __init__(self) -> None:
        self.module = types.ModuleType(service.__name__)
        self.module.process = self.process  # type: ignore[attr-defined]
        self.ran: list[str] = []
        self.crash = False
        self.delivered: Any = None  # a unit as it was delivered, where a test keeps one

    def process(self, payload: Any) -> Any:
        self.ran.append(delivery.unit_id(payload))
        if self.crash:
            raise Crash
        return delivery.result(payload)


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch) -> Service:
    module = Service()
    monkeypatch.setattr(handler, "service", module.module)
    return module


def deliver(units: list[str], context: Any = None) -> Any:
    """Deliver one event carrying ``units`` through the handler; the event."""
    event = delivery.event(units)
    with contextlib.suppress(Crash):
        delivery.deliver(event, context or FakeLambdaContext())
    return event


def crashed(own: Service, units: list[str], context: Any = None) -> Any:
    """Deliver ``units`` to an invocation that dies in ``process``: they stay in progress."""
    own.crash = True
    event = deliver(units, context)
    own.crash = False
    return event


def test_show_finds_each_completed_unit_by_the_id_in_hand(dynamodb, own, stored):
    event = deliver([f"done-{n}" for n in range(UNITS)])

    for ids in in_hand(event):
        (record,) = shown(*ids)
        assert record["state"] == "completed"
        assert stored(record["key"])["claim_token"] == record["claim_token"]


def test_show_says_none_for_a_unit_never_delivered(dynamodb, own):
    event = delivery.event(["never"])  # built, not delivered

    ((record,),) = [shown(*ids) for ids in in_hand(event)]

    assert record["state"] == "none"


def test_show_prints_times_in_local_time_and_utc_and_the_token(dynamodb, own):
    (ids,) = in_hand(deliver(["text"]))

    code, out, _ = run("show", *ids)

    assert code == 0
    assert ": completed" in out
    assert " UTC)" in out
    assert "token" in out


def test_show_of_a_crashed_unit_is_in_progress_with_its_lease(dynamodb, own):
    (ids,) = in_hand(crashed(own, ["crashed"]))

    (record,) = shown(*ids)

    assert record["state"] == "in_progress"
    assert record["lease"] == "live"


def test_a_record_past_its_expiry_is_expired(dynamodb, own):
    (ids,) = in_hand(deliver(["old"]))

    with freeze_time(PAST_EXPIRY):
        (record,) = shown(*ids)

    assert record["state"] == "expired"
{%- if not source.http %}


def test_with_unit_id_in_service_py_the_business_id_finds_the_unit(dynamodb, own, monkeypatch):
    monkeypatch.setattr(own.module, "unit_id", lambda unit: "order-7", raising=False)
    deliver(["order-7-try-1"])

    (record,) = shown("order-7")

    assert record["state"] == "completed"
    assert record["key"] == f"{OPERATION}#order-7"
{%- endif %}
{%- if source.http %}


def test_a_key_is_scoped_to_its_caller(dynamodb, own):
    ((key, *_),) = in_hand(deliver(["scoped"]))

    (record,) = shown(key)  # no --caller: an anonymous caller's key, not this caller's

    assert record["state"] == "none"
{%- endif %}


def test_keys_as_list_prints_them_are_taken_with_key(dynamodb, own):
    (ids,) = in_hand(deliver(["by-key"]))
    (first,) = shown(*ids)

    (again,) = shown(first["key"], "--key")

    assert again["state"] == "completed"


def test_list_finds_the_records_in_each_state_and_no_others(dynamodb, own):
    done = deliver([f"listed-{n}" for n in range(UNITS)])
    stuck = crashed(own, ["stuck"])
    done_keys = {shown(*ids)[0]["key"] for ids in in_hand(done)}
    (stuck_ids,) = in_hand(stuck)

    completed = listed("--state", "completed")
    in_progress = listed("--state", "in_progress")

    assert {record["key"] for record in completed} == done_keys
    assert [record["key"] for record in in_progress] == [shown(*stuck_ids)[0]["key"]]
    assert listed("--state", "expired") == []
    assert listed("--state", "in_doubt") == []


def listed(*args: str) -> list[dict[str, Any]]:
    code, out, err = run("list", *args, "--json")
    assert (code, err) == (0, "")
    return [json.loads(line) for line in out.splitlines()]


def test_list_stops_at_the_limit(dynamodb, own):
    for n in range(3):
        deliver([f"limited-{n}"])

    assert len(listed("--state", "completed", "--limit", "2")) == 2


def test_list_since_counts_from_when_the_record_was_written(dynamodb, own):
    deliver(["recent"])

    assert len(listed("--state", "completed", "--since", "1h")) == 1
    assert listed("--state", "completed", "--since", "2999-01-01T00:00") == []


def test_list_finds_expired_records(dynamodb, own):
    deliver(["expiring"])

    with freeze_time(PAST_EXPIRY):
        (record,) = listed("--state", "expired")

    assert record["state"] == "expired"


def test_list_prints_a_table_and_draws_progress_only_on_a_terminal(dynamodb, own, monkeypatch):
    deliver(["tabled"])
    code, out, err = run("list", "--state", "completed")

    assert code == 0
    assert out.splitlines()[0].startswith("KEY")
    assert err == ""  # not a terminal: quiet

    terminal = io.StringIO()
    monkeypatch.setattr(terminal, "isatty", lambda: True)
    assert records.main(["list", "--state", "completed"], out=io.StringIO(), err=terminal) == 0
    assert "scanned" in terminal.getvalue()


def test_forget_deletes_a_completed_record_and_the_next_delivery_runs_it(dynamodb, own):
    event = deliver(["fixed"])
    (ids,) = in_hand(event)

    code, out, _ = run("forget", *ids)
    delivery.deliver(event, FakeLambdaContext())

    assert code == 0
    assert "forgot" in out
    assert own.ran == ["fixed", "fixed"]


def test_forget_dry_run_changes_nothing(dynamodb, own, stored):
    (ids,) = in_hand(deliver(["kept"]))
    before = shown(*ids)

    code, out, _ = run("forget", *ids, "--dry-run")

    assert code == 0
    assert "would forget" in out
    assert shown(*ids) == before


def test_forget_refuses_a_unit_under_a_live_lease_unless_forced(dynamodb, own):
    (ids,) = in_hand(crashed(own, ["leased"]))
    before = shown(*ids)

    refused = run("forget", *ids)
    assert refused[0] == 1
    assert "refused" in refused[1]
    assert shown(*ids) == before

    forced = run("forget", *ids, "--force")
    assert forced[0] == 0
    assert shown(*ids)[0]["state"] == "none"


def test_forget_takes_a_unit_whose_lease_has_lapsed(dynamodb, own):
    (ids,) = in_hand(crashed(own, ["lapsed"], FakeLambdaContext(remaining_millis=1)))
    time.sleep(0.01)

    assert shown(*ids)[0]["lease"] == "lapsed"
    assert run("forget", *ids)[0] == 0
    assert shown(*ids)[0]["state"] == "none"


def test_forget_refuses_a_record_that_changed_since_it_was_read(dynamodb, own, monkeypatch):
    (ids,) = in_hand(deliver(["raced"]))
    before = shown(*ids)
    read = records.Session.read

    def read_then_another_copy_writes(self: records.Session, key: str) -> Any:
        item = read(self, key)
        item[claims.CLAIM_TOKEN] = {"S": "another operator or invocation"}  # what it saw
        return item

    with monkeypatch.context() as patched:
        patched.setattr(records.Session, "read", read_then_another_copy_writes)
        code, out, _ = run("forget", *ids)

    assert code == 1
    assert "changed since it was read" in out
    assert shown(*ids) == before
{%- if source.http %}


def test_settle_refuses_a_request_which_is_never_in_doubt(dynamodb, own):
    (ids,) = in_hand(deliver(["settled"]))
    before = shown(*ids)

    code, out, _ = run("settle", *ids, "--done")

    assert code == 1
    assert "not in doubt" in out
    assert shown(*ids) == before
{%- else %}


def test_settle_refuses_a_unit_that_is_not_in_doubt(dynamodb, own):
    (ids,) = in_hand(deliver(["certain"]))
    before = shown(*ids)

    for outcome in ("--done", "--again"):
        code, out, _ = run("settle", *ids, outcome)
        assert code == 1
        assert "not in doubt" in out
    assert shown(*ids) == before


@pytest.fixture
def in_doubt(dynamodb: Any, own: Service, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A unit whose process raised under AT_MOST_ONCE: in doubt. What the operator has, and
    (as ``own.delivered``) the unit as it was delivered."""
    monkeypatch.setattr(own.module, "AT_MOST_ONCE", True, raising=False)

    def fails(payload: Any) -> Any:
        own.ran.append(delivery.unit_id(payload))
        raise RuntimeError("the partner API timed out")

    monkeypatch.setattr(own.module, "process", fails)
    event = deliver(["doubtful"])
    (own.delivered,) = units_of(event)
    monkeypatch.setattr(own.module, "process", own.process)
    (ids,) = in_hand(event)
    return ids


def test_show_of_a_unit_in_doubt_has_its_reason_and_the_unit_as_delivered(in_doubt, own):
    (record,) = shown(*in_doubt)

    assert record["state"] == "in_doubt"
    assert record["in_doubt_reason"]
    assert record["in_doubt_since"] <= time.time()
    assert json.loads(record["unit"]) == own.delivered
    assert [found["key"] for found in listed("--state", "in_doubt")] == [record["key"]]


def test_settle_done_completes_a_unit_in_doubt_keeping_its_expiry(in_doubt, own):
    (before,) = shown(*in_doubt)

    assert run("settle", *in_doubt, "--dry-run", "--done")[0] == 0
    assert shown(*in_doubt) == [before]
    assert run("settle", *in_doubt, "--done")[0] == 0

    (after,) = shown(*in_doubt)
    assert after["state"] == "completed"
    assert after["expires_at"] == before["expires_at"]


def test_settle_again_forgets_a_unit_in_doubt_so_the_next_delivery_runs_it(in_doubt, own):
    assert run("settle", *in_doubt, "--again")[0] == 0

    assert shown(*in_doubt)[0]["state"] == "none"
    deliver(["doubtful"])
    assert own.ran == ["doubtful", "doubtful"]
{%- endif %}


@pytest.fixture
def stack(dynamodb: Any) -> Iterator[str]:
    """A stack in moto's CloudFormation whose outputs name the dedup table and the function."""
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "DedupTableName": {"Value": store.table_name()},
            "ProcessorFunctionName": {"Value": OPERATION},
        },
    }
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(StackName="acme-orders", TemplateBody=json.dumps(template))
    yield "acme-orders"
    cloudformation.delete_stack(StackName="acme-orders")


def test_the_table_and_operation_come_from_the_stacks_outputs(stack, own, monkeypatch):
    (ids,) = in_hand(deliver(["stacked"]))
    monkeypatch.delenv(store.TABLE_NAME_ENV)

    code, out, err = run("show", *ids, "--stack", stack, "--operation", "", "--json")

    assert (code, err) == (0, "")
    assert json.loads(out)["state"] == "completed"


def test_the_stack_is_samconfig_tomls_without_stack(stack, own, monkeypatch, tmp_path):
    (ids,) = in_hand(deliver(["configured"]))
    monkeypatch.delenv(store.TABLE_NAME_ENV)
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(f'version = 0.1\n[default.deploy.parameters]\nstack_name = "{stack}"\n')
    monkeypatch.setattr(records, "SAMCONFIG", samconfig)

    code, out, _ = run("show", *ids, "--operation", "", "--json")

    assert code == 0
    assert json.loads(out)["state"] == "completed"
{%- if kafka %}


def test_the_cluster_comes_from_the_functions_event_source_mapping(stack, own, monkeypatch):
    event = deliver(["mapped"])
    ((position, _, cluster),) = in_hand(event)
    lambdas = boto3.client("lambda", region_name="us-east-1")
    stubbed = Stubber(lambdas)
{%- if cookiecutter.event_source == "msk" %}
    mapping = {"EventSourceArn": cluster}
{%- else %}
    servers = [server.strip() for server in cluster.split(",")]
    mapping = {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": servers}}}
{%- endif %}
    stubbed.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [mapping]},
        {"FunctionName": OPERATION},
    )
    client = records.Session.client
    monkeypatch.setattr(
        records.Session,
        "client",
        lambda self, name: lambdas if name == "lambda" else client(self, name),
    )

    with stubbed:
        (record,) = shown(position, "--stack", stack)

    assert record["state"] == "completed"
{%- endif %}


def one_line_error(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    return err


def test_bad_input_gets_one_line_and_exit_2(dynamodb, own, stored):
    (ids,) = in_hand(deliver(["untouched"]))
    before = shown(*ids)

    assert "invalid choice" in one_line_error(run("frob", "x"))
    assert one_line_error(run("forget", *BAD_ID))
    assert one_line_error(run("list", "--state", "stuck"))
    assert one_line_error(run("list", "--state", "completed", "--since", "last tuesday"))
    assert "--done" in one_line_error(run("settle", *ids))
    assert "no stack" in one_line_error(run("show", *ids, "--stack", "nope", "--operation", ""))
    assert shown(*ids) == before


def test_a_table_that_is_not_a_dedup_table_is_refused(dynamodb, own):
    ledger = create_ledger(dynamodb, "ledger-not-dedup")

    refused = run("list", "--state", "completed", "--table", ledger)

    assert "not a dedup table" in one_line_error(refused)


def test_throttling_gets_one_line(dynamodb, own, monkeypatch):
    def throttled(self: records.Session, key: str) -> Any:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        raise ClientError(error, "GetItem")

    monkeypatch.setattr(records.Session, "read", throttled)

    assert "throttled" in one_line_error(run("show", f"{OPERATION}#x", "--key"))


def test_help_and_no_credentials_from_the_command_line(tmp_path):
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment |= {
        "PYTHONPATH": "src",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sys.executable, "-m", "tools.records"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=PROJECT, env=environment, capture_output=True, text=True
        )

    helped = cli("--help")
    assert helped.returncode == 0
    assert "show" in helped.stdout

    refused = cli("show", "o#x", "--key", "--table", "t")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert "credentials" in refused.stderr


def runbook_commands() -> list[str]:
    """The ARGS of every ``make records`` command in README.md's shell blocks."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    lines = [
        line
        for block in re.findall(r"```bash\n(.*?)```", readme, re.S)
        for line in block.splitlines()
    ]
    return [found for line in lines for found in re.findall(r'^make records ARGS="([^"]*)"', line)]


def test_the_readmes_runbook_commands_run_as_written(dynamodb, own):
    """Each command the README tells an operator to run is one this command takes: with the
    id in hand for its placeholder, it runs (0) or refuses the unit (1), never bad input (2)."""
    commands = runbook_commands()
    (ids,) = in_hand(deliver(["from-the-runbook"]))

    assert any(command.startswith("forget") for command in commands)
    for command in commands:
        words = shlex.split(re.sub(r"<[^>]+>", "ID_IN_HAND", command))
        args = [part for word in words for part in (ids if word == "ID_IN_HAND" else [word])]
        code, _, err = run(*args)
        assert code in (0, 1), f'make records ARGS="{command}": {err}'
