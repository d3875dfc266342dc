"""The service's commands of the ``hprobust`` command line: ``serve`` (the embedded stack and
the API), ``submit`` (a client of a running API) and ``ui`` (the MLflow UI on the store).

They live beside the service they start or call; the root command (:mod:`hprobust.cli`)
composes them with the study commands (:mod:`study.cli`). Heavy imports stay inside the
command functions so ``--help`` is instant.
"""

from __future__ import annotations

from service.cli import serve, ui  # noqa: F401  (each command registers itself on app)
from service.cli.group import app

__all__ = ["app"]
