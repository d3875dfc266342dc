"""The figures of the sensitivity summary (PNG): accuracy vs learning rate, lr x init heatmap,
expected-max curves.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas only — no ``pyplot`` and no
global state — so several threads (the HTTP service) may draw at once. Each arm keeps one
colour in every figure (:func:`arm_colors`); the inits have their own palette.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from study.analysis import PLOT_STEMS
from study.analysis.metrics import bin_index, expected_max, lr_bins
from study.analysis.table import TrialTable, build_table

DPI = 110
_ARM_PALETTE = (
    "#1f77b4",  # blue
    "#d62728",  # red
    "#2ca02c",  # green
    "#9467bd",  # purple
    "#ff7f0e",  # orange
    "#17becf",  # cyan
    "#8c564b",  # brown
    "#e377c2",  # pink
)
_INIT_CMAP = "Dark2"


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    """One colour per arm, by position in the spec's arm order (baseline first)."""
    return {arm: _ARM_PALETTE[i % len(_ARM_PALETTE)] for i, arm in enumerate(arms)}


def _init_colors(inits: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps[_INIT_CMAP]
    return {init: cmap(i % cmap.N) for i, init in enumerate(inits)}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _no_data(ax, text: str = "no finished trials yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _lr_label(k: int, bin_width: float) -> str:
    return f"{10 ** (k * bin_width):.2g}"


def plot_acc_vs_lr(table: TrialTable, path: Path, *, bin_width: float) -> Path:
    """One panel per arm: final val accuracy vs lr (log axis), raw points and the line of bin
    means (diverged rows imputed) per init; diverged trials drawn as x at chance."""
    arms = table.arms or ["no trials"]
    inits = sorted(set(table.init.tolist()))
    init_color = _init_colors(inits)
    colors = arm_colors(arms)
    fig = _figure(5.2 * len(arms) + 0.6, 4.4)
    axes = fig.subplots(1, len(arms), sharey=True, squeeze=False)[0]
    chance = table.chance_acc
    lr_all = table.lr
    for ax, arm in zip(axes, arms, strict=True):
        sub = table.select(table.arm == arm)
        n = len(sub)
        rate = float(np.mean(sub.diverged)) if n else 0.0
        title = f"{arm}  (n={n}, diverged {rate:.0%})" if n else f"{arm}  (n=0)"
        ax.set_title(title, color=colors[arm], fontweight="bold")
        ax.set_xlabel("learning rate")
        if n == 0:
            _no_data(ax)
            continue
        for init in inits:
            part = sub.select(sub.init == init)
            if len(part) == 0:
                continue
            color = init_color[init]
            ok = ~part.diverged
            ax.scatter(part.lr[ok], part.acc[ok], s=16, color=color, alpha=0.55, linewidths=0)
            ax.scatter(part.lr[~ok], part.acc[~ok], s=36, marker="x", color=color, linewidths=1.4)
            bins = lr_bins(part.lr, part.acc, part.loss, bin_width)
            # bin means at the bins' geometric centres, broken where a bin is empty
            xs: list[float] = []
            ys: list[float] = []
            for j, k in enumerate(bins.k.tolist()):
                if j and k != bins.k[j - 1] + 1:
                    xs.append(math.nan)
                    ys.append(math.nan)
                xs.append(10 ** ((k + 0.5) * bin_width))
                ys.append(float(bins.acc[j]))
            ax.plot(xs, ys, color=color, linewidth=2, marker="o", markersize=3, label=init)
        ax.axhline(chance, color="0.5", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        if lr_all.size:
            ax.set_xlim(lr_all.min() / 1.5, lr_all.max() * 1.5)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("final validation accuracy")
    axes[0].set_ylim(-0.02, 1.02)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=init_color[i], linewidth=2, label=i) for i in inits] + [
        Line2D([], [], color="0.2", marker="x", linestyle="none", label="diverged (at chance)"),
        Line2D([], [], color="0.5", linestyle="--", label=f"chance (1/{table.num_classes})"),
    ]
    if len(table):
        fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="init")
    fig.suptitle("Accuracy vs learning rate, per initialization (lines: mean per lr bin)")
    fig.savefig(path, dpi=DPI)
    return path


def plot_heatmap(table: TrialTable, path: Path, *, bin_width: float) -> Path:
    """One panel per arm: rows = inits, columns = log10(lr) bins (the same columns in every
    panel), colour and label = mean accuracy of the cell (diverged rows imputed)."""
    arms = table.arms or ["no trials"]
    inits = sorted(set(table.init.tolist()))
    colors = arm_colors(arms)
    ks = np.unique(bin_index(table.lr, bin_width)) if len(table) else np.array([], int)
    k_cols = np.arange(ks.min(), ks.max() + 1) if ks.size else ks
    n_cols, n_rows = max(len(k_cols), 1), max(len(inits), 1)
    width = min(3.0 + 0.55 * n_cols, 14.0)
    fig = _figure(width + 1.2, (1.2 + 0.45 * n_rows) * len(arms) + 0.8)
    axes = fig.subplots(len(arms), 1, squeeze=False)[:, 0]
    grids = {}
    for arm in arms:
        grid = np.full((len(inits), len(k_cols)), np.nan)
        sub = table.select(table.arm == arm)
        for r, init in enumerate(inits):
            part = sub.select(sub.init == init)
            if len(part):
                bins = lr_bins(part.lr, part.acc, part.loss, bin_width)
                grid[r, bins.k - k_cols[0]] = bins.acc
        grids[arm] = grid
    finite = [g[np.isfinite(g)] for g in grids.values()]
    values = np.concatenate(finite) if finite else np.array([])
    vmin = min(table.chance_acc, float(values.min())) if values.size else table.chance_acc
    vmax = max(float(values.max()) if values.size else 1.0, vmin + 1e-6)
    annotate = len(k_cols) <= 30
    image = None
    for ax, arm in zip(axes, arms, strict=True):
        ax.set_title(arm, color=colors[arm], fontweight="bold", loc="left")
        grid = grids[arm]
        if not np.isfinite(grid).any():
            _no_data(ax)
            continue
        image = ax.imshow(
            np.ma.masked_invalid(grid), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto"
        )
        ax.set_facecolor("0.88")  # empty cells
        ax.set_yticks(range(len(inits)), inits)
        ax.set_xticks(
            range(len(k_cols)),
            [_lr_label(int(k), bin_width) for k in k_cols],
            rotation=45,
            ha="right",
        )
        ax.set_xlabel(f"learning rate (bin start; bins of {bin_width:g} decades)")
        if annotate:
            for r, c in zip(*np.nonzero(np.isfinite(grid)), strict=True):
                v = grid[r, c]
                light = (v - vmin) / (vmax - vmin) > 0.6
                ax.text(
                    c,
                    r,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7 if len(k_cols) > 14 else 8,
                    color="black" if light else "white",
                )
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="mean final val accuracy", shrink=0.9)
    fig.suptitle("Mean accuracy per lr bin x initialization (grey: no trials)")
    fig.savefig(path, dpi=DPI)
    return path


def plot_expected_max(
    table: TrialTable, path: Path, *, curves: Mapping[str, Sequence[float]] | None = None
) -> Path:
    """Expected best val accuracy after n trials (Dodge et al. 2019), all arms on one axis."""
    arms = table.arms
    colors = arm_colors(arms)
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    drawn = False
    for arm in arms:
        curve = curves.get(arm) if curves is not None else None
        if curve is None:
            curve = expected_max(table.acc[table.arm == arm])
        if not curve:
            continue
        n = np.arange(1, len(curve) + 1)
        ax.plot(n, curve, color=colors[arm], linewidth=2, label=f"{arm} (N={len(curve)})")
        drawn = True
    if not drawn:
        _no_data(ax)
    else:
        ax.axhline(table.chance_acc, color="0.5", linestyle="--", linewidth=1, label="chance")
        from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

        longest = max(len(c) for c in (curves or {}).values()) if curves else 0
        longest = max(longest, *(int(np.count_nonzero(table.arm == a)) for a in arms))
        if longest <= 30:  # few trials: a plain integer axis reads best
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("number of trials n (random lr x init draws)")
        ax.set_ylabel("expected best val accuracy")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
    ax.set_title("Expected maximum accuracy vs budget (Dodge et al. 2019)")
    fig.savefig(path, dpi=DPI)
    return path


def plots(
    trials: Iterable[Mapping[str, Any]] | Any,
    out_dir: str | Path,
    *,
    num_classes: int,
    summary: Mapping[str, Any] | None = None,
    arms: Sequence[str] | None = None,
    bin_width: float | None = None,
) -> list[Path]:
    """Draw the summary's figures into ``out_dir`` (created if missing).

    Writes ``acc_vs_lr.png``, ``heatmap.png`` and ``expected_max.png`` (:data:`PLOT_STEMS`)
    and returns their paths in that order. With no finished trial yet, each figure says so.

    Args:
        trials: the trial rows (as for :func:`study.analysis.summarize`).
        out_dir: folder for the PNG files.
        num_classes: number of classes (chance level, imputation of diverged rows).
        summary: the output of ``summarize`` for these rows, if already computed: its arm
            order, bin width and expected-max curves are used instead of recomputing them.
        arms: the spec's arm order (default: the summary's, else first appearance).
        bin_width: lr bin width in decades (default: the summary's, else 0.25).
    """
    if arms is None and summary is not None:
        arms = list(summary.get("arms", {}))
    if bin_width is None:
        bin_width = float((summary or {}).get("settings", {}).get("bin_width", 0.25))
    table = build_table(trials, num_classes=num_classes, arms=arms)
    curves = None
    if summary is not None:
        curves = {a: v.get("expected_max") or [] for a, v in summary.get("arms", {}).items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = dict(zip(PLOT_STEMS, (out / f"{stem}.png" for stem in PLOT_STEMS), strict=True))
    return [
        plot_acc_vs_lr(table, paths["acc_vs_lr"], bin_width=bin_width),
        plot_heatmap(table, paths["heatmap"], bin_width=bin_width),
        plot_expected_max(table, paths["expected_max"], curves=curves),
    ]
