"""The exception hierarchy of the ``study`` package (one root, like Optuna's)."""

from __future__ import annotations


class HprobustError(Exception):
    """Root of every error hprobust raises on purpose."""


class ConfigError(HprobustError, ValueError):
    """A configuration value breaks a rule. The message names the key, the rule and the value."""


class DatasetNotFoundError(HprobustError, FileNotFoundError):
    """A dataset is missing and cannot be downloaded. The message says where and how to fix it."""


class StudyNotFoundError(HprobustError, LookupError):
    """No study with this id is recorded."""


class StudyStateError(HprobustError):
    """The study is in a state that does not allow the requested operation."""
