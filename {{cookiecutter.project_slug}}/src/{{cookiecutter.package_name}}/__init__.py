"""{{ cookiecutter.package_name }}: a Lambda function that processes each event once.

``handler.py`` and ``service.py`` are yours; ``dedup/`` is the template's machinery.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    """``from . import effects`` as service.py wrote it before the machinery moved to dedup/:
    it still works, with a warning, and will stop working in a later release of the template."""
    if name == "effects":
        warnings.warn(
            f"`from {__name__} import effects` is deprecated and will stop working in a later"
            f" release of the template: import it from {__name__}.dedup instead (in service.py:"
            " `from .dedup import effects`)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(f"{__name__}.dedup.effects")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
