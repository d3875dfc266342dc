"""Fixtures shared by the test packages: local Ray clusters and MLflow stores."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings

# ---- Ctrl-C: tests press it on the children they start (``hprobust ui``, a study driver), as a
# terminal does. A process started in the background by a shell without job control (a CI
# runner's ``cmd &``) has SIGINT ignored, and an ignored signal stays ignored across fork and
# exec: every child would ignore the test's Ctrl-C. The session takes a terminal's disposition.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# ---- Hypothesis: derandomized in CI (the same examples on every run, no example database),
# no shrinking (a failure is reported as found, never after minutes of shrinking), small
# budgets. HYPOTHESIS_PROFILE=dev explores with random seeds and shrinks failures.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ---- the user's state dir: every `hprobust serve` a test starts records its URL there
# (service/endpoint.py) and the client commands read it. The session's own, so tests never see
# or overwrite the user's record, nor one of another test run on the same machine.
_STATE_HOME = tempfile.mkdtemp(prefix="hpr-state-")
os.environ["XDG_STATE_HOME"] = _STATE_HOME
atexit.register(shutil.rmtree, _STATE_HOME, True)

# ---- signed studies (study.records.signing)


@pytest.fixture(scope="session", autouse=True)
def signing_secret() -> Iterator[str]:
    """The secret that signs the studies tests record directly (``StudyStore``) and that
    ``drive`` checks, from the environment, as a study driver on a Ray head has it (a driver
    runs only signed studies). ``hprobust serve`` in tests drops HPROBUST_* variables and uses
    its data dir's own secret."""
    import secrets

    old = os.environ.get("HPROBUST_SECRET")
    secret = os.environ["HPROBUST_SECRET"] = secrets.token_urlsafe(32)
    try:
        yield secret
    finally:
        if old is None:
            os.environ.pop("HPROBUST_SECRET", None)
        else:
            os.environ["HPROBUST_SECRET"] = old


# ---- studies (issue #3): one local Ray per test session, SQLite MLflow stores ---------------


@pytest.fixture(scope="session")
def ray_local() -> Iterator[str]:
    """ONE fresh local Ray (2 CPUs, no dashboard) in a private temp dir for the session.

    Yields the temp dir. Never joins another engineer's cluster (``address="local"``) and
    shuts down only its own.
    """
    import ray

    from study.runtime import LOCAL_RAY_ENVIRONMENT, configure_local_ray, configure_process

    configure_process()  # studies run in this process, set up as the entry points set up theirs
    temp_dir = tempfile.mkdtemp(prefix="hpr-ray-", dir="/tmp")  # short: Ray's socket paths
    # this Ray is set up as `hprobust run` sets up the Ray it starts; the Ray heads that later
    # tests of this process start (`hprobust serve`'s) are not
    before = {name: os.environ.get(name) for name in LOCAL_RAY_ENVIRONMENT}
    configure_local_ray()
    try:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _temp_dir=temp_dir,
        )
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield temp_dir
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def mlflow_sqlite_uri(tmp_path) -> str:
    """A fresh MLflow SQLite store ``tmp_path/mlflow.db`` (artifacts in tmp_path/mlartifacts)."""
    from study.records.store import sqlite_uri

    return sqlite_uri(tmp_path)


@pytest.fixture(scope="session")
def ray_head_session(tmp_path_factory: pytest.TempPathFactory):
    """A real ``ray start --head`` with token auth on free ports, in its own process group
    (the Jobs API the service submits to), started once for the session: a head takes 5-20 s
    to start on this machine. Use :func:`ray_head`."""
    from service.stack import start_ray_head

    head = start_ray_head(num_cpus=2, log_dir=tmp_path_factory.mktemp("ray-logs"))
    try:
        yield head
    finally:
        head.stop(grace_s=15)
        shutil.rmtree(head.extra["temp_dir"], ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head(ray_head_session):
    """The session's Ray head (:func:`ray_head_session`), handed to one module at a time:
    at the end of the module every job still live on it is stopped and waited for, so a
    module starts with an idle cluster, as if the head were its own."""
    yield ray_head_session
    stop_live_jobs(ray_head_session)


def stop_live_jobs(head, timeout_s: float = 120.0) -> None:
    """Stop every job on ``head`` that has not ended and wait until each has (no timing is
    asserted: a job that outlives ``timeout_s`` fails the module's teardown, loudly)."""
    import time

    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(
        head.url, headers={"Authorization": f"Bearer {head.extra['token']}"}
    )
    live = [j.submission_id for j in client.list_jobs() if not j.status.is_terminal()]
    for submission_id in live:
        client.stop_job(submission_id)
    deadline = time.monotonic() + timeout_s
    while live:
        live = [s for s in live if not client.get_job_status(s).is_terminal()]
        if live and time.monotonic() > deadline:
            raise RuntimeError(f"Ray jobs {live} did not stop within {timeout_s} s")
        time.sleep(0.5)


# ---- the order of the files (make test: pytest-xdist, --dist loadfile) ----------------------
# xdist hands whole files to its workers from one queue, by default the files with the most
# tests first (--loadscope-reorder): the long end-to-end files, a handful of tests and minutes
# each, came last (test_serve.py about 62nd of 83 files, test_suites.py 79th), where one
# of them still running decides when the run ends. Longest first instead: the files below in
# this order, then the other files with a ``slow`` test (Ray, servers), then the rest, each
# group in collection order. Only the order of the files changes: which tests run, their
# order within a file and a file's tests in one process stay as they were.
LONGEST_FIRST = (
    "tests/service/test_api.py",
    "tests/service/test_serve.py",
    "tests/docker/test_postgres_path.py",
    "tests/service/test_scheduler.py",
    "tests/service/test_suites.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the order below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def path(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    slow = {path(item) for item in items if item.get_closest_marker("slow")}
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def file_rank(item: pytest.Item) -> int:
        name = path(item)
        return rank.get(name, len(rank) + (name not in slow))

    items.sort(key=file_rank)  # stable: the files' own order, and each file's, are kept
