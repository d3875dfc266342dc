"""One study = one Ray Tune ``Tuner``: Optuna search per arm, interleaved, replicated, recorded.

:func:`run_study` builds (or, with ``resume=True``, restores) the Tuner of a study and runs it
to the end, then stores the summary, the trials table and the plots in MLflow:

- search: :func:`study.tune.searcher.study_searcher` (one ``OptunaSearch`` per arm behind its own
  ``Repeater`` for seeds, a round-robin ``Searcher`` over the arms, ``ConcurrencyLimiter`` at
  ``max_concurrent_trials`` or what the cluster's CPUs, GPUs and memory can run at once,
  whichever is less: :func:`study.tune.cluster.study_concurrency`, a warning on stderr when
  it is less);
- trainable: a function trainable calling :func:`study.train.trial.train_trial` with
  ``tune.report`` each epoch, ``num_threads = cpus_per_trial``, resources through
  ``tune.with_resources`` (fractional GPUs allowed), actors reused between trials; the
  validated spec reaches the trials once through ``tune.with_parameters`` (each trial's
  :class:`study.spec.trial_config.TrialConfig` is made from it without validating again);
- packing (``spec.pack_size`` > 1, docs/design.md#packing): one Tune trial trains
  a pack of trials with :func:`study.train.pack.train_pack`; each report carries every member's
  latest metrics (``result["__pack"][j]``) and the recorder writes one MLflow run per member,
  keyed exactly as an unpacked trial;
- failures: ``FailureConfig(max_failures=1)``: a crashed trial is retried once, then recorded
  failed; a diverged trial simply ends early (``train_trial`` stops it);
- ``early_stopping: asha``: Ray Tune's ``ASHAScheduler`` on ``val_acc``; stopped trials are
  recorded ``early_stopped`` (and told to TPE as pruned), so the summary leaves them out;
- records: :class:`study.tune.tracking.MlflowRecorder`, the one MLflow writer, keyed by trial
  identity so that a restore is idempotent. Keys already recorded as finished when a study
  resumes are not trained again: their trial reports the recorded result at once.

Ray must be up: the study driver starts or joins it (:func:`study.driver.start_ray`). The
process is configured by its entry point (:func:`study.runtime.configure_process`: Tune's
environment switches, quiet loggers); nothing here changes process-wide state.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from study.errors import StudyFailedError
from study.spec.study_spec import AshaSpec, StudySpec
from study.spec.trial_config import TrialConfig
from study.tune.batching import EpochBatches
from study.vocab import TRIAL_DONE, TrialStatus

NODE_ID_KEY = "node_id"  # in every trial result: the Ray node id the trial runs on
#: How long a study's trials may wait for resources with none running before it fails.
RESOURCE_WAIT_S = 300.0


def recorded_results(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """key -> the last result of each trial already recorded as finished/early stopped."""
    done = {}
    for row in rows:
        if row.get("key") and row["status"] in TRIAL_DONE:
            result = {"diverged": bool(row["diverged"]), "epoch": row["epochs_completed"] or 0}
            for name in ("val_acc", "val_loss", "train_loss"):
                if row.get(name) is not None:
                    result[name] = row[name]
            result.setdefault("val_acc", 0.0)
            done[row["key"]] = result
    return done


def ended_keys(rows: list[dict[str, Any]]) -> set[str]:
    """The keys of the trials recorded as ended: with a result, or failed."""
    ended = (*TRIAL_DONE, TrialStatus.FAILED)
    return {row["key"] for row in rows if row.get("key") and row.get("status") in ended}


def settled_results(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`recorded_results`, and for each trial recorded failed a placeholder result: a
    pass over the whole design reports every ended trial at once and trains only those never
    recorded (the recorder writes nothing for a key that has its terminal run).

        >>> rows = [{"key": "a", "status": "failed"}, {"key": "b", "status": "pending"}]
        >>> settled_results(rows)
        {'a': {'diverged': False, 'epoch': 0, 'val_acc': 0.0}}
    """
    done = recorded_results(rows)
    for row in rows:
        if row.get("key") and row.get("status") == TrialStatus.FAILED:
            done.setdefault(row["key"], {"diverged": False, "epoch": 0, "val_acc": 0.0})
    return done


def pack_result(members: list[dict[str, Any] | None]) -> dict[str, Any]:
    """A packed Tune trial's report: every member's latest metrics under ``__pack`` (None for
    a member without any yet), and for Tune the pack's ``epoch`` (the furthest member's) and
    ``val_acc`` (the best finite one, 0.0 without any)."""
    from study.tune.searcher import PACK_KEY

    accs = [
        m["val_acc"]
        for m in members
        if m and isinstance(m.get("val_acc"), int | float) and math.isfinite(m["val_acc"])
    ]
    return {
        "epoch": max((int(m.get("epoch") or 0) for m in members if m), default=0),
        "val_acc": float(max(accs, default=0.0)),
        PACK_KEY: [dict(m) if m else None for m in members],
    }


def make_trainable(
    spec: StudySpec,
    *,
    data_dir: str | None,
    done: dict[str, dict[str, Any]] | None = None,
    nice: int | None = None,
) -> Callable[[dict[str, Any]], None]:
    """The function trainable of a study. The study-wide part crosses to the trials once,
    through Ray's object store (``tune.with_parameters``): the validated spec itself (no trial
    validates it again), the data directory, the thread count, the trials' niceness
    (``nice``, default :func:`study.runtime.trial_nice`: ``HPROBUST_TRIAL_NICE`` of the
    driver) and the recorded results; Tune's per-trial config carries only the point (arm,
    lr, init, init_scale, seed index)."""
    from ray import tune

    from study.runtime import trial_nice

    trainable = hprobust_pack if spec.pack_size > 1 else hprobust_trial  # (Tune's trial names)
    return tune.with_parameters(
        trainable,
        spec=spec,
        data_dir=data_dir,
        num_threads=max(1, int(spec.resources.cpus_per_trial)),
        done=dict(done or {}),
        nice=trial_nice() if nice is None else nice,
    )


def _yield_cpu(nice: int) -> None:
    """A trial's actor runs at niceness ``nice`` (every thread; once per actor, a reused
    actor is already there), in a CPU share of its own at that niceness where Linux's
    autogroups would otherwise rank it as high as the API: below the API and the driver,
    which then answer while trials use every core. Only inside a Ray actor (a trainable
    called in-process changes nothing)."""
    import ray

    if nice > 0 and ray.is_initialized() and ray.get_runtime_context().get_actor_id():
        from study.runtime import lower_priority, own_cpu_share

        lower_priority(nice)
        own_cpu_share(nice)


def hprobust_trial(
    config: dict[str, Any],
    *,
    spec: StudySpec,
    data_dir: str | None,
    num_threads: int,
    done: dict[str, dict[str, Any]],
    nice: int = 0,
) -> None:
    """One Tune trial = one trial of the study (imports torch only inside workers)."""
    from ray import tune

    from study.train.trial import train_trial
    from study.tune.searcher import trial_key

    key = trial_key(config, spec.seed)
    if key in done:  # recorded before a restore: report it, do not train again
        tune.report(dict(done[key]))
        return
    _yield_cpu(nice)
    trial_config = _trial_config(spec, config, data_dir=data_dir, num_threads=num_threads)
    with _reports(spec) as report:
        train_trial(trial_config, report=report)


def _reports(spec: StudySpec) -> EpochBatches:
    """A trainable's report to Tune: a trial's epochs (a pack's steps) in batches
    (:mod:`study.tune.batching`), each result naming the node that trains it; used as a
    context around the training loop, which sends what is kept when the loop ends or fails."""
    from ray import tune

    node = _where()
    return EpochBatches(
        lambda result: tune.report({**result, **node}),
        every_s=report_every_s(spec),
        last_epoch=spec.epochs,
    )


def report_every_s(spec: StudySpec) -> float:
    """How often a trial reports its epochs (:mod:`study.tune.batching`): every epoch under
    ASHA (it decides at each reported iteration), else at most every
    :data:`study.tune.batching.REPORT_EVERY_S` seconds."""
    from study.tune.batching import REPORT_EVERY_S

    return 0.0 if isinstance(spec.early_stopping, AshaSpec) else REPORT_EVERY_S


def _trial_config(
    spec: StudySpec, point: dict[str, Any], *, data_dir: str | None, num_threads: int
) -> TrialConfig:
    """The :class:`study.spec.trial_config.TrialConfig` of one point of Tune's config (a trial,
    or one member of a pack), made from the validated spec without validating again."""
    from study.tune.searcher import ARM_KEY, trial_seed

    return spec.trial_config(
        point[ARM_KEY],
        lr=point["lr"],
        init=point["init"],
        init_scale=point.get("init_scale", 1.0),
        seed=trial_seed(point, spec.seed),
        data_dir=data_dir,
        num_threads=num_threads,
    )


def _where() -> dict[str, str]:
    """What every trained result carries: the Ray node that trains it (the recorder tags the
    run with it, so trial records say which node, hence which host, ran each trial)."""
    import ray

    return {NODE_ID_KEY: ray.get_runtime_context().get_node_id()}


def hprobust_pack(
    config: dict[str, Any],
    *,
    spec: StudySpec,
    data_dir: str | None,
    num_threads: int,
    done: dict[str, dict[str, Any]],
    nice: int = 0,
) -> None:
    """One Tune trial = a pack of the study's trials (:func:`study.train.pack.train_pack`)."""
    from ray import tune

    from study.train.pack import train_pack
    from study.tune.searcher import trial_key, trial_members

    members = trial_members(config)
    keys = [trial_key(m, spec.seed) for m in members]
    latest: list[dict[str, Any] | None] = [dict(done[key]) if key in done else None for key in keys]
    todo = [j for j, key in enumerate(keys) if key not in done]
    if not todo:  # all recorded before a restore: report them, train nothing
        tune.report(pack_result(latest))
        return
    configs = [
        _trial_config(spec, members[j], data_dir=data_dir, num_threads=num_threads) for j in todo
    ]
    _yield_cpu(nice)
    with _reports(spec) as batches:  # the pack's steps reach the driver as a trial's epochs

        def report(by_member: dict[int, dict[str, Any]]) -> None:
            for index, metrics in by_member.items():
                latest[todo[index]] = dict(metrics)
            batches(pack_result(latest))

        train_pack(configs, report=report)


def _scheduler(spec: StudySpec) -> Any:
    if not isinstance(spec.early_stopping, AshaSpec):
        return None
    from ray.tune.schedulers import ASHAScheduler

    asha = spec.early_stopping
    return ASHAScheduler(
        time_attr="training_iteration",
        metric="val_acc",
        mode="max",
        max_t=asha.max_t or spec.epochs,
        grace_period=asha.grace_period,
        reduction_factor=asha.reduction_factor,
        brackets=asha.brackets,
    )


def run_study(
    spec: StudySpec,
    *,
    study_id: str,
    tracking_uri: str,
    storage_path: str | os.PathLike,
    data_dir: str | os.PathLike | None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    resource_wait_s: float = RESOURCE_WAIT_S,
    trials_done: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the recorded study ``study_id`` to the end; returns its summary.

    Args:
        spec: the study's spec (as recorded by ``StudyStore.create_study``).
        study_id: the recorded study.
        tracking_uri: the MLflow store the study lives in.
        storage_path: Ray Tune's storage (the experiment lives in ``storage_path/study_id``).
        data_dir: where datasets are (passed to every trial).
        resume: restore the Tuner from ``storage_path/study_id`` if it is there (keys
            recorded in MLflow are never recorded twice either way).
        progress: called in this process with ``{finished, running, diverged, failed,
            early_stopped, best: {arm: val_acc}}`` after every recorded event.
        resource_wait_s: how long trials may wait with none running before the study fails
            (:class:`ResourceWait`).
        trials_done: called once every trial has ended and its records are written, before
            the summary and the plots (which need no Ray): ``hprobust run`` shuts its local
            Ray down meanwhile.

    Returns:
        the summary (:func:`study.analysis.summarize`), also stored as ``summary.json``.

    Raises:
        StudyFailedError: every trial failed (after the trials, summary and plots are stored),
            or no trial could start for ``resource_wait_s``.
        KeyboardInterrupt: inside :func:`study.tune.interrupts.deferred` (the driver's), a held
            SIGINT/SIGTERM, raised while the dataset loads or between two steps of Tune's
            loop, never inside a write to the study's records.
    """
    from ray import tune

    from study.records.store import StudyStore
    from study.tune.cluster import study_concurrency
    from study.tune.searcher import study_searcher
    from study.tune.tracking import DriverLink, MlflowRecorder, linked

    store = StudyStore(tracking_uri)
    record = store.get(study_id)  # raises StudyNotFoundError
    storage_path = Path(storage_path).expanduser().resolve()
    storage_path.mkdir(parents=True, exist_ok=True)
    experiment_path = storage_path / study_id
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None
    from study.tune.interrupts import deliver, interruptible
    from study.tune.preflight import preflight

    with interruptible():  # loading data holds no record: Ctrl-C stops it at once
        preflight(spec, data_dir=data_dir)  # the dataset is there and the model runs

    wait = ResourceWait(spec, resource_wait_s)

    prewarming: list[bool] = []

    def between_steps(trials: list[Any]) -> None:
        deliver()  # a held Ctrl-C/SIGTERM ends the run here: every write of the step is done
        wait(trials)
        if not prewarming and any(str(getattr(t, "status", "")) == "RUNNING" for t in trials):
            prewarming.append(True)  # once the searcher has made its first suggestions
            _prewarm_finalization()

    def trainable_for(done: dict[str, dict[str, Any]]) -> Any:
        return tune.with_resources(
            make_trainable(spec, data_dir=data_dir, done=done),
            {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial},
        )

    def fresh_tuner(name: str, done: dict[str, dict[str, Any]]) -> Any:
        cap, warning = study_concurrency(spec, _alive_nodes())  # study.tune.cluster
        if warning is not None:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        return tune.Tuner(
            trainable_for(done),
            tune_config=tune.TuneConfig(
                search_alg=study_searcher(spec, max_concurrent=cap),
                scheduler=_scheduler(spec),
                num_samples=math.ceil(spec.total_trials / spec.pack_size),
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage_path),
                failure_config=tune.FailureConfig(max_failures=1),
                callbacks=[
                    MlflowRecorder(study_id, tracking_uri, spec.model_dump(mode="json"), link=link)
                ],
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
                verbose=0,
                log_to_file=True,
            ),
        )

    link = DriverLink(store, progress=progress, on_step=between_steps)
    with linked(study_id, link):
        restored = resume and tune.Tuner.can_restore(str(experiment_path))
        if restored:
            tuner = tune.Tuner.restore(
                str(experiment_path),
                trainable=trainable_for(recorded_results(store.trials_of(record))),
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=False,
            )
        else:
            tuner = fresh_tuner(study_id, recorded_results(store.trials_of(record)))
        tuner.fit()
        link.flush()  # every epoch written (raises a failed write)
        if restored:
            rows = store.trials_of(record)
            missing = spec.total_trials - len(ended_keys(rows))
            if missing > 0:  # the restored experiment ended without them: run them now
                print(
                    f"warning: the restored run left {missing} of {spec.total_trials} trials "
                    "unrecorded (its experiment state was saved while a fault stopped the "
                    "study); running them",
                    file=sys.stderr,
                    flush=True,
                )
                fresh_tuner(f"{study_id}-rerun", settled_results(rows)).fit()
                link.flush()
    if trials_done is not None:
        trials_done()
    summary = finalize(store, study_id)
    failure = all_failed(store.trials(study_id))
    if failure is not None:  # recorded (trials, summary, plots), but not a finished study
        raise StudyFailedError(failure)
    return summary


def all_failed(rows: list[dict[str, Any]]) -> str | None:
    """Why a study whose trials all failed is ``failed``: ``every trial failed (N of N);
    first error (<key>): <its last line>``, the first failed trial in the study's order. None
    when a trial ended with a result (finished, diverged or early stopped) or none failed: a
    partly failed study finishes, its failed trials counted in the summary.

        >>> rows = [{"key": "sgd/0/0", "status": "failed", "error": "Traceback...\\nValueError: x"}]
        >>> all_failed(rows)
        'every trial failed (1 of 1); first error (sgd/0/0): ValueError: x'
        >>> all_failed([*rows, {"key": "sgd/1/0", "status": "finished"}]) is None
        True
    """
    failed = [r for r in rows if r.get("status") == TrialStatus.FAILED]
    if not failed or any(r.get("status") in TRIAL_DONE for r in rows):
        return None
    lines = [line.strip() for line in str(failed[0].get("error") or "").splitlines()]
    last = next((line for line in reversed(lines) if line), "no error text recorded")
    return (
        f"every trial failed ({len(failed)} of {len(rows)}); "
        f"first error ({failed[0].get('key')}): {last}"
    )


class ResourceWait:
    """Fails a study whose trials wait too long for resources (the recorder calls it after
    every step of Tune's loop with the trials): when some trial is pending and none running
    for more than ``wait_s`` seconds, it raises :class:`StudyFailedError` saying what a trial
    asks for and what the cluster's nodes have. Without it such a study stays ``running``
    with no trial for good, holding the queue (e.g. a GPU study on a CPU-only cluster)."""

    def __init__(self, spec: StudySpec, wait_s: float, *, clock: Callable[[], float] | None = None):
        import time

        self.cpus = spec.resources.cpus_per_trial
        self.gpus = spec.resources.gpus_per_trial
        self.wait_s = float(wait_s)
        self.clock = clock or time.monotonic
        self._since: float | None = None

    def __call__(self, trials: list[Any]) -> None:
        statuses = [str(getattr(t, "status", "")) for t in trials]
        if "RUNNING" in statuses or "PENDING" not in statuses:
            self._since = None
            return
        now = self.clock()
        if self._since is None:
            self._since = now
        elif now - self._since > self.wait_s:
            raise StudyFailedError(self.message())

    def message(self) -> str:
        from study.tune.cluster import describe_nodes, unschedulable

        nodes = _alive_nodes()
        asks = (
            f"each trial asks for {self.cpus:g} CPUs and {self.gpus:g} GPUs on one node "
            "(resources.cpus_per_trial, resources.gpus_per_trial)"
        )
        if not nodes:
            why = "the Ray cluster's nodes could not be read"
        elif unschedulable(self.cpus, self.gpus, nodes):
            why = f"no node has that: the Ray cluster has {describe_nodes(nodes)}"
        else:
            why = (
                f"the cluster ({describe_nodes(nodes)}) has it, but other work held it the "
                "whole time"
            )
        return (
            f"no trial could start for {self.wait_s:g} s waiting for resources "
            f"(HPROBUST_RESOURCE_WAIT_S): {asks}; {why}"
        )


def _alive_nodes() -> list[dict[str, float]]:
    """Total resources of each alive node of the Ray cluster this driver is connected to."""
    try:
        import ray

        return [dict(n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive")]
    except Exception:  # a message about the wait must not fail on the cluster's state
        return []


def warm_up() -> None:
    """Import, in this thread, everything a study's driver imports on its way: torch, Ray
    Tune, the searcher, the recorder and the training loop, then the summary's and the plots'
    modules. A warm driver (:func:`study.driver.stand_by`) does it while it waits for its
    study, so that the study starts without it."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401
    import optuna.importance  # noqa: F401
    import ray.tune
    import ray.tune.schedulers  # noqa: F401
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401

    import study.analysis.figures
    import study.analysis.summary
    import study.records.store
    import study.train.pack
    import study.train.trial
    import study.tune.cluster
    import study.tune.preflight
    import study.tune.searcher
    import study.tune.tracking  # noqa: F401


def _prewarm_finalization() -> None:
    """Import what :func:`finalize` needs (the summary's statistics and importances, the
    plots' matplotlib: seconds of a study's finalization on a 2-core machine) in a daemon
    thread while the trials run (the driver mostly waits on them then), so that the study's
    records are complete sooner after its last trial. Nothing but imports: a failed one is
    left for ``finalize`` to raise.

    Started once a trial runs, not before: the searcher imports what it needs lazily in the
    driver's main thread as it makes its first suggestions (Optuna's QMC sampler imports
    ``scipy.stats.qmc``), and two threads importing one package's modules at once can each
    see the other's half-initialized module (a resumed driver died of ``ImportError: cannot
    import name 'check_random_state' from partially initialized module
    'scipy.stats._qmc'``)."""
    import threading

    def load() -> None:
        try:
            import matplotlib.backends.backend_agg
            import matplotlib.colors
            import matplotlib.figure
            import matplotlib.lines
            import matplotlib.patches
            import matplotlib.ticker  # noqa: F401
            import optuna.importance  # noqa: F401  (fANOVA: scikit-learn's forests)
            import scipy.stats  # noqa: F401

            import study.analysis.figures
            import study.analysis.summary  # noqa: F401
        except Exception:  # finalize imports them again and says what is wrong
            return

    threading.Thread(target=load, name="hprobust-prewarm", daemon=True).start()


def finalize(store: Any, study_id: str) -> dict[str, Any]:
    """Summarize the recorded trials and store summary.json, trials.csv and the plots."""
    from study.analysis import plots, summarize, summary_args

    record = store.get(study_id)
    rows = store.trials_of(record)
    summary = summarize(rows, num_classes=record.num_classes, **summary_args(record.spec))
    with tempfile.TemporaryDirectory(prefix="hprobust-plots-") as tmp:
        paths = plots(rows, tmp, num_classes=record.num_classes, summary=summary)
        store.store_results(study_id, summary, rows, [Path(p) for p in paths])
    return summary.model_dump(mode="json")
