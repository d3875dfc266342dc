"""The lr curve of an arm x init and the numbers read off it: window, area, loss area.

A curve is ``x`` (log10 of the distinct lrs tried, ascending) and ``y`` (at each lr, the mean
of the cell means there, i.e. averaged over init_scales). It joins its points with straight
lines; for areas it stays flat at its end values outside the tried range.

:func:`window_decades` also works on a batch of curves that share ``x``: ``y`` of shape
``(R, n)`` and a threshold per row.
"""

from __future__ import annotations

import numpy as np

#: Slack of every ">= threshold" test: ``value >= threshold - SLACK`` (it only protects the
#: cell that defines A* against rounding when the tolerance is 0).
SLACK = 1e-12


def at_least(value: np.ndarray | float, threshold: np.ndarray | float) -> np.ndarray:
    """``value >= threshold`` up to :data:`SLACK`."""
    return np.asarray(value) >= np.asarray(threshold) - SLACK


def window_decades(x: np.ndarray, y: np.ndarray, g: np.ndarray | float) -> np.ndarray:
    """The longest contiguous x-interval inside ``[x[0], x[-1]]`` where the straight-line curve
    is ``>= g``, for each row of ``y``.

    Args:
        x: ``(n,)`` ascending, distinct.
        y: ``(R, n)`` curve values.
        g: threshold, scalar or ``(R,)``.

    Returns:
        ``(R,)`` lengths in decades. A run is a maximal set of consecutive points ``>= g``,
        extended into its neighbouring segments up to the crossings (linear interpolation).
        One lr only, or no point ``>= g``: 0. A run of a single point with no neighbour above
        ``g`` has length 0.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    r, n = y.shape
    g = np.broadcast_to(np.asarray(g, dtype=np.float64), (r,))[:, None]
    if n < 2:
        return np.zeros(r, dtype=np.float64)
    good = at_least(y, g)  # (R, n)
    dx = np.diff(x)  # (n-1,)
    # the good part of a segment entered from below (bad -> good): from the crossing to the end
    with np.errstate(divide="ignore", invalid="ignore"):
        t_up = np.clip((g - y[:, :-1]) / (y[:, 1:] - y[:, :-1]), 0.0, 1.0)
        t_down = np.clip((y[:, :-1] - g) / (y[:, :-1] - y[:, 1:]), 0.0, 1.0)
    left = np.zeros((r, n))
    left[:, 1:] = np.where(good[:, 1:] & ~good[:, :-1], (1.0 - t_up) * dx, 0.0)
    right = np.zeros((r, n))
    right[:, :-1] = np.where(good[:, :-1] & ~good[:, 1:], t_down * dx, 0.0)
    prev_good = np.zeros((r, n), dtype=bool)
    prev_good[:, 1:] = good[:, :-1]
    next_good = np.zeros((r, n), dtype=bool)
    next_good[:, :-1] = good[:, 1:]
    starts = good & ~prev_good
    ends = good & ~next_good
    idx = np.arange(n)
    start_at = np.maximum.accumulate(np.where(starts, idx, -1), axis=1)  # latest run start
    rows = np.arange(r)[:, None]
    begin = x[np.maximum(start_at, 0)] - left[rows, np.maximum(start_at, 0)]
    length = np.where(ends, (x[None, :] + right) - begin, 0.0)
    return np.maximum(length.max(axis=1), 0.0)


def mean_over_range(x: np.ndarray, y: np.ndarray, x_lo: float, x_hi: float) -> float:
    """``(1 / (x_hi - x_lo)) ∫ y(x) dx`` over ``[x_lo, x_hi]``, the curve flat beyond its ends.

    Exact for the piecewise-linear curve (trapezoids between its knots and the range's ends).
    ``x_hi == x_lo``: the curve's value there (the limit).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x_hi == x_lo:
        return float(np.interp(x_lo, x, y))
    inner = x[(x > x_lo) & (x < x_hi)]
    knots = np.concatenate(([x_lo], inner, [x_hi]))
    values = np.interp(knots, x, y)
    area = float(np.sum(np.diff(knots) * (values[:-1] + values[1:]) / 2.0))
    return area / (x_hi - x_lo)
