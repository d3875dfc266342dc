"""What a process that runs studies sets for Ray Tune and MLflow: once, at its entry point.

Ray Tune and MLflow read a few switches from the environment only (no ``RunConfig`` or client
argument exists for them in Ray 2.60 and MLflow 3.17), and quiet their chatter through
process-wide loggers. Setting them is a decision about the whole process, so the library
(runner, store, driver functions) sets none of it; the entry points call
:func:`configure_process` before anything else: the study driver's ``main``
(``python -m study.driver``, the Ray job of a study), the ``hprobust`` command line (its root,
and ``hprobust run`` itself), and the API under uvicorn (``service.main.app_from_env``: it
downloads artifacts, but runs no Tune loop).

Importing this module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

#: Environment defaults (an operator's own value wins).
ENVIRONMENT = {
    # No CSV/JSON/TensorBoard files per trial: MLflow is the record. Tune adds those logger
    # callbacks unless this is set (or a callback of each kind is passed).
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Tune's legacy output engine, which prints no console table at ``RunConfig(verbose=0)``
    # (the progress a user sees is the driver's own, from the recorder's progress hook).
    "RAY_AIR_NEW_OUTPUT": "0",
    # At most one trial waits for resources at a time, so the searcher is asked for a trial
    # only when one can start soon (Tune's "auto" asks for many ahead).
    "TUNE_MAX_PENDING_TRIALS_PG": "1",
    # Tune warns when saving its experiment state takes over 5 s; a loaded machine does.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100",
    # MLflow draws a tqdm bar on stderr for every artifact download (spec.yaml, summary.json).
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # A local Ray's dashboard head would report usage statistics to Ray's servers now and
    # then (the service's `ray start --disable-usage-stats` says the same).
    "RAY_USAGE_STATS_ENABLED": "0",
    # A Ray started here (``hprobust run``'s local Ray, ``hprobust serve``'s head) starts its
    # workers in its own process group instead of one each, so that a trial's actor can
    # leave it for a session, hence a Linux autogroup, of its own (:func:`own_cpu_share`).
    # Ray 2.60 uses the per-worker groups only to kill what a dead worker left running; a
    # trial starts no processes.
    "RAY_process_group_cleanup_enabled": "0",
}
#: Environment defaults for a process that starts a local Ray of its own to run one study's
#: trials (``hprobust run``), set by :func:`configure_local_ray` before Ray starts.
LOCAL_RAY_ENVIRONMENT = {
    # Every Python worker imports torch and the trial's code as it starts, before it is given
    # work: Ray starts a worker per CPU as the driver connects, so a trial's actor finds them
    # imported instead of spending its first second on them. Not for a Ray that runs Ray Jobs
    # (``hprobust serve``'s head): each job's supervisor is a worker too, and would import
    # torch before the job's driver starts (about 1.3 s more from a POST to its driver).
    "RAY_preload_python_modules": "torch,study.train.trial",
}
#: Environment values this process must have, whatever the operator set.
REQUIRED = {
    # Ray Tune catches SIGINT itself and then returns from fit() as if the study were done (it
    # was recorded finished with trials unrun): without its handler, SIGINT raises
    # KeyboardInterrupt in the driver, like SIGTERM, and the study ends cancelled.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}
#: Logger -> the lowest level it shows.
LOG_LEVELS = {
    # The ResultGrid looks for per-trial result files the study does not write.
    "ray.tune.analysis.experiment_analysis": logging.ERROR,
    "ray.tune.result_grid": logging.ERROR,
    # A new local cluster gets Ray 2.60's default token authentication; Ray's notice that it
    # did would print before the study id.
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
    # A new SQLite store's migrations, MLflow's client notes.
    "alembic": logging.WARNING,
    "mlflow.store.db.utils": logging.WARNING,
    "mlflow.tracking": logging.WARNING,
}
#: OptunaSearch's logger, whose grid warning :class:`_GridStopFilter` drops.
OPTUNA_SEARCH_LOG = "ray.tune.search.optuna.optuna_search"


class _GridStopFilter(logging.Filter):
    """Drops OptunaSearch's warning that a used-up grid called ``Study.stop``: Optuna's
    GridSampler calls it when its grid is used up, which raises outside ``Study.optimize``,
    and OptunaSearch logs that after every last trial of a grid."""

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith("`Study.stop` is supposed to be invoked")


def configure_process() -> None:
    """Set this process up to run studies (see the module doc). Idempotent."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    os.environ.update(REQUIRED)
    for name, level in LOG_LEVELS.items():
        logging.getLogger(name).setLevel(level)
    search_log = logging.getLogger(OPTUNA_SEARCH_LOG)
    if not any(isinstance(f, _GridStopFilter) for f in search_log.filters):
        search_log.addFilter(_GridStopFilter())


def configure_local_ray() -> None:
    """Set :data:`LOCAL_RAY_ENVIRONMENT` (an operator's own value wins) for the local Ray this
    process is about to start for its study's trials. Idempotent."""
    for name, value in LOCAL_RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


#: The niceness the study's trials run at (0-19; 0: as the driver), read by the driver.
TRIAL_NICE_ENV = "HPROBUST_TRIAL_NICE"
#: Trials run below the API and the driver unless told otherwise: where they compete for the
#: same cores the API and the driver go first (a trial loses little: it gets the cores
#: whenever they are idle, which is nearly always).
DEFAULT_TRIAL_NICE = 10


def trial_nice(environ: dict[str, str] | None = None) -> int:
    """The niceness of the study's trial processes: ``HPROBUST_TRIAL_NICE`` (an integer
    0-19), :data:`DEFAULT_TRIAL_NICE` when unset.

    Raises:
        ConfigError: the variable is set to anything else (naming it, the rule and the value).

        >>> trial_nice({}), trial_nice({"HPROBUST_TRIAL_NICE": "0"})
        (10, 0)
    """
    raw = (os.environ if environ is None else environ).get(TRIAL_NICE_ENV, "").strip()
    if not raw:
        return DEFAULT_TRIAL_NICE
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 19:
        from study.errors import ConfigError

        raise ConfigError(
            f"{TRIAL_NICE_ENV}: must be an integer from 0 (trials at the driver's priority) "
            f"to 19 (the lowest), got {raw!r}"
        )
    return value


def lower_priority(nice: int, pid: int | None = None) -> int:
    """Run the process ``pid`` (default: this one) at niceness ``nice`` or lower priority:
    every thread of it (Linux keeps a niceness per thread; threads started later inherit
    their creator's). Never raises priority (an unprivileged process could not).
    Returns the process's niceness now. A no-op where the OS has no ``setpriority``."""
    if not hasattr(os, "setpriority") or nice <= 0:
        return os.getpriority(os.PRIO_PROCESS, pid or 0) if hasattr(os, "getpriority") else 0
    pid = pid or os.getpid()
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:  # no /proc (macOS): the process as a whole
        threads = [pid]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # a thread that just ended, or not ours
            continue
    return os.getpriority(os.PRIO_PROCESS, pid)


#: Linux's autogroup of the calling process (its niceness is writable by its owner).
AUTOGROUP = "/proc/self/autogroup"


def own_cpu_share(nice: int) -> bool:
    """Give this process a CPU share of its own, ranked at niceness ``nice``: a new session
    (``setsid``), hence a Linux autogroup of its own, whose niceness is then set to ``nice``.
    True when done (or already done); False where it cannot be: no autogroups (another OS, or
    ``kernel.sched_autogroup_enabled=0``), or a process group leader (``setsid`` is refused to
    one: a Ray worker is one unless its Ray was started with
    ``RAY_process_group_cleanup_enabled=0``, as :data:`ENVIRONMENT` does). A process in the
    kernel's default group (a session that goes back to init's, see
    :func:`autogroup_niceness`) leaves it the same way.

    Why: where Linux's autogroup scheduler is on (most desktop and server distributions),
    each session shares the cores fairly with every other session whatever the niceness of
    the processes inside it, so a niced trial yields to its own driver and Ray but not to the
    API, which ``hprobust serve`` runs in a session of its own. An autogroup of the trial's
    own at niceness ``nice`` ranks the trial below every other session: the API, the driver,
    Ray's own processes and the user's shell go first. Inside a container (a CPU cgroup of
    its own) the autogroup does not apply, and the container's CPU shares rank it instead.
    Never raises priority, never raises.
    """
    if nice <= 0 or not hasattr(os, "setsid") or _autogroup_nice() is None:
        return False
    if os.getsid(0) != os.getpid():
        try:
            os.setsid()
        except OSError:  # a process group leader
            return False
    now = _autogroup_nice()
    if now is None:
        return False
    return now >= nice or set_autogroup_nice(nice)


def set_autogroup_nice(nice: int, *, tries: int = 20) -> bool:
    """Set the niceness of this process's autogroup (its session's CPU share) to ``nice``;
    True if done. Its owner may move it anywhere in 0-19. Linux refuses an unprivileged
    write within 0.1 s of anyone else's (``EAGAIN``: two trials starting at once would),
    so a refused write is tried again, ``tries`` times 0.1 s apart. Never raises."""
    for attempt in range(tries):
        try:
            with open(AUTOGROUP, "w") as share:
                share.write(str(nice))
            return True
        except OSError as exc:
            if exc.errno != errno.EAGAIN or attempt == tries - 1:
                return False
            time.sleep(0.1)
    return False


@contextlib.contextmanager
def background_share(nice: int) -> Iterator[bool]:
    """While the block runs, this process's session's CPU share (its Linux autogroup) is at
    niceness ``nice``; afterwards it is back where it was. For a process that works ahead of
    its time (a warm study driver: imports, then waiting) and must not take the cores from
    the API meanwhile. Only a session of the process's own is changed: one it leads, or its
    parent leads (a Ray job's entrypoint runs as ``sh -c`` in a session of its own); never a
    terminal's or a service's session shared with others. Yields whether it was lowered."""
    before = _autogroup_nice()
    own = hasattr(os, "getsid") and os.getsid(0) in (os.getpid(), os.getppid())
    lowered = own and before is not None and 0 <= before < nice and set_autogroup_nice(nice)
    try:
        yield lowered
    finally:
        if lowered:
            set_autogroup_nice(before)


def _autogroup_nice() -> int | None:
    """The niceness of this process's autogroup; None without autogroups."""
    try:
        with open(AUTOGROUP) as current:
            return autogroup_niceness(current.read())
    except OSError:
        return None


def autogroup_niceness(text: str) -> int | None:
    """The niceness in a read of ``/proc/<pid>/autogroup``: ``/autogroup-85 nice 0`` is 0.
    An empty read is 0 too: the process is in the kernel's default group, as every process
    whose session goes back to init's own (session 0) is, such as a service that a VM's
    init starts without a session of its own. That group's niceness cannot be set, but
    ``setsid`` still gives the process an autogroup of its own. None for anything else."""
    text = text.strip()
    if not text:
        return 0
    name, nice, value = [*text.split(), "", "", ""][:3]
    if not name.startswith("/autogroup-") or nice != "nice":
        return None
    try:
        return int(value)
    except ValueError:
        return None
