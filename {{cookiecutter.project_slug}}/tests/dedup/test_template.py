{%- import "common/source.j2" as source with context -%}
"""template.yaml agrees with the code, is least-privilege, and passes the SAM checks offline."""

from __future__ import annotations

from typing import Any

import pytest

from {{ cookiecutter.package_name }}.dedup import claims, store
from tools.local_aws import dedup_table_id, dedup_table_properties, load_template
from tools.validate_template import expand_sam

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTION = RESOURCES["ProcessorFunction"]["Properties"]
FUNCTION_TIMEOUT = TEMPLATE["Globals"]["Function"]["Timeout"]
TTL_DEFAULT = int(TEMPLATE["Parameters"]["DedupTtlSeconds"]["Default"])
# What the dedup package emits per decision, in the Embedded Metric Format: namespace,
# dimension, and the decisions an alarm watches.
METRIC_NAMESPACE = "Dedup"
METRIC_DIMENSION = "Operation"
NO_VALUE = {"Ref": "AWS::NoValue"}


def resolved(value: Any, true: frozenset[str] = frozenset()) -> Any:
    """``value`` with each Fn::If decided: true for the conditions in ``true``, else false
    (every condition is false with the parameters' defaults). AWS::NoValue entries drop out."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, if_true, if_false = value["Fn::If"]
            return resolved(if_true if condition in true else if_false, true)
        items = {key: resolved(item, true) for key, item in value.items()}
        return {key: item for key, item in items.items() if item != NO_VALUE}
    if isinstance(value, list):
        return [item for item in (resolved(v, true) for v in value) if item != NO_VALUE]
    return value


def role_statements(expanded: dict[str, Any], true: frozenset[str] = frozenset()) -> list[Any]:
    """The statements of the function role's inline policies, conditions decided as above."""
    role = resolved(expanded["Resources"]["ProcessorFunctionRole"]["Properties"], true)
    return [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def assert_the_ttl_covers(window_seconds: int, window: str) -> None:
    """DedupTtlSeconds must outlast the latest copy the source can still deliver."""
    assert window_seconds <= TTL_DEFAULT, (
        f"DedupTtlSeconds defaults to {TTL_DEFAULT} s, less than {window} ({window_seconds} s):"
        " a copy that arrives after its record has expired is processed again as if it were"
        " new, so such duplicates run twice. Raise the default in template.yaml, or shorten"
        " that window first."
    )


def test_the_table_key_and_ttl_attribute_are_the_ones_dedup_writes():
    table = dedup_table_properties()
    assert table["KeySchema"] == [{"AttributeName": claims.KEY, "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": claims.EXPIRES_AT,
        "Enabled": True,
    }


def test_the_table_is_on_demand_encrypted_and_recoverable():
    table = dedup_table_properties()
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # The AWS managed key by default, the customer managed key when KmsKeyArn is given.
    sse = table["SSESpecification"]
    assert resolved(sse) == {"SSEEnabled": True, "SSEType": "KMS"}
    assert resolved(sse, frozenset({"UseCustomerManagedKey"}))["KMSMasterKeyId"] == {
        "Ref": "KmsKeyArn"
    }


def test_the_dedup_table_is_the_one_the_function_is_told_and_goes_with_the_stack():
    name = dedup_table_id()
    assert RESOURCES[name]["Type"] == "AWS::DynamoDB::Table"
    assert FUNCTION["Environment"]["Variables"][store.TABLE_NAME_ENV] == {"Ref": name}
    # Its records matter only while copies can still arrive: nothing to keep after the stack.
    assert RESOURCES[name]["DeletionPolicy"] == "Delete"
    assert RESOURCES[name]["UpdateReplacePolicy"] == "Delete"


def test_the_dedup_table_is_found_by_the_functions_environment_among_other_tables():
    template = {
        **TEMPLATE,
        "Resources": {
            "BusinessTable": {"Type": "AWS::DynamoDB::Table", "Properties": {"KeySchema": []}},
            **RESOURCES,
        },
    }
    assert dedup_table_id(template) == dedup_table_id()
    assert dedup_table_properties(template) == dedup_table_properties()


def test_the_function_is_told_the_table_and_the_ttl():
    variables = FUNCTION["Environment"]["Variables"]
    assert variables[store.TABLE_NAME_ENV] == {"Ref": "DedupTable"}
    assert variables[store.TTL_SECONDS_ENV] == {"Ref": "DedupTtlSeconds"}


def test_the_handler_path_is_the_package_entry_point():
    assert FUNCTION["CodeUri"] == "src/"
    assert FUNCTION["Handler"] == "{{ cookiecutter.package_name }}.handler.lambda_handler"


def test_the_function_may_use_exactly_the_tables_it_names_and_the_dedup_table_as_dedup_does():
    granted: dict[str, set[str]] = {}
    for statement in role_statements(expand_sam(TEMPLATE), frozenset({"UseCustomerManagedKey"})):
        actions = {str(action) for action in _as_list(statement["Action"])}
        if any(action.startswith("dynamodb:") for action in actions):
            for resource in _as_list(statement["Resource"]):
                granted.setdefault(_table_of(resource), set()).update(actions)
{%- if source.http %}
    # claim, complete, release, and the read of a response too large for its record
    assert granted[dedup_table_id()] == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
    }
{%- else %}
    # claim, complete, release
    assert granted[dedup_table_id()] == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
{%- endif %}
    # Every other table it may use is one its environment names (the business tables that
    # service.py writes to, whatever they are called), and none of them with a wildcard.
    assert set(granted) <= set(named_tables().values()), (
        f"the function may use {sorted(granted)}, but its environment names only"
        f" {sorted(named_tables().values())}"
    )


def named_tables() -> dict[str, str]:
    """The tables the function's environment names: variable -> the table's logical id."""
    variables = FUNCTION["Environment"]["Variables"]
    return {
        name: value["Ref"]
        for name, value in variables.items()
        if isinstance(value, dict)
        and RESOURCES.get(value.get("Ref"), {}).get("Type") == "AWS::DynamoDB::Table"
    }


def _table_of(resource: Any) -> str:
    """The logical id of the table a statement's resource is (``!GetAtt Table.Arn``), else
    the resource as written (a wildcard, say), which no named table matches."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    return str(resource)


def test_only_a_customer_managed_key_brings_kms_permissions():
    expanded = expand_sam(TEMPLATE)
    kms = [s for s in role_statements(expanded) if "kms:Decrypt" in _as_list(s["Action"])]
    assert kms == []
    with_key = role_statements(expanded, frozenset({"UseCustomerManagedKey"}))
    (statement,) = [s for s in with_key if "kms:Decrypt" in _as_list(s["Action"])]
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert resolved(FUNCTION, frozenset({"UseCustomerManagedKey"}))["KmsKeyArn"] == {
        "Ref": "KmsKeyArn"
    }
    assert "KmsKeyArn" not in resolved(FUNCTION)


def test_concurrency_is_reserved_only_when_asked():
    assert "ReservedConcurrentExecutions" not in resolved(FUNCTION)
    reserved = resolved(FUNCTION, frozenset({"HasReservedConcurrency"}))
    assert reserved["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert TEMPLATE["Parameters"]["ReservedConcurrency"]["Default"] == ""


def test_the_function_logs_json_into_its_own_log_group_with_retention_and_traces():
    assert FUNCTION["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": {"Ref": "ProcessorLogGroup"},
    }
    log_group = RESOURCES["ProcessorLogGroup"]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    retention = TEMPLATE["Parameters"]["LogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"]
    assert FUNCTION["Tracing"] == "Active"


def _alarms() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _notifies_the_optional_topic(alarm: dict[str, Any]) -> bool:
    topic = {"Fn::If": ["NotifyAlarmTopic", [{"Ref": "AlarmTopicArn"}], NO_VALUE]}
    return alarm["AlarmActions"] == topic and alarm["OKActions"] == topic


def test_an_alarm_goes_off_when_the_dedup_table_is_unavailable():
    (alarm,) = [
        a
        for a in _alarms().values()
        if a["Namespace"] == METRIC_NAMESPACE and a["MetricName"] == "StoreUnavailable"
    ]
    # The dimension is the operation the dedup package reports: the function's name by default.
    assert alarm["Dimensions"] == [
        {"Name": METRIC_DIMENSION, "Value": {"Ref": "ProcessorFunction"}}
    ]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert _notifies_the_optional_topic(alarm)
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
{%- if not source.http %}


def test_an_alarm_goes_off_when_a_unit_in_doubt_is_acknowledged_without_running():
    (alarm,) = [
        a
        for a in _alarms().values()
        if a["Namespace"] == METRIC_NAMESPACE and a["MetricName"] == "InDoubt"
    ]
    assert alarm["Dimensions"] == [
        {"Name": METRIC_DIMENSION, "Value": {"Ref": "ProcessorFunction"}}
    ]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # An EMF metric exists only once a line of it is printed: no data is no unit in doubt.
    assert alarm["TreatMissingData"] == "notBreaching"
    assert _notifies_the_optional_topic(alarm)
{%- endif %}


def _failure_queues(expanded: dict[str, Any]) -> set[str]:
    """Every queue that failures are sent to, found where the template wires them."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            if key in {"deadLetterTargetArn", "Arn", "Destination"} and "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"][0]
                if expanded["Resources"].get(target, {}).get("Type") == "AWS::SQS::Queue":
                    found.add(target)
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)

    for resource in expanded["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            walk(resource.get("Properties", {}))
    return found


def test_an_alarm_goes_off_when_anything_reaches_a_dead_letter_or_on_failure_queue():
    watched = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: alarm
        for alarm in _alarms().values()
        if alarm["Namespace"] == "AWS/SQS"
    }
    assert set(watched) == _failure_queues(expand_sam(TEMPLATE))
    for alarm in watched.values():
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Dimensions"][0]["Name"] == "QueueName"
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert _notifies_the_optional_topic(alarm)


def test_stateful_resources_say_what_happens_to_them_on_delete_and_replace():
    # cfn-lint's list of types whose data a default Delete would lose (its rule I3011).
    stateful = {
        "AWS::DynamoDB::Table",
        "AWS::Kinesis::Stream",
        "AWS::Logs::LogGroup",
        "AWS::SQS::Queue",
    }
    for name, resource in RESOURCES.items():
        if resource["Type"] in stateful:
            assert resource.get("DeletionPolicy") in {"Delete", "Retain"}, name
            assert resource.get("UpdateReplacePolicy") == resource["DeletionPolicy"], name


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return expand_sam(TEMPLATE)


{% include source.own ~ "template_test.py.j2" %}