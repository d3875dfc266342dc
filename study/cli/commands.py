"""Imports every command module so that each registers its commands on ``app``."""

from __future__ import annotations

import importlib

# One module per command family; a module that is not written yet is simply absent.
_COMMAND_MODULES = ("demo", "run", "summary", "serve")

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"study.cli.{_name}")
    except ModuleNotFoundError as exc:  # only tolerate the command module itself missing
        if exc.name != f"study.cli.{_name}":
            raise
