"""The figures of the robustness summary (PNG; docs/summary.md, "Plots"): lr curves per init with
the arms overlaid (each curve's best lr marked, an end the lr range cuts hatched), accuracy
heatmaps with difference panels, the robustness profile and the expected-maximum curves with
their bands.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas only — no ``pyplot`` and no
global state — so several threads (the HTTP service) may draw at once. Each arm keeps one
colour in every figure (:func:`arm_colors`, by position in the spec's arm order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from study.analysis.cells import Cells, build_cells
from study.analysis.schema import Summary
from study.analysis.table import TrialTable, build_table
from study.vocab import PlotName

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
GOOD_COLOR = "#2b8a3e"
CHANCE_COLOR = "0.45"
#: More distinct lrs than this: the heatmap bins lr into BIN_DECADES-wide columns.
MAX_LR_COLUMNS = 40
BIN_DECADES = 0.25


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    """One colour per arm, by position in the spec's arm order (baseline first)."""
    return {arm: _ARM_PALETTE[i % len(_ARM_PALETTE)] for i, arm in enumerate(arms)}


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


def _lr_label(lr: float) -> str:
    return f"{lr:.2g}"


class _Data:
    """The canonical table, its cells and the summary's reference, for drawing."""

    def __init__(self, table: TrialTable, summary: Summary) -> None:
        self.table = table
        self.cells: Cells = build_cells(table)
        self.summary = summary
        self.arms = list(summary.arms) or list(table.arms)
        self.colors = arm_colors(self.arms)
        self.inits = sorted(set(self.cells.init.tolist()))
        ref = summary.reference
        self.chance = ref.chance_acc
        self.best = ref.best_acc
        self.good = ref.good_threshold
        self.lr_range = ref.lr_range

    def arm_index(self, arm: str) -> int:
        return self.table.arms.index(arm)

    def arm_cells(self, arm: str) -> np.ndarray:
        return np.flatnonzero(self.cells.arm == self.arm_index(arm))


# ---- lr_curves.png ---------------------------------------------------------------------------


def _seed_band(data: _Data, arm: int, init: str, lrs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per lr: the lowest and highest seed (each seed's accuracy averaged over init_scales)."""
    t = data.table
    mask = (t.arm_index == arm) & (t.init == init)
    low = np.full(lrs.size, np.nan)
    high = np.full(lrs.size, np.nan)
    for j, lr in enumerate(lrs.tolist()):
        at = mask & (t.lr == lr)
        seeds = np.unique(t.seed[at])
        per_seed = [t.acc[at & (t.seed == s)].mean() for s in seeds.tolist()]
        if per_seed:
            low[j], high[j] = min(per_seed), max(per_seed)
    return low, high


def _mark_peak_and_cuts(ax, data: _Data, arm: str, init: str, lrs, y, color: str) -> set[str]:
    """A star at the curve's best lr, and a triangle pointing out of the range at each end the
    range cuts (the curve still >= h at the lowest or highest lr tried). Returns those ends."""
    group = data.summary.arms[arm].by_init.get(init) if arm in data.summary.arms else None
    if group is None:
        return set()
    marks = {"markeredgecolor": "black", "markeredgewidth": 0.6, "linestyle": "none"}
    if group.best_lr is not None:
        at = int(np.argmin(np.abs(np.log10(lrs) - np.log10(group.best_lr))))
        ax.plot([lrs[at]], [y[at]], marker="*", markersize=13, color=color, zorder=4, **marks)
    for end in group.range_cut:
        at = 0 if end == "low" else -1
        marker = "<" if end == "low" else ">"
        ax.plot([lrs[at]], [y[at]], marker=marker, markersize=10, color=color, zorder=5, **marks)
    return set(group.range_cut)


def _shade_cut(ax, lrs: np.ndarray, end: str) -> None:
    """Hatch the panel beyond the last lr tried at ``end`` (the good region goes on there)."""
    edge = float(lrs.min() if end == "low" else lrs.max())
    lo, hi = (edge / 1e3, edge) if end == "low" else (edge, edge * 1e3)  # past the limits
    ax.axvspan(lo, hi, facecolor="0.55", alpha=0.22, hatch="//", linewidth=0, zorder=0)


def plot_lr_curves(data: _Data, path: Path) -> Path:
    """One panel per init, every arm overlaid: the cell means at the real lrs (averaged over
    init_scales), a band from the lowest to the highest seed, each curve's best lr as a star,
    an end of the lr range where a curve still learns (the range cuts it) hatched, with a
    triangle in the arm's colour pointing out of the range, diverged trials marked below the
    chance line, ``g`` and chance as horizontal lines."""
    inits = data.inits or ["no trials"]
    ncols = min(len(inits), 2)
    nrows = math.ceil(len(inits) / ncols)
    fig = _figure(5.6 * ncols + 0.4, 3.9 * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    t, cells = data.table, data.cells
    # one row of diverged marks per arm below the chance line, all inside the axis
    step = min(0.035, (data.chance + 0.015) / (len(data.arms) + 1))
    cut = False
    for ax in axes[len(inits) :]:
        ax.set_visible(False)
    for ax, init in zip(axes, inits, strict=False):
        ax.set_title(f"init: {init}", loc="left", fontweight="bold")
        cut_ends: dict[str, np.ndarray] = {}
        if len(t) == 0:
            _no_data(ax)
            continue
        for k, arm in enumerate(data.arms):
            a = data.arm_index(arm)
            index = np.flatnonzero((cells.arm == a) & (cells.init == init))
            if index.size == 0:
                continue
            lrs, inverse = np.unique(cells.lr[index], return_inverse=True)
            y = np.bincount(inverse, weights=cells.acc[index]) / np.bincount(inverse)
            color = data.colors[arm]
            low, high = _seed_band(data, a, init, lrs)
            ax.fill_between(lrs, low, high, color=color, alpha=0.18, linewidth=0)
            ax.plot(lrs, y, color=color, linewidth=2, marker="o", markersize=3.5, label=arm)
            for end in _mark_peak_and_cuts(ax, data, arm, init, lrs, y, color):
                cut_ends.setdefault(end, lrs)
            div = (t.arm_index == a) & (t.init == init) & t.diverged
            if div.any():
                dl = np.unique(t.lr[div])
                ax.scatter(
                    dl,
                    np.full(dl.size, data.chance - step * (k + 1)),
                    marker="x",
                    s=28,
                    color=color,
                    linewidths=1.4,
                    zorder=3,
                )
        for end, lrs in cut_ends.items():
            _shade_cut(ax, lrs, end)
        cut |= bool(cut_ends)
        if data.good is not None:
            ax.axhline(data.good, color=GOOD_COLOR, linestyle="--", linewidth=1.2)
        ax.axhline(data.chance, color=CHANCE_COLOR, linestyle=":", linewidth=1.2)
        ax.set_xscale("log")
        ax.grid(True, which="major", alpha=0.3)
    lo_y = max(-0.02, data.chance - step * (len(data.arms) + 1))
    axes[0].set_ylim(lo_y, 1.02)
    if data.lr_range is not None and data.lr_range[1] > data.lr_range[0]:
        axes[0].set_xlim(data.lr_range[0] / 1.4, data.lr_range[1] * 1.4)
    for c in range(ncols):  # the lowest visible panel of each column carries the lr axis
        visible = [r for r in range(nrows) if r * ncols + c < len(inits)]
        if visible:
            ax = axes[visible[-1] * ncols + c]
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("learning rate (log scale)")
    for r in range(nrows):
        axes[r * ncols].set_ylabel("final val accuracy")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=data.colors[a], linewidth=2, label=a) for a in data.arms]
    handles += [
        Patch(color="0.6", alpha=0.35, label="lowest to highest seed"),
        Line2D(
            [],
            [],
            color="0.5",
            marker="*",
            markersize=12,
            markeredgecolor="black",
            linestyle="none",
            label="best lr",
        ),
        Line2D([], [], color="0.2", marker="x", linestyle="none", label="diverged (below chance)"),
    ]
    if cut:
        handles.append(
            Patch(
                facecolor="0.55",
                alpha=0.35,
                hatch="//",
                label="range cut: the ▶ arm still learns (≥ h) at the end",
            )
        )
    if data.good is not None:
        handles.append(
            Line2D(
                [],
                [],
                color=GOOD_COLOR,
                linestyle="--",
                label=f"g = A* − τ = {data.good:.3f}",
            )
        )
    handles.append(
        Line2D([], [], color=CHANCE_COLOR, linestyle=":", label=f"chance {data.chance:.3g}")
    )
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncols=min(len(handles), 4 if ncols == 1 else 5),
        fontsize=10,
        frameon=False,
    )
    return _save(fig, path)


# ---- heatmap.png -----------------------------------------------------------------------------


def _columns(data: _Data) -> tuple[np.ndarray, list[str], str]:
    """The heatmap's lr columns: each cell's column index, the labels and the axis title. One
    column per distinct lr when there are few (a grid), else 0.25-decade bins."""
    lrs = np.unique(data.cells.lr)
    if lrs.size <= MAX_LR_COLUMNS:
        col = np.searchsorted(lrs, data.cells.lr)
        return col, [_lr_label(v) for v in lrs.tolist()], "learning rate"
    k = np.floor(np.log10(data.cells.lr) / BIN_DECADES + 1e-9).astype(np.int64)
    k0, k1 = int(k.min()), int(k.max())
    labels = [_lr_label(10 ** (b * BIN_DECADES)) for b in range(k0, k1 + 1)]
    return k - k0, labels, f"learning rate (bins of {BIN_DECADES:g} decades, from)"


def _rows(data: _Data) -> tuple[np.ndarray, list[str]]:
    """The heatmap's rows: init (x init_scale when several scales were tried)."""
    cells = data.cells
    scales = np.unique(cells.init_scale)
    if scales.size <= 1:
        names = data.inits
        pos = {n: i for i, n in enumerate(names)}
        return np.array([pos[x] for x in cells.init.tolist()], dtype=np.int64), names
    keys = sorted(
        {(i, s) for i, s in zip(cells.init.tolist(), cells.init_scale.tolist(), strict=False)}
    )
    pos = {key: i for i, key in enumerate(keys)}
    row = [
        pos[(i, s)] for i, s in zip(cells.init.tolist(), cells.init_scale.tolist(), strict=False)
    ]
    return np.array(row, dtype=np.int64), [f"{i} ×{s:g}" for i, s in keys]


def _grid(data: _Data, arm: str, row: np.ndarray, col: np.ndarray, shape) -> np.ndarray:
    grid_sum = np.zeros(shape)
    grid_n = np.zeros(shape)
    index = data.arm_cells(arm)
    np.add.at(grid_sum, (row[index], col[index]), data.cells.acc[index])
    np.add.at(grid_n, (row[index], col[index]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(grid_n > 0, grid_sum / grid_n, np.nan)


def _annotate(ax, grid: np.ndarray, norm, cmap, fmt: str, fontsize: float) -> None:
    for r, c in zip(*np.nonzero(np.isfinite(grid)), strict=True):
        v = grid[r, c]
        rgba = cmap(norm(v))
        light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.55
        ax.text(
            c,
            r,
            format(v, fmt),
            ha="center",
            va="center",
            fontsize=fontsize,
            color="black" if light else "white",
        )


def plot_heatmap(data: _Data, path: Path) -> Path:
    """Mean accuracy ``ā`` per arm (rows: init, columns: lr) and, for each compared arm, a
    difference panel ``B − A`` on a diverging scale centred at 0."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize, TwoSlopeNorm

    arms = data.arms or ["no trials"]
    comparisons = [(c.arm, c.baseline) for c in data.summary.comparisons]
    panels = [("arm", a, None) for a in arms] + [("diff", b, a) for b, a in comparisons]
    if len(data.table) == 0:
        fig = _figure(8, 3)
        _no_data(fig.subplots())
        return _save(fig, path)
    col, col_labels, col_title = _columns(data)
    row, row_labels = _rows(data)
    shape = (len(row_labels), len(col_labels))
    annotate = shape[1] <= 30
    fontsize = 7 if shape[1] > 14 else 8
    width = min(max(6.6, 2.6 + 0.62 * shape[1]), 18.0)
    height_each = 0.9 + 0.42 * shape[0]
    fig = _figure(width + 1.4, height_each * len(panels) + 1.0)
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    grids = {a: _grid(data, a, row, col, shape) for a in arms}
    lo = data.chance
    hi = data.best if data.best is not None else 1.0
    acc_norm = Normalize(vmin=min(lo, hi - 1e-6), vmax=max(hi, lo + 1e-6))
    acc_cmap = colormaps["viridis"]
    diffs = {}
    for kind, b, a in panels:
        if kind == "diff":
            diffs[(b, a)] = grids[b] - grids[a]
    span = max([np.nanmax(np.abs(d)) for d in diffs.values() if np.isfinite(d).any()] + [0.05])
    diff_norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    diff_cmap = colormaps["RdBu"]
    acc_image = diff_image = None
    for ax, (kind, b, a) in zip(axes, panels, strict=True):
        if kind == "arm":
            grid = grids[b]
            ax.set_title(
                f"{b}: mean accuracy ā", loc="left", color=data.colors[b], fontweight="bold"
            )
            image = ax.imshow(
                np.ma.masked_invalid(grid), cmap=acc_cmap, norm=acc_norm, aspect="auto"
            )
            acc_image = image
            fmt, cmap, norm = ".2f", acc_cmap, acc_norm
        else:
            grid = diffs[(b, a)]
            ax.set_title(
                f"{b} − {a} (blue: {b} better, red: {a} better)",
                loc="left",
                fontweight="bold",
            )
            image = ax.imshow(
                np.ma.masked_invalid(grid), cmap=diff_cmap, norm=diff_norm, aspect="auto"
            )
            diff_image = image
            fmt, cmap, norm = "+.2f", diff_cmap, diff_norm
        ax.set_facecolor("0.88")  # no cell there
        ax.set_yticks(range(shape[0]), row_labels)
        ax.set_xticks(range(shape[1]), col_labels, rotation=45, ha="right")
        ax.xaxis.set_tick_params(labelbottom=ax is axes[-1])
        if annotate and np.isfinite(grid).any():
            _annotate(ax, grid, norm, cmap, fmt, fontsize)
        if not np.isfinite(grid).any():
            ax.text(0.5, 0.5, "no cells", ha="center", va="center", transform=ax.transAxes)
    axes[-1].set_xlabel(col_title)
    arm_axes = [ax for ax, p in zip(axes, panels, strict=True) if p[0] == "arm"]
    diff_axes = [ax for ax, p in zip(axes, panels, strict=True) if p[0] == "diff"]
    if acc_image is not None:
        fig.colorbar(acc_image, ax=arm_axes, label="ā (chance to A*)", shrink=0.9)
    if diff_image is not None:
        fig.colorbar(diff_image, ax=diff_axes, label="B − A", shrink=0.9)
    fig.suptitle("Mean accuracy per lr × init (grey: not tried)")
    return _save(fig, path)


# ---- profile.png -----------------------------------------------------------------------------


def plot_profile(data: _Data, path: Path) -> Path:
    """For each arm the fraction of its cells with ``ā >= a`` as ``a`` runs from chance to A*
    (a robustness profile: the higher the curve, the more of the arm's design is good)."""
    fig = _figure(6.6, 4.4)
    ax = fig.subplots()
    if data.best is None:
        _no_data(ax)
        return _save(fig, path)
    lo, hi = data.chance, data.best
    a = np.linspace(lo, hi, 400) if hi > lo else np.array([lo])
    for arm in data.arms:
        index = data.arm_cells(arm)
        if index.size == 0:
            continue
        values = data.cells.acc[index]
        frac = (values[None, :] >= a[:, None] - 1e-12).mean(axis=1)
        ax.step(
            a,
            frac,
            where="post",
            color=data.colors[arm],
            linewidth=2,
            label=f"{arm} ({index.size} cells)",
        )
    if data.good is not None:
        ax.axvline(
            data.good,
            color=GOOD_COLOR,
            linestyle="--",
            linewidth=1.2,
            label=f"g = {data.good:.3f} (good fraction)",
        )
    ax.set_xlim(lo, hi + (hi - lo) * 0.02 + 1e-6)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("accuracy threshold a (from chance to the study's best A*)")
    ax.set_ylabel("fraction of cells with ā ≥ a")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title("Robustness profile (higher is more robust)")
    return _save(fig, path)


# ---- expected_max.png ------------------------------------------------------------------------


def plot_expected_max(data: _Data, path: Path) -> Path:
    """Expected best accuracy of n cells drawn at random (Dodge et al. 2019), every arm on one
    axis, with the 95% bootstrap band."""
    fig = _figure(6.6, 4.4)
    ax = fig.subplots()
    longest = 0
    for arm in data.arms:
        s = data.summary.arms[arm]
        if not s.expected_max:
            continue
        n = np.arange(1, len(s.expected_max) + 1)
        color = data.colors[arm]
        low, high = s.expected_max_band
        ax.fill_between(n, low, high, color=color, alpha=0.14, linewidth=0)
        for edge in (low, high):
            ax.plot(n, edge, color=color, linewidth=0.8, linestyle="--", alpha=0.7)
        ax.plot(n, s.expected_max, color=color, linewidth=2, label=f"{arm} (N={n.size})")
        longest = max(longest, n.size)
    if longest == 0:
        _no_data(ax)
        return _save(fig, path)
    ax.axhline(data.chance, color=CHANCE_COLOR, linestyle=":", linewidth=1.2, label="chance")
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    if longest <= 30:  # few cells: a plain integer axis reads best
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("number of cells n (random lr × init draws)")
    ax.set_ylabel("expected best val accuracy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=9, title="dashed: 95% bootstrap band", title_fontsize=8)
    ax.set_title("Expected maximum accuracy vs budget (Dodge et al. 2019)")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


#: The drawing function of each figure: ``draw(data, path) -> path``.
FIGURES: dict[PlotName, Callable[[_Data, Path], Path]] = {
    PlotName.LR_CURVES: plot_lr_curves,
    PlotName.HEATMAP: plot_heatmap,
    PlotName.PROFILE: plot_profile,
    PlotName.EXPECTED_MAX: plot_expected_max,
}


def plots(
    trials: Iterable[Mapping[str, Any]] | Any,
    out_dir: str | Path,
    *,
    num_classes: int,
    summary: Summary | Mapping[str, Any] | None = None,
    arms: Sequence[str] | None = None,
    tolerance: float | None = None,
    lr_range: Sequence[float] | None = None,
) -> list[Path]:
    """Draw the summary's figures into ``out_dir`` (created if missing).

    Writes ``lr_curves.png``, ``heatmap.png``, ``profile.png`` and ``expected_max.png``
    (:class:`~study.vocab.PlotName`, drawn by :data:`FIGURES`) and returns their paths in that
    order. With no finished trial yet, each figure says so.

    Args:
        trials: the trial rows (as for :func:`study.analysis.summarize`).
        out_dir: folder for the PNG files.
        num_classes: number of classes (chance level, imputation of diverged rows).
        summary: ``summarize``'s result for these rows (a Summary or its JSON dict), if
            already computed; else it is computed with ``arms``, ``tolerance``, ``lr_range``.
        arms, tolerance, lr_range: as for ``summarize`` (ignored when ``summary`` is given).
    """
    if summary is None:
        from study.analysis.summary import summarize

        extra: dict[str, Any] = {}
        if tolerance is not None:
            extra["tolerance"] = tolerance
        summary = summarize(trials, num_classes=num_classes, arms=arms, lr_range=lr_range, **extra)
    elif not isinstance(summary, Summary):
        summary = Summary.model_validate(summary)
    table = build_table(trials, num_classes=num_classes, arms=list(summary.arms) or arms)
    data = _Data(table, summary)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [FIGURES[name](data, out / f"{name}.png") for name in PlotName]
