"""``study.runtime.configure_process``: what an entry point that runs studies sets for Ray Tune
and MLflow. Library code sets none of it (test_no_library_code_sets_process_state)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from study.runtime import ENVIRONMENT, LOG_LEVELS, REQUIRED, configure_process

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_yield_to_the_operator_and_required_values_do_not(monkeypatch):
    for name in (*ENVIRONMENT, *REQUIRED):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TUNE_MAX_PENDING_TRIALS_PG", "4")  # an operator's own choice
    monkeypatch.setenv("TUNE_DISABLE_SIGINT_HANDLER", "0")  # would break cancellation
    configure_process()
    configure_process()  # idempotent
    assert os.environ["TUNE_MAX_PENDING_TRIALS_PG"] == "4"
    assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"
    assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    for name, level in LOG_LEVELS.items():
        assert logging.getLogger(name).level == level


def test_a_used_up_grid_logs_no_optuna_stop_warning(caplog):
    """Optuna's GridSampler calls Study.stop() outside optimize() when its grid is used up;
    OptunaSearch logs that as a warning after every arm's last trial. It is dropped; other
    warnings of that logger are not."""
    configure_process()
    configure_process()  # one filter, however often
    log = logging.getLogger("ray.tune.search.optuna.optuna_search")
    assert len(log.filters) == 1
    with caplog.at_level(logging.WARNING):
        log.warning(
            RuntimeError(
                "`Study.stop` is supposed to be invoked inside an objective function or a callback."
            )
        )
        log.warning("another warning")
    assert [r.getMessage() for r in caplog.records] == ["another warning"]


def test_no_library_code_sets_process_state():
    """Environment writes and logger settings live in study/runtime.py (and the entry points'
    own modules), not in the library the entry points call."""
    writes = re.compile(r"os\.environ\[[^]]+\]\s*=|environ\.setdefault\(|\.setLevel\(|addFilter\(")
    found = {
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "study").rglob("*.py"))
        if path.name != "runtime.py" and "cli" not in path.parts
        for line in path.read_text().splitlines()
        if writes.search(line)
    }
    # importance.py quiets Optuna's logger for the span of one call and restores its level
    assert found == {"study/analysis/importance.py"}, found
