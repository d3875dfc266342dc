"""Cells and points of a canonical trial table (docs/summary.md, "Words").

A *point* is (lr, init, init_scale); a *cell* is (arm, point). A cell's value ``ā`` is the mean
imputed accuracy of its rows (normally one per seed) and ``ℓ̄`` their mean imputed loss. The
table's rows are in canonical order, so each cell's rows are one consecutive run and the cells
come out in canonical order too (arm, lr, init name, init_scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from study.analysis.table import TrialTable


@dataclass(frozen=True)
class Cells:
    """The cells of a table as columns, plus the cell of every row."""

    arm: np.ndarray  # int64: index into table.arms
    lr: np.ndarray  # float64 (rounded)
    init: np.ndarray  # str objects
    init_scale: np.ndarray  # float64 (rounded)
    point: np.ndarray  # int64: index of the cell's point (points in canonical order)
    acc: np.ndarray  # float64: ā
    loss: np.ndarray  # float64: ℓ̄ (not clipped)
    n_rows: np.ndarray  # int64
    row_cell: np.ndarray  # int64, one per table row: its cell
    n_points: int

    def __len__(self) -> int:
        return int(self.acc.size)


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Indices where any key changes along a sorted run of rows (the first row included)."""
    n = keys[0].size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def build_cells(table: TrialTable) -> Cells:
    """Group the canonical rows of ``table`` into cells (means in row order)."""
    arm = table.arm_index
    starts = _starts(arm, table.lr, table.init, table.init_scale)
    n = len(table)
    row_cell = np.zeros(n, dtype=np.int64)
    if n:
        row_cell[starts[1:]] = 1
        row_cell = np.cumsum(row_cell)
    counts = np.diff(np.append(starts, n)).astype(np.int64)
    acc = _run_means(table.acc, starts, counts)
    loss = _run_means(table.loss, starts, counts)
    lr, init, scale = table.lr[starts], table.init[starts], table.init_scale[starts]
    # points: the distinct (lr, init, init_scale), in canonical order
    init_names = sorted(set(init.tolist()))
    init_pos = {name: k for k, name in enumerate(init_names)}
    init_rank = np.array([init_pos[x] for x in init.tolist()], dtype=np.int64)
    if lr.size:
        keys = np.stack([lr, init_rank.astype(np.float64), scale], axis=1)
        _, point = np.unique(keys, axis=0, return_inverse=True)
        point = point.reshape(-1).astype(np.int64)
        n_points = int(point.max()) + 1
    else:
        point, n_points = np.zeros(0, dtype=np.int64), 0
    return Cells(
        arm=arm[starts],
        lr=lr,
        init=init,
        init_scale=scale,
        point=point,
        acc=acc,
        loss=loss,
        n_rows=counts,
        row_cell=row_cell,
        n_points=n_points,
    )


def _run_means(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of each consecutive run, summed left to right in row order."""
    if values.size == 0:
        return np.zeros(0, dtype=np.float64)
    sums = np.add.reduceat(values, starts)
    return sums / counts
