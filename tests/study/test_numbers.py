"""study.numbers: the one rule of what counts as a (finite) number, on hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from study.numbers import finite, to_float


@pytest.mark.parametrize(
    ("value", "as_float", "as_finite"),
    [
        (0.5, 0.5, 0.5),
        (3, 3.0, 3.0),
        ("0.25", 0.25, 0.25),  # an MLflow param is text
        (" 1e-3 ", 0.001, 0.001),
        (np.float32(0.5), 0.5, 0.5),
        (math.nan, "nan", None),
        ("inf", math.inf, None),
        (-math.inf, -math.inf, None),
        (10**400, None, None),  # too large for a float
        (True, None, None),  # a flag is not a number
        (False, None, None),
        (None, None, None),
        ("", None, None),
        ("abc", None, None),
        ([1.0], None, None),
    ],
)
def test_numbers_and_finite_numbers(value, as_float, as_finite) -> None:
    got = to_float(value)
    if as_float == "nan":
        assert got is not None and math.isnan(got)
    else:
        assert got == as_float
    assert finite(value) == as_finite
    assert finite(value) is None or isinstance(finite(value), float)
