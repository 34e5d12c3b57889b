{%- import "common/source.j2" as source with context -%}
"""{{ cookiecutter.package_name }}: a Lambda function that processes each event once.

``handler.py`` and ``service.py`` are yours; ``dedup/`` is the template's machinery.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

# The machinery's modules that stood beside service.py before they moved into dedup/. Code
# written then (service.py, tests/test_service.py: files template updates leave alone) imports
# them as ``from {{ cookiecutter.package_name }} import store``: that still works, with a
# warning, and will stop working in a later release of the template.
{%- if source.http %}
_MOVED = {"decisions", "effects", "idempotency_key", "keys", "once", "responses", "store"}
{%- elif source.batch %}
_MOVED = {"batch", "decisions", "effects", "keys", "once", "store"}
{%- else %}
_MOVED = {"decisions", "effects", "keys", "once", "store"}
{%- endif %}


def __getattr__(name: str) -> ModuleType:
    """A moved module, from its new place in dedup/, with a DeprecationWarning."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"`from {__name__} import {name}` is deprecated and will stop working in a later"
        f" release of the template: write `from {__name__}.dedup import {name}` (in"
        f" service.py: `from .dedup import {name}`)",
        DeprecationWarning,
        stacklevel=2,
    )
    return importlib.import_module(f"{__name__}.dedup.{name}")
