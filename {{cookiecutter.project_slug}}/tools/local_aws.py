"""Local stand-ins for what AWS provides at run time, shared by the tests and the demo.

The tables are built from template.yaml's own definitions, and the function's settings are
read from its environment there, so the tests and the deployed stack cannot drift apart.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATE = PROJECT / "template.yaml"
SAMPLE_EVENT = PROJECT / "events" / "event.json"
FUNCTION = "ProcessorFunction"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt and friends as {"Ref": ...} style mappings."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":  # !GetAtt Queue.Arn is short for [Queue, Arn]
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def sample_event() -> Any:
    """events/event.json, the sample event (a fresh copy each time)."""
    return json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as plain data (read again only when the file changes: treat it as
    read-only, the tests share it)."""
    return _parsed(path, path.stat().st_mtime_ns)


@functools.cache
def _parsed(path: Path, modified: int) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CloudFormationLoader)


def function_environment(template: dict[str, Any] | None = None) -> dict[str, str]:
    """The function's environment as a deployed stack sets it: literals as written, a !Ref
    to a parameter as its default, a !Ref to a resource as the resource's logical id."""
    template = template or load_template()
    variables = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    parameters = template.get("Parameters", {})
    environment = {}
    for name, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            target = value["Ref"]
            value = parameters[target]["Default"] if target in parameters else target
        environment[name] = str(value)
    return environment


def table_properties(logical_id: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Properties of the AWS::DynamoDB::Table called ``logical_id`` in template.yaml."""
    resource = (template or load_template())["Resources"][logical_id]
    if resource["Type"] != "AWS::DynamoDB::Table":
        raise ValueError(f"{logical_id} is a {resource['Type']}, not an AWS::DynamoDB::Table")
    return resource["Properties"]


def dedup_table_id(template: dict[str, Any] | None = None) -> str:
    """The dedup table's logical id: the table the function's DEDUP_TABLE_NAME refers to."""
    return function_environment(template)["DEDUP_TABLE_NAME"]


def dedup_table_properties(template: dict[str, Any] | None = None) -> dict[str, Any]:
    template = template or load_template()
    return table_properties(dedup_table_id(template), template)


def default_ttl_seconds(template: dict[str, Any] | None = None) -> int:
    """The DedupTtlSeconds parameter's default: what a deployed function gets."""
    return int((template or load_template())["Parameters"]["DedupTtlSeconds"]["Default"])


def create_table(client: Any, table_name: str, logical_id: str) -> None:
    """Create the table ``logical_id`` as template.yaml defines it, under ``table_name``."""
    properties = table_properties(logical_id)
    client.create_table(
        TableName=table_name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
    )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": ttl["Enabled"],
            },
        )


def create_dedup_table(client: Any, table_name: str) -> None:
    """Create the dedup table as template.yaml defines it, TTL included."""
    create_table(client, table_name, dedup_table_id())


def create_tables(client: Any, suffix: str = "") -> dict[str, str]:
    """Create every table the function's environment names, each under a name of its own.

    Returns the environment variables that name them (DEDUP_TABLE_NAME, ...), to set for
    the function: with a ``suffix``, tests can make fresh tables on one endpoint.
    """
    template = load_template()
    environment = {}
    for variable, target in function_environment(template).items():
        resource = template["Resources"].get(target, {})
        if variable.endswith("_TABLE_NAME") and resource.get("Type") == "AWS::DynamoDB::Table":
            table_name = f"{target}{suffix}"
            create_table(client, table_name, target)
            environment[variable] = table_name
    return environment


def create_ledger(client: Any, table_name: str) -> str:
    """Create a business table of the tests' own, keyed on ``order_id``; return its name.

    The proof that enlisted writes commit exactly once (test_effects, test_faults,
    test_schedules) writes to this table, made by the tests themselves, rather than to the
    example's business table in template.yaml: that one is the service owner's, to rename or
    remove.
    """
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table_name


def committed_runs(client: Any, ledger: str, order_id: str) -> int:
    """How many runs' enlisted writes committed for ``order_id``: the ``runs`` counter that
    each run adds one to (``ADD runs :one``)."""
    item = client.get_item(TableName=ledger, Key={"order_id": {"S": order_id}})
    return int(item.get("Item", {}).get("runs", {}).get("N", "0"))


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that the handler uses.

    The remaining time is ``remaining_millis``, or, with a ``deadline`` (epoch seconds), the
    time left until then by the clock (the real one, or freezegun's).
    """

    function_name: str = "{{ cookiecutter.project_slug }}-ProcessorFunction"
    remaining_millis: int = 30_000
    deadline: float | None = None
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return self.remaining_millis
        return max(0, int((self.deadline - time.time()) * 1000))
