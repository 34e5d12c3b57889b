"""The CloudWatch dashboard in template.yaml draws what the code emits and the stack holds.

A dashboard fails quietly: a misspelt metric, namespace or dimension draws an empty graph, and
nobody notices until the incident it was for. So the body is read out of template.yaml, its
``${...}`` references put in, and every Dedup metric it draws is checked against the
decisions table the code reports from (its NAMESPACE, DIMENSION and DECISIONS), every alarm
of the template against the alarm widget, and every failure queue against the queue widget.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.dedup import decisions
from tools.local_aws import load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTION = "the-function-name"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}


def _dashboard_id() -> str:
    (found,) = [
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    return found


def substituted(text: str) -> str:
    """``text`` with each ``${...}`` of !Sub replaced by what a deployed stack would put
    there: a name for the function, the pseudo parameters, ``<queue>-name`` for a queue's
    QueueName and ``<alarm>-name`` for an alarm (its Ref is its name). A reference to anything
    else fails the test."""

    def value(match: re.Match[str]) -> str:
        reference = match.group(1)
        if reference == "ProcessorFunction":
            return FUNCTION
        if reference in PSEUDO:
            return PSEUDO[reference]
        logical_id, _, attribute = reference.partition(".")
        kind = RESOURCES.get(logical_id, {}).get("Type")
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return f"{logical_id}-name"
        if (kind, attribute) == ("AWS::CloudWatch::Alarm", ""):
            return f"{logical_id}-name"
        raise AssertionError(f"the dashboard refers to {match.group(0)}: not in the stack")

    return re.sub(r"\$\{([^}]+)\}", value, text)


def body() -> dict[str, Any]:
    properties = RESOURCES[_dashboard_id()]["Properties"]
    return json.loads(substituted(properties["DashboardBody"]["Fn::Sub"]))


def drawn(namespace: str) -> list[list[Any]]:
    """Every metric of that namespace the dashboard draws: [name, dimension, value, ...]."""
    return [
        metric[1:]
        for widget in body()["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], str) and metric[0] == namespace
    ]


def test_it_is_there_by_default_and_one_parameter_leaves_it_out():
    parameter = TEMPLATE["Parameters"]["Dashboard"]
    assert parameter["Default"] == "true"
    assert parameter["AllowedValues"] == ["true", "false"]
    condition = RESOURCES[_dashboard_id()]["Condition"]
    assert TEMPLATE["Conditions"][condition] == {"Fn::Equals": [{"Ref": "Dashboard"}, "true"]}


def test_every_dedup_metric_it_draws_is_one_the_code_emits_for_this_function():
    emitted = {metric for _level, metric in decisions.DECISIONS.values()}
    dedup = drawn(decisions.NAMESPACE)

    assert dedup, f"no metric of the {decisions.NAMESPACE} namespace is drawn"
    for name, dimension, value, *_options in dedup:
        assert name in emitted, f"{name} is drawn, but the code emits only {sorted(emitted)}"
        assert (dimension, value) == (decisions.DIMENSION, FUNCTION)
    assert {name for name, *_ in dedup} == emitted, "every decision the code emits is drawn"


def test_the_duplicate_rate_is_duplicates_over_processed():
    (rate,) = [
        widget["properties"]["metrics"]
        for widget in body()["widgets"]
        if widget["type"] == "metric"
        and any("expression" in metric[0] for metric in widget["properties"]["metrics"])
    ]
    (expression,) = [metric[0] for metric in rate if isinstance(metric[0], dict)]
    ids = {metric[1]: metric[-1]["id"] for metric in rate if isinstance(metric[0], str)}
    duplicates, processed = ids["DuplicateSkipped"], ids["Processed"]
    assert re.fullmatch(rf"100 \* {duplicates} / {processed}", expression["expression"])


def test_the_function_errors_and_duration_are_drawn():
    drawn_for = {(name, dimension, value) for name, dimension, value, *_ in drawn("AWS/Lambda")}
    for name in ("Errors", "Duration"):
        assert (name, "FunctionName", FUNCTION) in drawn_for


def test_every_alarm_of_the_stack_is_in_the_alarm_widget():
    alarms = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    (widget,) = [widget for widget in body()["widgets"] if widget["type"] == "alarm"]
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    assert sorted(widget["properties"]["alarms"]) == sorted(f"{arn}{name}-name" for name in alarms)


def test_every_failure_queue_is_drawn():
    # The failure queues are the ones an alarm watches (tests/dedup/test_template.py checks
    # that every queue failures are sent to has one).
    watched = {
        r["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "AWS/SQS"
    }
    queues = {
        value
        for name, dimension, value, *_ in drawn("AWS/SQS")
        if (name, dimension) == ("ApproximateNumberOfMessagesVisible", "QueueName")
    }
    assert queues == {f"{queue}-name" for queue in watched}


@pytest.mark.parametrize("field", ["x", "y", "width", "height"])
def test_every_widget_fits_the_24_column_grid(field):
    for widget in body()["widgets"]:
        assert isinstance(widget[field], int)
        assert widget["x"] + widget["width"] <= 24
