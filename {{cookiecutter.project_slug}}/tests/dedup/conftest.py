"""The proof's own choice of guarantee: at least once, the invocation's time as the lease.

service.py is yours, and may set ``AT_MOST_ONCE`` or ``LEASE_SECONDS``. The tests here put the
module's defaults back for each test, as they put a ``process`` of their own in its place, so
that they prove what they say whatever service.py chooses; a test of the other mode, or of a
lease of its own, sets it itself (test_guarantees.py).
"""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }} import service


@pytest.fixture(autouse=True)
def at_least_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "AT_MOST_ONCE", False, raising=False)
    monkeypatch.setattr(service, "LEASE_SECONDS", None, raising=False)
