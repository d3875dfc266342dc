"""The exception hierarchy of the ``study`` package (one root, like Optuna's)."""

from __future__ import annotations


class HprobustError(Exception):
    """Root of every error hprobust raises on purpose."""


class ConfigError(HprobustError, ValueError):
    """A configuration value breaks a rule. The message names the key, the rule and the value."""


class HyperparameterError(ConfigError):
    """An optimizer hyperparameter value breaks a rule (``name``, ``rule``, ``value``)."""

    def __init__(self, owner: str, name: str, rule: str, value: object) -> None:
        self.owner, self.name, self.rule, self.value = owner, name, rule, value
        super().__init__(f"{owner}: {name} {rule}, got {value!r}")


class DatasetNotFoundError(HprobustError, FileNotFoundError):
    """A dataset is missing and cannot be downloaded. The message says where and how to fix it."""


class StudyNotFoundError(HprobustError, LookupError):
    """No study with this id is recorded."""


class StudyStateError(HprobustError):
    """The study is in a state that does not allow the requested operation."""


class StudyFailedError(HprobustError):
    """A study ran to its end but cannot be called finished: every trial failed, or it waited
    longer than allowed for the resources of one trial. The message says which and why."""


class SpecError(ConfigError):
    """A study spec breaks one or more rules.

    ``problems`` lists every broken rule as ``{"field", "rule", "value"}``; the message joins
    them as ``"<field> <rule>, got <value>"`` (e.g. ``search.lr.low must be > 0, got -1``).
    """

    def __init__(self, problems: list[dict], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        lines = [f"{p['field']} {p['rule']}, got {p['value']!r}" for p in self.problems]
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(lines))


class StoreUnavailableError(HprobustError, ConnectionError):
    """The study store (MLflow) cannot be written now: unreachable or busy. Nothing was
    recorded; the same request may be sent again."""


class StoreFullError(HprobustError, OSError):
    """The study store (MLflow's database or artifact store) has no space left. Nothing was
    recorded."""


class IdempotencyKeyReusedError(HprobustError):
    """An ``Idempotency-Key`` already created a study with another spec."""

    def __init__(self, key: str, study_id: str) -> None:
        self.key, self.study_id = key, study_id
        super().__init__(
            f"Idempotency-Key was already used for study {study_id} with a different spec "
            "(send a new key for a new spec)"
        )
