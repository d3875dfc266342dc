"""LR schedules: hand-computed values, registry, validation."""

from __future__ import annotations

import itertools
import math

import pytest

from study.errors import ConfigError, SpecError
from study.spec.options import MultistepSchedule
from study.train.schedule import SCHEDULE_KINDS, lr_at, parse_schedule


@pytest.mark.parametrize("name", list(SCHEDULE_KINDS))
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
    s = parse_schedule({"name": "multistep", "milestones": [80, 120, 160], "gamma": 0.2})
    assert s == MultistepSchedule(name="multistep", milestones=[80, 120, 160], gamma=0.2)
    assert parse_schedule(s) is s  # a checked schedule is taken as it is
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
    assert parse_schedule({"name": "cosine"}) == parse_schedule("cosine")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("linear", r"^schedule must be one of constant, cosine, multistep, got 'linear'$"),
        ({"milestones": [1]}, r"^schedule\.name is required \(one of constant, cosine, multi"),
        ({"name": "cosine", "gamma": 0.5}, r"^schedule\.gamma is not a known key, got 0\.5$"),
        ({"name": "multistep", "gamma": 0}, r"^schedule\.gamma must be > 0, got 0$"),
        ({"name": "multistep", "gamma": 1.5}, r"^schedule\.gamma must be <= 1, got 1\.5$"),
        ({"name": "multistep", "milestones": [5, 3]}, r"^schedule\.milestones\.1 must be greater"),
        ({"name": "multistep", "milestones": [0]}, r"^schedule\.milestones\.0 must be >= 1, got 0"),
        ({"name": "multistep", "milestones": "80"}, r"^schedule\.milestones must be .*got '80'"),
        (3, r"^schedule must be a schedule name or a mapping with 'name', got 3$"),
    ],
)
def test_bad_schedules_name_key_rule_value(spec, pattern):
    """parse_schedule applies the spec's rules: SpecError (a ConfigError) naming field, rule
    and value."""
    with pytest.raises(SpecError, match=pattern) as err:
        parse_schedule(spec)
    assert isinstance(err.value, ConfigError) and len(err.value.problems) == 1
    with pytest.raises(SpecError, match=pattern):
        lr_at(spec, 0.1, 0.0, 10)  # a name or mapping given to lr_at is checked the same way
