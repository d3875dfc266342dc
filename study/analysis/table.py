"""The trial table the robustness summary works on: validated, filtered, imputed, canonical rows.

A trial row is a mapping with ``arm, lr, init, init_scale, seed, val_acc, val_loss, diverged``
and optionally ``status`` (:mod:`study.analysis.rows`: the fields, and how a value, text
included, becomes a row value; the store reads MLflow's runs with the same rules). This module
checks what a finished row must have and builds the table from it.

Choices made here (the summary's contract, docs/summary.md, leaves them open):

- Only rows whose ``status`` is ``finished`` (or that carry no status) enter the metrics; the
  others (``early_stopped``, ``failed``, ``running``, ``pending``) are left out and counted. An
  unknown status is a :class:`~study.errors.ConfigError`.
- ``init_scale`` missing or ``None`` (or NaN, as pandas writes a missing cell) means 1.0.
- Diverged rows are imputed with chance accuracy ``1/C`` and loss ``ln C``. A finished row that
  is *not* flagged diverged but whose ``val_acc`` or ``val_loss`` is ``None``, NaN or infinite
  is treated as diverged too (a non-finite loss is the trainer's own divergence rule); such rows
  are counted in ``settings.nonfinite_as_diverged``. A row that lacks the ``val_acc`` or
  ``val_loss`` key altogether is an error, not a divergence.
- Arms are ordered by the ``arms`` argument (the spec's order); arms found in the rows (excluded
  rows included, so an arm whose trials are all still pending is listed too) but not in
  ``arms`` follow, sorted by name.
- ``lr`` and ``init_scale`` are rounded to 12 significant digits (MLflow gives params back as
  decimal strings); the rounded value is used everywhere.
- Rows are put in the canonical order (arm, lr, init name, init_scale, seed, then accuracy,
  loss, diverged) so that everything computed from them is the same, bit for bit, for any
  input order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.analysis.rows import (
    DEFAULT_INIT_SCALE,
    missing,
    to_bool,
    to_float,
    to_int,
    to_status,
)
from study.errors import ConfigError
from study.vocab import TRIAL_EXCLUDED, TrialStatus


@dataclass(frozen=True)
class TrialTable:
    """Finished trials as column arrays (one entry per row), with imputed ``acc`` and ``loss``."""

    arm: np.ndarray  # str objects
    lr: np.ndarray  # float64, > 0
    init: np.ndarray  # str objects
    init_scale: np.ndarray  # float64, > 0
    seed: np.ndarray  # int64
    acc: np.ndarray  # float64 in [0, 1], imputed
    loss: np.ndarray  # float64, imputed
    diverged: np.ndarray  # bool (flagged, or non-finite result)
    arms: list[str]  # every arm seen, in order (baseline first)
    num_classes: int
    excluded: dict[str, int] = field(default_factory=dict)
    nonfinite_as_diverged: int = 0
    n_rows: int = 0

    @property
    def chance_acc(self) -> float:
        return 1.0 / self.num_classes

    @property
    def chance_loss(self) -> float:
        return math.log(self.num_classes)

    @property
    def arm_index(self) -> np.ndarray:
        """Position of each row's arm in :attr:`arms` (int64)."""
        pos = {arm: i for i, arm in enumerate(self.arms)}
        return np.array([pos[a] for a in self.arm.tolist()], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.lr.size)

    def select(self, mask: np.ndarray) -> TrialTable:
        """The rows where ``mask`` is true (same arms, counts and classes)."""
        return TrialTable(
            arm=self.arm[mask],
            lr=self.lr[mask],
            init=self.init[mask],
            init_scale=self.init_scale[mask],
            seed=self.seed[mask],
            acc=self.acc[mask],
            loss=self.loss[mask],
            diverged=self.diverged[mask],
            arms=self.arms,
            num_classes=self.num_classes,
            excluded=self.excluded,
            nonfinite_as_diverged=self.nonfinite_as_diverged,
            n_rows=self.n_rows,
        )


def check_num_classes(num_classes: Any) -> int:
    """``num_classes`` as an int >= 2, or a ConfigError naming it."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes)


def round12(x: float) -> float:
    """``x`` rounded to 12 significant digits (the key of an lr or init_scale)."""
    return float(f"{x:.11e}")


def _rows(trials: Any) -> list[Mapping[str, Any]]:
    if hasattr(trials, "to_dict") and hasattr(trials, "columns"):  # a pandas DataFrame
        return trials.to_dict("records")
    if isinstance(trials, (Mapping, str, bytes)):
        raise ConfigError(
            "trials must be an iterable of row mappings or a DataFrame, "
            f"got {type(trials).__name__}"
        )
    rows = list(trials)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigError(f"trials[{i}] must be a mapping, got {type(row).__name__}")
    return rows


def _float(row: Mapping[str, Any], i: int, key: str) -> float:
    number = to_float(row[key])
    if number is None:
        raise ConfigError(f"trials[{i}].{key} must be a number, got {row[key]!r}")
    return number


def _positive(row: Mapping[str, Any], i: int, key: str) -> float:
    x = _float(row, i, key)
    if not (math.isfinite(x) and x > 0):
        raise ConfigError(f"trials[{i}].{key} must be a finite number > 0, got {row[key]!r}")
    return x


def _bool(row: Mapping[str, Any], i: int, key: str) -> bool:
    flag = to_bool(row.get(key))
    if flag is None:
        raise ConfigError(f"trials[{i}].{key} must be a boolean (true/false), got {row[key]!r}")
    return flag


def _seed(row: Mapping[str, Any], i: int) -> int:
    if "seed" not in row or missing(row["seed"]):
        raise ConfigError(f"trials[{i}] lacks the required field 'seed'")
    seed = to_int(row["seed"])
    if seed is None:
        raise ConfigError(f"trials[{i}].seed must be an integer, got {row['seed']!r}")
    return seed


def _text(row: Mapping[str, Any], i: int, key: str) -> str:
    if key not in row or missing(row[key]) or str(row[key]) == "":
        raise ConfigError(f"trials[{i}] lacks the required field {key!r} (a non-empty name)")
    return str(row[key])


def build_table(
    trials: Iterable[Mapping[str, Any]] | Any,
    *,
    num_classes: int,
    arms: Sequence[str] | None = None,
) -> TrialTable:
    """Validate ``trials``, keep the finished rows and impute the diverged ones.

    Raises:
        ConfigError: a row lacks a field or holds a bad value; the message names the row index,
            the field, the rule and the value.
    """
    num_classes = check_num_classes(num_classes)
    chance_acc, chance_loss = 1.0 / num_classes, math.log(num_classes)
    if arms is not None:
        if isinstance(arms, str) or not all(isinstance(a, str) and a for a in arms):
            raise ConfigError(f"arms must be a list of non-empty arm names, got {arms!r}")
        if len(set(arms)) != len(arms):
            raise ConfigError(f"arms must not repeat a name, got {list(arms)!r}")
    listed = list(arms or ())
    seen: set[str] = set()
    excluded = {str(status): 0 for status in TRIAL_EXCLUDED}
    cols: dict[str, list[Any]] = {
        k: [] for k in ("arm", "lr", "init", "init_scale", "seed", "acc", "loss", "diverged")
    }
    nonfinite = 0
    rows = _rows(trials)
    for i, row in enumerate(rows):
        status = to_status(row.get("status"))
        if status is None:
            raise ConfigError(
                f"trials[{i}].status must be one of {', '.join(TrialStatus)}, "
                f"got {str(row['status'])!r}"
            )
        if status != TrialStatus.FINISHED:  # counted; its other fields may be incomplete
            excluded[status] += 1
            if not missing(row.get("arm")) and str(row["arm"]):
                seen.add(str(row["arm"]))
            continue
        arm = _text(row, i, "arm")
        seen.add(arm)
        for key in ("lr", "init", "val_acc", "val_loss"):
            if key not in row:
                raise ConfigError(f"trials[{i}] lacks the required field {key!r}")
        lr = round12(_positive(row, i, "lr"))
        init = _text(row, i, "init")
        scale = row.get("init_scale")
        scale = DEFAULT_INIT_SCALE if missing(scale) else _positive(row, i, "init_scale")
        scale = round12(scale)
        seed = _seed(row, i)
        diverged = _bool(row, i, "diverged")
        acc = loss = math.nan
        if not diverged:
            acc = math.nan if missing(row["val_acc"]) else _float(row, i, "val_acc")
            loss = math.nan if missing(row["val_loss"]) else _float(row, i, "val_loss")
            if math.isfinite(acc) and not 0.0 <= acc <= 1.0:
                raise ConfigError(
                    f"trials[{i}].val_acc must be a fraction in [0, 1], got {row['val_acc']!r}"
                )
            if not (math.isfinite(acc) and math.isfinite(loss)):
                diverged = True
                nonfinite += 1
        if diverged:
            acc, loss = chance_acc, chance_loss
        for key, value in zip(cols, (arm, lr, init, scale, seed, acc, loss, diverged), strict=True):
            cols[key].append(value)
    order = listed + sorted(seen - set(listed))
    arm = np.array(cols["arm"], dtype=object)
    init = np.array(cols["init"], dtype=object)
    lr = np.array(cols["lr"], dtype=np.float64)
    scale = np.array(cols["init_scale"], dtype=np.float64)
    seed = np.array(cols["seed"], dtype=np.int64)
    acc = np.array(cols["acc"], dtype=np.float64)
    loss = np.array(cols["loss"], dtype=np.float64)
    diverged = np.array(cols["diverged"], dtype=bool)
    pos = {name: k for k, name in enumerate(order)}
    arm_rank = np.array([pos[a] for a in arm.tolist()], dtype=np.int64)
    init_names = sorted(set(init.tolist()))
    init_pos = {name: k for k, name in enumerate(init_names)}
    init_rank = np.array([init_pos[x] for x in init.tolist()], dtype=np.int64)
    # canonical order: np.lexsort sorts by the last key first
    perm = np.lexsort((diverged, loss, acc, seed, scale, init_rank, lr, arm_rank))
    return TrialTable(
        arm=arm[perm],
        lr=lr[perm],
        init=init[perm],
        init_scale=scale[perm],
        seed=seed[perm],
        acc=acc[perm],
        loss=loss[perm],
        diverged=diverged[perm],
        arms=order,
        num_classes=num_classes,
        excluded=excluded,
        nonfinite_as_diverged=nonfinite,
        n_rows=len(rows),
    )
