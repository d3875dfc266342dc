"""hprobust's domain: optimizers (INSGD), datasets, one trial, studies and their analysis.

``import study`` stays light: it imports neither torch, ray, mlflow nor fastapi. Heavy
names are resolved lazily on first attribute access (``from study import INSGD``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from study.errors import ConfigError, DatasetNotFoundError, HprobustError

__version__ = "0.1.0"

__all__ = [
    "INSGD",
    "ConfigError",
    "DatasetNotFoundError",
    "HprobustError",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from study.optim.insgd import INSGD

_LAZY = {"INSGD": "study.optim.insgd"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'study' has no attribute {name!r}")
