"""Each decision is one JSON log line that CloudWatch also reads as a metric (EMF).

The Embedded Metric Format: a log line that is a JSON object with an ``_aws`` member holding
a millisecond ``Timestamp`` and ``CloudWatchMetrics`` directives, each naming a namespace,
its dimension sets (names of the line's own string members) and its metrics (names of the
line's own numeric members). CloudWatch ignores a line that breaks these rules, silently:
this test is how you find out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from freezegun import freeze_time

from {{ cookiecutter.package_name }}.dedup import decisions
from tools.local_aws import FakeLambdaContext

UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Count", "Percent", "None"}


def assert_valid_emf(line: dict[str, Any]) -> None:
    """Fail unless ``line`` is a valid EMF log event (the rules of the EMF specification)."""
    metadata = line["_aws"]
    assert isinstance(metadata["Timestamp"], int)
    assert metadata["Timestamp"] > 1_000_000_000_000  # milliseconds, not seconds
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list)
    assert directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str)
        assert 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for dimension in dimension_set:
                assert isinstance(line[dimension], str)
                assert 1 <= len(line[dimension]) <= 1024
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert isinstance(line[metric["Name"]], int | float)
            assert metric.get("Unit", "None") in UNITS


@pytest.mark.parametrize("decision", sorted(decisions.DECISIONS))
def test_every_decision_is_a_json_line_with_a_valid_metric(decision, capsys):
    with freeze_time("2026-01-01 12:00:00"):
        decisions.report(decision, "orders-fn#m-1", detail="why")

    (printed,) = capsys.readouterr().out.splitlines()
    line = json.loads(printed)
    assert_valid_emf(line)
    level, metric = decisions.DECISIONS[decision]
    assert (line["level"], line["decision"]) == (level, decision)
    assert line["dedup_key"] == "orders-fn#m-1"
    assert line["detail"] == "why"
    assert line[metric] == 1
    assert line["Operation"] == "orders-fn"
    assert line["_aws"]["Timestamp"] == 1767268800000
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == decisions.NAMESPACE
    assert directive["Dimensions"] == [["Operation"]]


def test_a_unit_without_a_key_is_counted_under_the_operation_given(capsys):
    context = FakeLambdaContext(function_name="orders-fn")
    decisions.report("unidentified", None, operation=context.function_name, reason="no id")

    line = json.loads(capsys.readouterr().out)
    assert_valid_emf(line)
    assert (line["dedup_key"], line["Operation"]) == (None, "orders-fn")


def test_every_decision_has_a_level_and_a_distinct_metric():
    levels = {level for level, _ in decisions.DECISIONS.values()}
    metrics = [metric for _, metric in decisions.DECISIONS.values()]
    assert levels <= {"INFO", "WARNING", "ERROR"}
    assert len(set(metrics)) == len(metrics)
