"""Imports every command module so that each registers its commands on ``app``."""

from __future__ import annotations

from study.cli import demo, run, summary  # noqa: F401  (registration side effect)
