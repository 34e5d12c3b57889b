{%- import "common/decisions.j2" as decisions with context -%}
"""One line per dedup decision: a JSON log line that is also a CloudWatch metric.

Lambda sends every line the function prints to CloudWatch Logs as it is. A line that is a JSON
object can be queried field by field in Logs Insights; one that also carries an ``_aws`` block
in the Embedded Metric Format (EMF) becomes a metric point, with no call to CloudWatch and no
library: namespace ``Dedup``, the decision's metric, the operation (the first part of every
dedup key) as its dimension. The lines are printed rather than logged through ``logging`` so
that they stay bare JSON whatever the function's log format, as EMF requires.
"""

from __future__ import annotations

import json
import sys
import threading
import time

NAMESPACE = "Dedup"
DIMENSION = "Operation"

# decision: (level, metric). README.md's Logs section says what each one means.
DECISIONS = {
{%- for decision in decisions.logged %}
    "{{ decision.name }}": ("{{ decision.level }}", "{{ decision.metric }}"),
{%- endfor %}
}

_write_lock = threading.Lock()  # one line at a time, whole, when a batch reports from threads


def report(decision: str, key: str | None, *, operation: str = "", **details: object) -> None:
    """Print the decision taken for the unit under ``key`` as one JSON line with its metric.

    ``operation`` is needed only when there is no key (a unit that could not be identified).
    """
    level, metric = DECISIONS[decision]
    dimension = operation or (key or "").partition("#")[0]
    line = {
        "level": level,
        "decision": decision,
        "dedup_key": key,
        **details,
        DIMENSION: dimension,
        metric: 1,
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }
            ],
        },
    }
    text = json.dumps(line, default=str) + "\n"
    with _write_lock:
        sys.stdout.write(text)
        sys.stdout.flush()
