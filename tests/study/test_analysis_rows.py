"""The rules of ``study.analysis.rows``: how a recorded value (text included) becomes a row
value. The store (``records.trial_row``) and the analysis (``table.build_table``) both read
rows with them, so each rule is checked once here, and both sides through them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from study.analysis.rows import missing, to_bool, to_int, to_status
from study.analysis.table import build_table
from study.errors import ConfigError
from study.numbers import finite, to_float
from tests.study.analysis_rows import row


def test_numbers():
    assert to_float("0.01") == 0.01 and to_float(3) == 3.0
    assert math.isnan(to_float("nan")) and to_float("inf") == math.inf
    assert to_float(True) is None and to_float(None) is None and to_float("abc") is None
    assert finite("1e-3") == 1e-3 and finite("inf") is None and finite(float("nan")) is None
    assert missing(None) and missing(float("nan")) and missing(np.float64("nan"))
    assert not missing("") and not missing(0)


def test_integers():
    assert to_int("3") == 3 and to_int("3.0") == 3 and to_int(np.int64(7)) == 7
    for bad in ("3.5", "abc", True, None, float("inf"), float("nan")):
        assert to_int(bad) is None, bad


def test_flags():
    for true in (True, np.bool_(True), 1, np.int64(1), "true", " Yes ", "T", "1"):
        assert to_bool(true) is True, true
    for false in (False, 0, "false", "no", "", None, float("nan")):
        assert to_bool(false) is False, false
    for bad in (2, 0.5, "maybe", [1]):
        assert to_bool(bad) is None, bad


def test_statuses():
    assert to_status(None) == "finished" and to_status(float("nan")) == "finished"
    assert to_status("early_stopped") == "early_stopped"
    assert to_status("done") is None and to_status("FINISHED") is None


def test_the_analysis_reads_text_rows_with_the_same_rules():
    """A CSV-like row (every value text) gives the same table as its typed twin."""
    typed = [row("sgd", 0.1, "he", 0, 0.6), row("sgd", 1.0, "he", 1, None, None, diverged=True)]
    text = [
        {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
         for k, v in r.items()}
        for r in typed
    ]  # fmt: skip
    text[1]["val_acc"] = text[1]["val_loss"] = "nan"  # what a CSV writer leaves for None
    a, b = build_table(typed, num_classes=10), build_table(text, num_classes=10)
    for name in ("arm", "lr", "init", "init_scale", "seed", "acc", "loss", "diverged"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seed", "3.5", "trials[0].seed must be an integer, got '3.5'"),
        ("seed", True, "trials[0].seed must be an integer, got True"),
        ("diverged", "maybe", "trials[0].diverged must be a boolean (true/false), got 'maybe'"),
        ("lr", True, "trials[0].lr must be a number, got True"),
        ("status", "done", "trials[0].status must be one of finished, early_stopped, failed, "
                           "running, pending, stopped, got 'done'"),
    ],
)  # fmt: skip
def test_a_value_no_rule_reads_is_an_error_naming_it(field, value, message):
    with pytest.raises(ConfigError) as err:
        build_table([{**row("sgd", 0.1, "he", 0, 0.6), field: value}], num_classes=10)
    assert str(err.value) == message
