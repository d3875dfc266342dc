"""plots(): one readable PNG per stem, from real summarize() output; arm colours consistent;
the difference panel on a diverging scale."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
from PIL import Image

from study.analysis import PLOT_STEMS, plots, summarize
from study.analysis.figures import arm_colors

C = 10


def synthetic(n_lrs: int = 9, seeds: int = 2) -> list[dict]:
    """Two arms on a grid over lr in [1e-4, 10] x 3 inits; sgd diverges above lr = 1."""
    rng = np.random.default_rng(0)
    rows = []
    for arm, width in (("sgd", 0.6), ("insgd", 1.2)):
        for log_lr, init in itertools.product(
            np.linspace(-4, 1, n_lrs), ("he", "xavier", "orthogonal")
        ):
            for seed in range(seeds):
                diverged = arm == "sgd" and log_lr > 0
                acc = 0.1 + 0.85 * math.exp(-(((log_lr + 1.5) / width) ** 2))
                acc = float(np.clip(acc + rng.normal(0, 0.01), 0, 1))
                rows.append(
                    {
                        "arm": arm,
                        "lr": 10**log_lr,
                        "init": init,
                        "init_scale": 1.0,
                        "seed": seed,
                        "val_acc": None if diverged else acc,
                        "val_loss": None if diverged else -math.log(max(acc, 1e-3)),
                        "diverged": diverged,
                        "status": "finished",
                    }
                )
    rows.append({**rows[0], "status": "early_stopped"})
    return rows


def _open(path):
    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")


def _pixels_near(im, hex_color: str, tol: int = 10) -> int:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    a = np.asarray(im).astype(int)
    return int(np.count_nonzero(np.abs(a - rgb).max(axis=2) <= tol))


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    rows = synthetic()
    summary = summarize(rows, num_classes=C, arms=["sgd", "insgd"], lr_range=(1e-4, 10.0))
    out = tmp_path_factory.mktemp("plots") / "nested" / "dir"  # created on demand
    paths = plots(rows, out, num_classes=C, summary=summary)
    return rows, summary, out, paths


def test_one_png_per_stem(drawn):
    _, _, out, paths = drawn
    assert [p.name for p in paths] == [f"{s}.png" for s in PLOT_STEMS]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.png" for s in PLOT_STEMS)
    for path in paths:
        im = _open(path)
        assert im.format is None or im.format == "PNG"
        w, h = im.size
        assert 500 <= w <= 2500 and 350 <= h <= 2500, (path.name, im.size)
        assert 20_000 < path.stat().st_size < 2_000_000
        # not blank: many distinct colours
        assert len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) > 50
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_arm_colours_are_the_same_in_every_figure(drawn):
    _, summary, _, paths = drawn
    colors = arm_colors(list(summary.arms))
    assert colors["sgd"] != colors["insgd"]
    for path in paths:  # curves (lr_curves, profile, expected_max) and titles (heatmap)
        im = _open(path)
        for arm, color in colors.items():
            assert _pixels_near(im, color) > 30, (path.name, arm)


def test_figures_without_a_summary_match_those_with_it(drawn, tmp_path):
    rows, _, _, paths = drawn
    again = plots(rows, tmp_path, num_classes=C, arms=["sgd", "insgd"], lr_range=(1e-4, 10.0))
    for a, b in zip(paths, again, strict=True):
        assert np.array_equal(np.asarray(_open(a)), np.asarray(_open(b))), a.name


def test_no_finished_trials_still_draws_every_figure(tmp_path):
    rows = [{"arm": "sgd", "status": "pending"}, {"arm": "insgd", "status": "running"}]
    paths = plots(rows, tmp_path, num_classes=C, summary=summarize(rows, num_classes=C))
    assert [p.name for p in paths] == [f"{s}.png" for s in PLOT_STEMS]
    for path in paths:
        assert _open(path).size[0] > 300
    paths = plots([], tmp_path / "empty", num_classes=C)
    assert all(p.exists() for p in paths)


def test_plots_from_two_threads(tmp_path):
    rows = synthetic(n_lrs=4, seeds=1)
    errors: list[BaseException] = []

    def draw(i: int) -> None:
        try:
            plots(rows, tmp_path / str(i), num_classes=C)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        a = np.asarray(_open(tmp_path / str(i) / "heatmap.png"))
        assert a.shape[0] > 300
    assert np.array_equal(
        np.asarray(_open(tmp_path / "0" / "lr_curves.png")),
        np.asarray(_open(tmp_path / "1" / "lr_curves.png")),
    )


def test_difference_panel_is_diverging_and_centred(drawn):
    """insgd is far better than sgd where sgd diverges: the difference panel's largest cells
    take the dark-blue end of the diverging map (RdBu, symmetric around 0), a colour neither
    the accuracy map (viridis) nor an arm uses."""
    _, summary, out, _ = drawn
    im = _open(out / "heatmap.png")
    assert _pixels_near(im, "#053061", tol=12) > 300
    c = summary.comparisons[0]
    assert (c.arm, c.baseline) == ("insgd", "sgd") and c.mean_diff > 0


def test_plot_stems_are_listed_once():
    from study.records.store import PLOT_STEMS as stored

    assert PLOT_STEMS == ("lr_curves", "heatmap", "profile", "expected_max")
    assert stored is PLOT_STEMS


def test_every_plot_name_has_one_figure():
    """plots() draws FIGURES[name] for each PlotName: a new name without a figure fails."""
    from study.analysis.figures import FIGURES
    from study.vocab import PlotName

    assert list(FIGURES) == list(PlotName) == list(PLOT_STEMS)
    assert len(set(FIGURES.values())) == len(FIGURES)


def test_lr_curves_star_each_best_lr_and_mark_each_cut_end():
    """Each arm x init with a best lr gets a star there; each end the range cuts a triangle
    pointing out of the range, in the arm's colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from study.analysis.figures import _Data, _mark_peak_and_cuts
    from study.analysis.table import build_table

    rows = [r for r in synthetic() if r["lr"] <= 10**-1.4]  # both arms still learn at the top
    summary = summarize(rows, num_classes=C, arms=["sgd", "insgd"])
    data = _Data(build_table(rows, num_classes=C, arms=["sgd", "insgd"]), summary)
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ends = set()
    for arm in ("sgd", "insgd"):
        lrs = np.array(sorted({r["lr"] for r in rows}))
        ends |= _mark_peak_and_cuts(ax, data, arm, "he", lrs, np.linspace(0, 1, lrs.size), "red")
    markers = [line.get_marker() for line in ax.lines]
    assert markers.count("*") == 2  # both arms learned with he: a best lr each
    cuts = [g.range_cut for g in (summary.arms[a].by_init["he"] for a in ("sgd", "insgd"))]
    assert cuts == [["high"], ["high"]] and ends == {"high"}
    assert markers.count(">") == 2 and "<" not in markers


def test_a_cut_end_is_hatched(tmp_path):
    """The study cut at lr 10^-1.4 (where both arms still learn): drawn from its summary, and
    from the same summary with the cuts taken out, the figures differ over the hatched part of
    each panel beyond the last lr (and the triangles): a large share of the image."""
    rows = [r for r in synthetic() if r["lr"] <= 10**-1.4]
    summary = summarize(rows, num_classes=C, arms=["sgd", "insgd"])
    uncut = summary.model_dump(mode="json")
    for arm in uncut["arms"].values():
        for group in arm["by_init"].values():
            group["range_cut"] = []
    cut = np.asarray(_open(plots(rows, tmp_path / "cut", num_classes=C, summary=summary)[0]))
    plain = np.asarray(_open(plots(rows, tmp_path / "plain", num_classes=C, summary=uncut)[0]))
    assert cut.shape == plain.shape
    changed = np.abs(cut.astype(int) - plain.astype(int)).max(axis=2) > 8
    assert changed.mean() > 0.02, changed.mean()  # the triangles alone: under 1%
