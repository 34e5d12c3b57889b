"""The benchmark keeps working: bench/run.py, once, at its smallest.

It measures and prints; what it prints is not judged here, only that every section comes out
with both contenders in it (make bench runs it at full size, and writes docs/batch-curve.png).
"""

from __future__ import annotations

import sys

from conftest import TEMPLATE_DIR, run


def test_the_benchmark_runs_and_reports_both_contenders():
    result = run([sys.executable, "bench/run.py", "--tiny"], cwd=TEMPLATE_DIR, timeout=900)

    assert result.returncode == 0, result.stderr[-3000:]
    report = result.stdout
    for section in (
        "Wall time per invocation",
        "Requests per unit, by operation",
        "Client CPU per unit",
        "SQS batch wall time against batch size",
        "Own-module import self-time",
        "Package size",
    ):
        assert section in report
    assert "| SQS batch of 10, fresh |" in report
    assert "| 20 / 20 |" in report  # 2 requests per fresh message, for both
