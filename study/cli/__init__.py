"""The study commands of the ``hprobust`` command line: ``run``, ``trials``, ``summary``,
``demo``. They need the study layer only (a local Ray, the MLflow store, a model).

This package knows nothing of the service: the root command (:mod:`hprobust.cli`) composes
these commands with the service's (:mod:`service.cli`). Each command lives in its own module
and registers itself on :data:`app`; heavy imports stay inside the command functions so
``--help`` is instant.
"""

from __future__ import annotations

from study.cli import commands  # noqa: F401  (each command registers itself on app)
from study.cli.group import app

__all__ = ["app"]
