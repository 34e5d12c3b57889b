"""Local stand-ins for what AWS provides at run time, shared by the tests and the demo.

The dedup table is built from template.yaml's own definition, so the tests and the deployed
stack cannot drift apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
TABLE_NAME_ENV = "DEDUP_TABLE_NAME"  # the variable that tells the function its table


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


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as plain data."""
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CloudFormationLoader)


def dedup_table_name(template: dict[str, Any] | None = None) -> str:
    """The dedup table's logical id: the table the function's environment names.

    The function carries it as ``DEDUP_TABLE_NAME: !Ref <table>``; any other tables the
    template holds (a source table, the tables your own code writes) are not the dedup table.
    """
    template = template or load_template()
    environments = [template.get("Globals", {}).get("Function", {}).get("Environment", {})]
    environments += [
        resource.get("Properties", {}).get("Environment", {})
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    (name,) = {
        reference["Ref"]
        for environment in environments
        if isinstance(reference := environment.get("Variables", {}).get(TABLE_NAME_ENV), dict)
        and "Ref" in reference
    }
    if template["Resources"][name]["Type"] != "AWS::DynamoDB::Table":
        raise ValueError(f"{TABLE_NAME_ENV} refers to {name}, which is not a DynamoDB table")
    return name


def dedup_table_properties(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Properties of the dedup table, as template.yaml defines it."""
    template = template or load_template()
    return template["Resources"][dedup_table_name(template)]["Properties"]


def default_ttl_seconds(template: dict[str, Any] | None = None) -> int:
    """The DedupTtlSeconds parameter's default: what a deployed function gets."""
    return int((template or load_template())["Parameters"]["DedupTtlSeconds"]["Default"])


def create_dedup_table(client: Any, table_name: str) -> None:
    """Create the dedup table as template.yaml defines it, TTL included."""
    properties = dedup_table_properties()
    client.create_table(
        TableName=table_name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode=properties["BillingMode"],
    )
    ttl = properties["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that the handler uses."""

    function_name: str = "{{ cookiecutter.project_slug }}-ProcessorFunction"
    remaining_millis: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis
