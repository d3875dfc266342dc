"""suite_plots(): forest.png and suite_profile.png are written, in the arms' study colours, for
finished, running, one-arm and empty suites."""

from __future__ import annotations

import numpy as np
import pytest

from study.analysis.figures import arm_colors
from study.analysis.suite import WorkloadResult, summarize_suite
from study.analysis.suite_figures import NOT_POOLED_COLOR, suite_plots
from study.vocab import SuitePlotName
from tests.study.suite_cases import study_summary

ARMS = ["sgd", "insgd", "adam"]


def _suite(status: str = "finished"):
    both = {"insgd": (0.01, 0.03, 0.05), "adam": (0.04, 0.05, 0.06)}
    workloads = [
        WorkloadResult("cnn", "a", "finished", study_summary(both, arms=ARMS)),
        WorkloadResult("mlp", "b", "finished", study_summary(both, arms=ARMS, cut_high=True)),
        WorkloadResult(
            "one-seed", "c", status, study_summary({"insgd": (0.0,), "adam": (0.02,)}, arms=ARMS)
        ),
    ]
    return summarize_suite(workloads, arms=ARMS, suite_id="s", name="digits")


def _pixels(path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)[..., :3]


def _has_colour(img: np.ndarray, hex_colour: str, at_least: int = 30) -> bool:
    from matplotlib.colors import to_rgb

    target = np.array(to_rgb(hex_colour))
    close = np.all(np.abs(img - target) < 0.02, axis=-1)
    return int(close.sum()) >= at_least


def test_both_figures_in_the_arms_colours(tmp_path):
    suite = _suite()
    paths = suite_plots(suite, tmp_path / "plots")
    assert list(paths) == list(SuitePlotName)
    for name, path in paths.items():
        assert path == tmp_path / "plots" / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    colours = arm_colors(ARMS)
    forest = _pixels(paths[SuitePlotName.FOREST])
    assert _has_colour(forest, colours["insgd"]) and _has_colour(forest, colours["adam"])
    assert not _has_colour(forest, colours["sgd"])  # the baseline is never a row
    assert _has_colour(forest, NOT_POOLED_COLOR)  # the one-seed workload
    profile = _pixels(paths[SuitePlotName.SUITE_PROFILE])
    for arm in ARMS:
        assert _has_colour(profile, colours[arm]), arm


def test_the_forest_grows_with_its_rows_and_accepts_the_json_form(tmp_path):
    suite = _suite()
    small = summarize_suite(
        [WorkloadResult("cnn", "a", "finished", study_summary({"insgd": (0.01, 0.02, 0.04)}))],
        arms=["sgd", "insgd"],
        suite_id="s",
        name="one",
    )
    big = _pixels(suite_plots(suite.model_dump(mode="json"), tmp_path / "a")["forest"])
    little = _pixels(suite_plots(small, tmp_path / "b")["forest"])
    assert big.shape[0] > little.shape[0]


@pytest.mark.parametrize("status", ["running", "finished"])
def test_a_running_suite_draws_provisional_numbers(tmp_path, status):
    paths = suite_plots(_suite(status), tmp_path)
    assert all(p.stat().st_size > 5_000 for p in paths.values())


def test_one_arm_and_no_numbers(tmp_path):
    lonely = summarize_suite(
        [WorkloadResult("w", "a", "queued", None)], arms=["sgd"], suite_id="s", name="n"
    )
    assert lonely.comparisons == [] and lonely.profile.workloads == []
    paths = suite_plots(lonely, tmp_path)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths.values())
