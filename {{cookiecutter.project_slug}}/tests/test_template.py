{%- import "sources.j2" as source with context -%}
"""template.yaml agrees with the code, is least-privilege, and passes the SAM checks offline."""

from __future__ import annotations

from typing import Any

import pytest

from {{ cookiecutter.package_name }} import dedup, store
from tools.local_aws import TEMPLATE as TEMPLATE_PATH
from tools.local_aws import dedup_table_properties, load_template
from tools.validate_template import expand_sam, problems

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTION = RESOURCES["ProcessorFunction"]["Properties"]
FUNCTION_TIMEOUT = TEMPLATE["Globals"]["Function"]["Timeout"]
TTL_DEFAULT = int(TEMPLATE["Parameters"]["DedupTtlSeconds"]["Default"])


def resource_of_type(resource_type: str) -> dict[str, Any]:
    (properties,) = [r["Properties"] for r in RESOURCES.values() if r["Type"] == resource_type]
    return properties


def test_the_template_passes_the_sam_transform_and_cfn_lint():
    assert problems(TEMPLATE_PATH) == []


def test_the_table_key_and_ttl_attribute_are_the_ones_dedup_writes():
    table = dedup_table_properties()
    assert table["KeySchema"] == [{"AttributeName": dedup.KEY, "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": dedup.EXPIRES_AT,
        "Enabled": True,
    }


def test_the_table_is_on_demand_encrypted_and_recoverable():
    table = dedup_table_properties()
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_function_is_told_the_table_and_the_ttl():
    variables = FUNCTION["Environment"]["Variables"]
    assert variables[store.TABLE_NAME_ENV] == {"Ref": "DedupTable"}
    assert variables[store.TTL_SECONDS_ENV] == {"Ref": "DedupTtlSeconds"}


def test_the_handler_path_is_the_package_entry_point():
    assert FUNCTION["CodeUri"] == "src/"
    assert FUNCTION["Handler"] == "{{ cookiecutter.package_name }}.handler.lambda_handler"


def test_the_function_may_write_exactly_the_tables_it_names_with_exactly_the_calls_it_makes():
    expanded = expand_sam(TEMPLATE)
    role = expanded["Resources"]["ProcessorFunctionRole"]["Properties"]
    granted = {
        statement["Resource"]["Fn::GetAtt"][0]: set(_as_list(statement["Action"]))
        for policy in role.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if any(str(action).startswith("dynamodb:") for action in _as_list(statement["Action"]))
    }
{%- if source.http %}
    # claim, complete, release, and the read of a response too large for its record
    assert granted["DedupTable"] == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
    }
{%- else %}
    # claim, complete, release
    assert granted["DedupTable"] == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
{%- endif %}
{%- if cookiecutter.event_source == "dynamodb_streams" %}
    # what service.process enlists
    assert granted["OrdersTable"] == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
{%- else %}
    assert granted["OrdersTable"] == {"dynamodb:PutItem"}  # what service.process enlists
{%- endif %}
    assert set(granted) == {"DedupTable", "OrdersTable"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expand_sam(TEMPLATE)


{% include "template_tests/" ~ cookiecutter.event_source ~ ".py.j2" %}