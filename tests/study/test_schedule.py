"""LR schedules: hand-computed values, registry, validation."""

from __future__ import annotations

import itertools
import math

import pytest

from study.errors import ConfigError
from study.schedule import SCHEDULES, Schedule, create_schedule, lr_at


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_starts_at_base_lr(name):
    assert lr_at(name, 0.3, 0.0, 10) == pytest.approx(0.3)


def test_constant():
    assert [lr_at("constant", 0.1, e, 4) for e in (0, 1.5, 3.99)] == [0.1, 0.1, 0.1]


def test_cosine_hand_values():
    # base * (1 + cos(pi * e / T)) / 2 with T = 4
    assert lr_at("cosine", 1.0, 1.0, 4) == pytest.approx((1 + math.sqrt(0.5)) / 2)
    assert lr_at("cosine", 1.0, 2.0, 4) == pytest.approx(0.5)
    assert lr_at("cosine", 0.2, 3.0, 4) == pytest.approx(0.2 * (1 - math.sqrt(0.5)) / 2)
    assert lr_at("cosine", 1.0, 4.0, 4) == pytest.approx(0.0, abs=1e-15)
    # per step: strictly decreasing within the run
    values = [lr_at("cosine", 1.0, s / 10, 4) for s in range(40)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_multistep_hand_values():
    s = create_schedule({"name": "multistep", "milestones": [80, 120, 160], "gamma": 0.2})
    assert s == Schedule(name="multistep", milestones=(80, 120, 160), gamma=0.2)
    assert lr_at(s, 0.1, 79.99, 200) == pytest.approx(0.1)
    assert lr_at(s, 0.1, 80, 200) == pytest.approx(0.02)
    assert lr_at(s, 0.1, 130, 200) == pytest.approx(0.004)
    assert lr_at(s, 0.1, 199.9, 200) == pytest.approx(0.0008)


def test_multistep_defaults_half_and_three_quarters_gamma_point_one():
    assert lr_at("multistep", 1.0, 4.9, 10) == pytest.approx(1.0)
    assert lr_at("multistep", 1.0, 5.0, 10) == pytest.approx(0.1)
    assert lr_at("multistep", 1.0, 7.4, 10) == pytest.approx(0.1)
    assert lr_at("multistep", 1.0, 8.0, 10) == pytest.approx(0.01)


def test_mapping_without_options_equals_the_name():
    assert create_schedule({"name": "cosine"}) == create_schedule("cosine")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("linear", r"schedule must be one of constant, cosine, multistep, got 'linear'"),
        ({"milestones": [1]}, r"schedule must name its kind with 'name'"),
        ({"name": "cosine", "gamma": 0.5}, r"schedule 'cosine' has no option 'gamma'"),
        ({"name": "multistep", "gamma": 0}, r"schedule\.gamma must be a finite number in \(0, 1\]"),
        ({"name": "multistep", "gamma": 1.5}, r"schedule\.gamma .* got 1\.5"),
        ({"name": "multistep", "milestones": [5, 3]}, r"schedule\.milestones .*got \[5, 3\]"),
        ({"name": "multistep", "milestones": [0]}, r"schedule\.milestones .*>= 1"),
        ({"name": "multistep", "milestones": "80"}, r"schedule\.milestones"),
        (3, r"schedule must be a name or a mapping"),
    ],
)
def test_bad_schedules_name_key_rule_value(spec, pattern):
    with pytest.raises(ConfigError, match=pattern):
        create_schedule(spec)
