"""``study.runtime.configure_process``: what an entry point that runs studies sets for Ray Tune
and MLflow. Library code sets none of it (test_no_library_code_sets_process_state)."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import pytest

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


def test_trial_niceness_is_read_checked_and_only_ever_lowers_priority():
    """HPROBUST_TRIAL_NICE: 0-19, default 10; anything else is refused naming the variable,
    the rule and the value. ``lower_priority`` lowers every thread of a process (here a child
    with a thread of its own) and never raises it back."""
    import subprocess
    import sys
    import time

    import pytest

    from study.errors import ConfigError
    from study.runtime import DEFAULT_TRIAL_NICE, TRIAL_NICE_ENV, lower_priority, trial_nice

    assert trial_nice({}) == DEFAULT_TRIAL_NICE == 10
    assert trial_nice({TRIAL_NICE_ENV: " 19 "}) == 19
    for bad in ("-1", "20", "ten", "1.5"):
        with pytest.raises(ConfigError) as caught:
            trial_nice({TRIAL_NICE_ENV: bad})
        assert TRIAL_NICE_ENV in str(caught.value) and repr(bad) in str(caught.value)
        assert "0" in str(caught.value) and "19" in str(caught.value)

    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); "
    child = subprocess.Popen([sys.executable, "-c", code + "time.sleep(30)"])
    try:
        tasks = Path(f"/proc/{child.pid}/task")
        deadline = time.monotonic() + 20
        while len(list(tasks.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        threads = [int(t.name) for t in tasks.iterdir()]
        assert len(threads) == 2
        assert lower_priority(7, child.pid) == 7
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in threads} == {7}
        assert lower_priority(3, child.pid) == 7  # never back up
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in threads} == {7}
    finally:
        child.kill()
        child.wait()


AUTOGROUP_PROBE = """
import json, os, sys
from study.runtime import own_cpu_share
done = own_cpu_share(int(sys.argv[1]))
again = own_cpu_share(int(sys.argv[2]))
print(json.dumps({"done": done, "again": again, "sid": os.getsid(0), "pid": os.getpid(),
                  "autogroup": open("/proc/self/autogroup").read().strip()}))
"""


@pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="no Linux autogroups on this kernel"
)
def test_own_cpu_share_puts_a_process_in_an_autogroup_of_its_own_ranked_lower():
    """A process that is not a group leader (a trial's Ray actor under the Ray this package
    starts) leaves its session for one of its own, whose autogroup gets the niceness, and
    never goes back up; a group leader (setsid refused) and niceness 0 change nothing."""
    import json
    import subprocess
    import sys

    from study.runtime import own_cpu_share

    mine = Path("/proc/self/autogroup").read_text().strip()

    def probe(nice: int, again: int, **popen) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", AUTOGROUP_PROBE, str(nice), str(again)],
            capture_output=True, text=True, check=True, timeout=60, **popen,
        )  # fmt: skip
        return json.loads(out.stdout)

    moved = probe(7, 3)
    assert moved["done"] and moved["again"]
    assert moved["sid"] == moved["pid"] != os.getsid(0)  # a session of its own
    assert moved["autogroup"] != mine and moved["autogroup"].endswith("nice 7")  # not back to 3

    leader = probe(7, 7, process_group=0)  # a process group leader: setsid is refused
    assert not leader["done"] and leader["sid"] == os.getsid(0)
    assert leader["autogroup"] == mine

    idle = probe(0, 0)
    assert not idle["done"] and idle["sid"] == os.getsid(0) and idle["autogroup"] == mine
    assert own_cpu_share(0) is False and Path("/proc/self/autogroup").read_text().strip() == mine


RATE_PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from runtime import set_autogroup_nice  # study/runtime.py alone: it imports the stdlib only
os.setsid()
done = [set_autogroup_nice(n) for n in (3, 4, 5)]
print(json.dumps({"done": done, "autogroup": open("/proc/self/autogroup").read().strip()}))
"""


@pytest.mark.skipif(
    not (
        Path("/proc/self/autogroup").exists()
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("setpriv")
        and Path("/usr/bin/python3").exists()
    ),
    reason="needs Linux autogroups, root (to become nobody) and setpriv",
)
def test_an_autogroup_write_refused_for_its_rate_is_tried_again(tmp_path_factory):
    """Linux refuses an unprivileged write of an autogroup's niceness within 0.1 s of anyone
    else's (EAGAIN); two trials that start at once would meet it, and one of them kept the
    API's share of the cores. As an unprivileged user (nobody), three writes in a row now
    all land."""
    import json
    import subprocess
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="hpr-rate-", dir="/tmp"))  # readable by nobody
    try:
        where.chmod(0o755)
        shutil.copy(Path(__file__).parents[2] / "study" / "runtime.py", where / "runtime.py")
        (where / "runtime.py").chmod(0o644)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        out = subprocess.run(
            [*as_nobody, "/usr/bin/python3", "-c", RATE_PROBE, str(where)],
            capture_output=True, text=True, check=True, timeout=60, cwd=where,
        )  # fmt: skip
    finally:
        shutil.rmtree(where, ignore_errors=True)
    probe = json.loads(out.stdout)
    assert probe["done"] == [True, True, True]
    assert probe["autogroup"].endswith(" nice 5")


BACKGROUND_PROBE = """
import json, sys
from study.runtime import background_share
def read():
    return open("/proc/self/autogroup").read().strip()
before = read()
with background_share(int(sys.argv[1])) as lowered:
    inside = read()
print(json.dumps({"before": before, "inside": inside, "after": read(), "lowered": lowered}))
"""


@pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="no Linux autogroups on this kernel"
)
def test_background_share_lowers_a_session_of_its_own_and_puts_it_back():
    """A warm driver's session (a Ray job's entrypoint runs in a new one) yields the cores
    while it works ahead, and gets its share back for its study; a process in a session it
    shares with others (a terminal's, a service's) never changes that session's share."""
    import json
    import subprocess
    import sys

    def probe(nice: int, *, launcher: list[str] | None = None, **popen) -> dict:
        command = [sys.executable, "-c", BACKGROUND_PROBE, str(nice)]
        if launcher:  # the probe as a grandchild: its parent leads no session
            command = [*launcher, repr(command)]
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=60, **popen
        )
        return json.loads(out.stdout)

    own = probe(10, start_new_session=True)  # as Ray's job supervisor starts an entrypoint
    assert own["lowered"] and own["inside"].endswith(" nice 10")
    assert own["before"].endswith(" nice 0") and own["after"] == own["before"]

    middle = "import subprocess, sys; subprocess.run(eval(sys.argv[1]), check=True)"
    shared = probe(10, launcher=[sys.executable, "-c", middle])  # this test's session
    mine = Path("/proc/self/autogroup").read_text().strip()
    assert not shared["lowered"]
    assert shared["before"] == shared["inside"] == shared["after"] == mine


@pytest.mark.parametrize(
    ("text", "nice"),
    [
        ("/autogroup-85 nice 0\n", 0),
        ("/autogroup-90 nice 7\n", 7),
        ("/autogroup-3 nice -5", -5),
        # the kernel's default group (a session that goes back to init's): an empty read,
        # which is how a CI runner or a VM's service starts; setsid still leaves it
        ("", 0),
        ("\n", 0),
        ("/autogroup-85 nice", None),
        ("/autogroup-85 nice x", None),
        ("something else", None),
    ],
)
def test_an_autogroup_read_gives_its_niceness(text, nice):
    from study.runtime import autogroup_niceness

    assert autogroup_niceness(text) == nice


def test_only_a_local_ray_for_one_study_preloads_torch_in_its_workers():
    """``hprobust run``'s own Ray (and the tests') preloads torch in every worker; a Ray head
    that runs Ray Jobs (``hprobust serve``'s, which configure_process sets up) must not: each
    job's supervisor is a worker, and would import torch before the job's driver starts."""
    from study.runtime import LOCAL_RAY_ENVIRONMENT, configure_local_ray

    preload = "RAY_preload_python_modules"  # Ray's own spelling
    assert LOCAL_RAY_ENVIRONMENT[preload] == "torch,study.train.trial"
    assert not set(LOCAL_RAY_ENVIRONMENT) & set(ENVIRONMENT)
    saved = dict(os.environ)
    try:
        os.environ.pop(preload, None)
        configure_process()
        assert preload not in os.environ
        configure_local_ray()
        assert os.environ[preload] == "torch,study.train.trial"
        os.environ[preload] = "torch"  # an operator's own value wins
        configure_local_ray()
        assert os.environ[preload] == "torch"
    finally:
        os.environ.clear()
        os.environ.update(saved)
