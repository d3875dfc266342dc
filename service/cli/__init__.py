"""The service's commands of the ``hprobust`` command line: ``serve`` (the embedded stack and
the API), ``submit`` (a client of a running API), the client commands ``studies``, ``status``,
``cancel``, ``resume``, ``report``, and ``ui`` (the MLflow UI on the store).

They live beside the service they start or call; the root command (:mod:`hprobust.cli`)
composes them with the study commands (:mod:`study.cli`), whose ``trials`` and ``summary``
ask the service through :func:`service.cli.remote.find` when one is configured. Heavy
imports stay inside the command functions so ``--help`` is instant.
"""

from __future__ import annotations

from service.cli import doctor, remote, serve, studies, ui  # noqa: F401  (they register)
from service.cli.group import app
from study.cli.source import install

install(remote.find)

__all__ = ["app"]
