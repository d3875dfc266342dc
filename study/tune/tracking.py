"""The one MLflow writer of a study: :class:`MlflowRecorder`, a Ray Tune ``Callback`` in the
study driver that turns trial events into MLflow runs keyed by trial identity
(``<arm>/<point>/<seed>``), so that trials never talk to MLflow and a restored Tuner writes
each key once. The events and what each writes: docs/design.md#what-mlflow-shows.

The driver hands the recorder what lives only in its process (the store, the progress and
resource-wait hooks) as one :class:`DriverLink`; the callback pickles without it (Ray Tune
keeps it in ``tuner.pkl``), and a restored recorder finds its link again by study id
(:func:`linked`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from study.numbers import finite
from study.tune.batching import EPOCHS_KEY
from study.tune.searcher import ARM_KEY, INDEX_KEY, PACK_KEY, POINT_KEY, trial_key, trial_members
from study.vocab import RunKind, Tag, TrialStatus

if TYPE_CHECKING:
    from study.records.store import StudyStore

EPOCH_METRICS = ("train_loss", "val_loss", "val_acc", "lr", "epoch_time_s")
#: Result key -> MLflow metric name where they differ: the param ``lr`` is the base rate.
METRIC_NAMES = {"lr": "scheduled_lr"}
#: At most this many MLflow writes wait in the recorder's queue; beyond it, Tune's loop waits
#: for the oldest. A slow tracking server (a remote MLflow behind its auth app answers in
#: 0.5-1 s) then slows the study down instead of letting its records fall ever further behind
#: the trials (the progress users see, what a crash loses, what a cancel waits for).
MAX_QUEUED_WRITES = 8
#: Metrics logged once when a trial ends: the last epoch's values.
FINAL_METRICS = {"final_val_acc": "val_acc", "final_val_loss": "val_loss",
                 "final_train_loss": "train_loss"}  # fmt: skip


@dataclass
class DriverLink:
    """What the driver process gives the recorder of one study, and how it reaches it back.

    Attributes:
        store: the driver's store (its MLflow client writes every run).
        progress: called with :meth:`MlflowRecorder.progress` after every recorded event.
        on_step: called with the trials after every step of Tune's loop; it may raise to end
            the run (:class:`study.tune.runner.ResourceWait`).
        recorder: the recorder Tune runs, set by it when Tune sets it up (after a restore
            that is a copy unpickled from ``tuner.pkl``, not the one the driver built).
    """

    store: StudyStore
    progress: Callable[[dict[str, Any]], None] | None = None
    on_step: Callable[[list], None] | None = None
    recorder: MlflowRecorder | None = None

    def flush(self) -> None:
        """Wait for the recorder's queued MLflow writes; raise the first that failed."""
        if self.recorder is not None:
            self.recorder.flush()

    def close(self) -> None:
        """Finish the recorder's queued writes and stop its writer thread."""
        if self.recorder is not None:
            self.recorder.close()


#: study id -> the link of the study this process drives. The one process registry, for the
#: recorder that ``Tuner.restore`` unpickles: nothing else can hand it its link.
_LINKS: dict[str, DriverLink] = {}


@contextmanager
def linked(study_id: str, link: DriverLink) -> Iterator[DriverLink]:
    """Make ``link`` the driver link of ``study_id`` in this process while the block runs (a
    restored recorder finds it here); at the end, close the recorder's writer and forget it."""
    _LINKS[study_id] = link
    try:
        yield link
    finally:
        if _LINKS.get(study_id) is link:
            del _LINKS[study_id]
        link.close()


class MlflowRecorder(Callback):
    """Writes every trial of one study to MLflow (see the module docstring).

    Args:
        study_id: the study.
        tracking_uri: the MLflow store (a store of its own when it has no driver link).
        spec: the study's spec as a JSON-able dict (params of each arm).
        link: the driver's :class:`DriverLink` (not pickled; a restored recorder finds it in
            :func:`linked`'s registry).
    """

    def __init__(
        self,
        study_id: str,
        tracking_uri: str,
        spec: dict[str, Any],
        *,
        link: DriverLink | None = None,
    ) -> None:
        self.study_id = study_id
        self.tracking_uri = tracking_uri
        self.spec = spec
        self._given_link = link
        self._reset()

    def _reset(self) -> None:
        self._store: StudyStore | None = None
        self._writer: Any = None  # ThreadPoolExecutor(max_workers=1): the one writer thread
        self._pending: list[Any] = []  # futures of writes not known to be done
        self._terminal: dict[str, dict[str, Any]] = {}  # key -> row of its terminal run
        self._stale: dict[str, list[Any]] = {}  # key -> runs to delete on (re)start
        #: slot (tune trial id, or <id>#<j> in a pack) -> its run: the id, or the queued creation
        self._run_of: dict[str, Any] = {}
        self._parent: str | None = None  # the study run (parent of every trial run)
        self._skip: set[str] = set()  # slots whose key is already recorded
        self._last: dict[str, dict[str, Any]] = {}
        self._best: dict[str, float] = {}
        self._first_error: dict[str, str] = {}
        self._counts = {
            TrialStatus.FINISHED: 0,
            "diverged": 0,
            TrialStatus.FAILED: 0,
            TrialStatus.EARLY_STOPPED: 0,
        }

    def __getstate__(self) -> dict[str, Any]:
        return {"study_id": self.study_id, "tracking_uri": self.tracking_uri, "spec": self.spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._given_link = None
        self._reset()

    # ---- setup ----------------------------------------------------------------------------

    @property
    def link(self) -> DriverLink | None:
        """The driver's link: the one given, else (a restored recorder) the registered one."""
        return self._given_link or _LINKS.get(self.study_id)

    @property
    def store(self) -> StudyStore:
        if self._store is None:
            link = self.link
            if link is None:
                from study.records.store import StudyStore

                self._store = StudyStore(self.tracking_uri)
            else:
                self._store = link.store
        return self._store

    def setup(self, **info: Any) -> None:
        from study.records.layout import trial_row

        self.close()
        self._reset()
        from concurrent.futures import ThreadPoolExecutor

        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hprobust-mlflow")
        if self.link is not None:
            self.link.recorder = self  # the driver flushes and closes this one
        for run in self.store.trial_runs(self.study_id):
            row = trial_row(run)
            key = row["key"]
            if key is None:
                continue
            if run.info.status in ("FINISHED", "FAILED") and key not in self._terminal:
                self._terminal[key] = row
                self._count(row)
            else:
                self._stale.setdefault(key, []).append(run.info.run_id)
        self._emit()

    # ---- the writer thread ----------------------------------------------------------------

    def _submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Queue a write (in order) and return its future; a failed earlier write is raised
        here. With more than :data:`MAX_QUEUED_WRITES` queued, wait for the oldest first.
        Not set up (no Tune loop, no writer thread): write now, return its result."""
        self._check()
        if self._writer is None:
            return fn(*args, **kwargs)
        future = self._writer.submit(fn, *args, **kwargs)
        self._pending.append(future)
        while len(self._pending) > MAX_QUEUED_WRITES:
            self._pending.pop(0).result()  # raises the write's exception
        return future

    def _check(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()  # raises the write's exception

    def flush(self) -> None:
        """Wait for every queued write; raise the first that failed."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Finish the queued writes and stop the writer thread (errors were raised by flush)."""
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.shutdown(wait=True)
            self._writer, self._pending = None, []

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        hook = self.link.on_step if self.link is not None else None
        if hook is not None:
            hook(trials)

    def _count(self, row: dict[str, Any]) -> None:
        status = row["status"]
        if status == TrialStatus.FAILED:
            self._counts[TrialStatus.FAILED] += 1
            return
        self._counts[TrialStatus.FINISHED] += 1
        self._counts[TrialStatus.EARLY_STOPPED] += status == TrialStatus.EARLY_STOPPED
        self._counts["diverged"] += bool(row["diverged"])
        if status == TrialStatus.FINISHED and finite(row.get("val_acc")) is not None:
            arm = row["arm"]
            self._best[arm] = max(self._best.get(arm, -1.0), row["val_acc"])

    def progress(self) -> dict[str, Any]:
        """finished / running / diverged / failed counts and the best val_acc per arm."""
        return {
            **self._counts,
            "running": len(self._run_of),
            "best": dict(self._best),
        }

    def _emit(self) -> None:
        hook = self.link.progress if self.link is not None else None
        if hook is not None:
            hook(self.progress())

    # ---- trial events ---------------------------------------------------------------------
    #
    # A Tune trial trains one trial, or a pack of them (``config["__pack"]``). Every trial it
    # trains has a *slot*: the Tune trial id, or ``<id>#<j>`` for the j-th member of a pack;
    # runs, skips and last results are kept per slot, keys come from each member's config.

    def _slots(self, trial: Any) -> list[tuple[str, dict[str, Any]]]:
        if PACK_KEY not in trial.config:
            return [(trial.trial_id, trial.config)]
        members = trial_members(trial.config)
        return [(f"{trial.trial_id}#{j}", member) for j, member in enumerate(members)]

    def _key(self, config: dict[str, Any]) -> str:
        return trial_key(config, int(self.spec.get("seed", 0)))

    def _params(self, config: dict[str, Any]) -> dict[str, str]:
        arm = next(a for a in self.spec["arms"] if a["name"] == config[ARM_KEY])
        hparams = {k: v for k, v in arm.items() if k not in ("name", "optimizer")}
        seed = int(self.spec.get("seed", 0)) + int(config.get(INDEX_KEY, 0))
        params: dict[str, Any] = {
            "arm": arm["name"],
            "optimizer": arm["optimizer"],
            "lr": config["lr"],
            "init": config["init"],
            "init_scale": config.get("init_scale", 1.0),
            "seed": seed,
            "point": config[POINT_KEY],
            **hparams,
        }
        for name in ("dataset", "model", "epochs", "batch_size", "schedule", "precision"):
            params.setdefault(name, self.spec.get(name))
        return {
            k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list) else str(v)
            for k, v in params.items()
        }

    def _run_name(self, config: dict[str, Any]) -> str:
        """``<arm> lr=<lr> <init> s<seed>`` (``scale=<s>`` before the seed if searched)."""
        from study.records.formats import trial_run_name

        seed = int(self.spec.get("seed", 0)) + int(config.get(INDEX_KEY, 0))
        scaled = (self.spec.get("search") or {}).get("init_scale") is not None
        scale = float(config.get("init_scale", 1.0)) if scaled else None
        return trial_run_name(config[ARM_KEY], config["lr"], config["init"], seed, scale)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        todo = []
        for slot, config in self._slots(trial):
            if self._key(config) in self._terminal:
                self._skip.add(slot)
            else:
                todo.append((slot, config))
        if not todo:
            return
        for slot, config in todo:
            self._start(trial, slot, config)
        self._emit()

    def _start(self, trial: Any, slot: str, config: dict[str, Any]) -> None:
        """Queue the creation of the slot's run (after the deletion of its key's stale runs):
        the trial's actor does not wait for MLflow. The slot's run is the creation's future
        until the writer has made it; every later write of the slot is queued behind it on
        the same thread and reads its id there (:func:`_run_id`)."""
        key = self._key(config)
        stale: list[Any] = self._stale.pop(key, [])
        if slot in self._run_of:  # started again without a recover: start over
            stale.append(self._run_of.pop(slot))
        params = self._params(config)
        if self._parent is None:
            self._parent = self.store.study_run_id(self.study_id)
        tags = {
            Tag.PARENT_RUN: self._parent,
            Tag.KIND: RunKind.TRIAL,
            Tag.STUDY_ID: self.study_id,
            Tag.ARM: params["arm"],
            Tag.TRIAL_KEY: key,
            Tag.INIT: params["init"],
            Tag.SEED: params["seed"],
            Tag.STATUS: TrialStatus.RUNNING,
            Tag.TUNE_TRIAL_ID: trial.trial_id,
            Tag.DIVERGED: "false",
        }
        if slot != trial.trial_id:
            tags[Tag.PACK_SIZE] = str(len(trial_members(trial.config)))
        if trial.trial_id in self._first_error:
            tags[Tag.RETRIES] = "1"
            tags[Tag.FIRST_ERROR] = self._first_error[trial.trial_id][-4900:]
        experiment_id = self.store.experiment_id(self.study_id)
        self._run_of[slot] = self._submit(
            self._create, stale, experiment_id, tags, self._run_name(config), params
        )
        self._last.pop(slot, None)

    def _create(
        self,
        stale: list[Any],
        experiment_id: str,
        tags: dict[str, str],
        run_name: str,
        params: dict[str, str],
    ) -> str:
        """(On the writer thread.) Delete the ``stale`` runs, create the trial's run with its
        ``tags`` and ``params``; returns its id."""
        from mlflow.entities import Param

        client = self.store.client
        for run in stale:
            client.delete_run(_run_id(run))
        run = client.create_run(experiment_id, tags=tags, run_name=run_name)
        client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
        return run.info.run_id

    def _write(self, run: Any, **batch: Any) -> None:
        """(On the writer thread.) One ``log_batch`` to the slot's ``run``."""
        self.store.client.log_batch(_run_id(run), **batch)

    def _close(self, run: Any, status: str, error: str | None = None, **batch: Any) -> None:
        """(On the writer thread.) The run's last ``log_batch`` (and its ``error`` text as
        ``error.txt``), then the run closed with ``status``."""
        run_id = _run_id(run)
        client = self.store.client
        client.log_batch(run_id, **batch)
        if error is not None:
            client.log_text(run_id, error, "error.txt")
        client.set_terminated(run_id, status)

    def _delete(self, run: Any) -> None:
        """(On the writer thread.) Delete the run (a trial that Tune will retry)."""
        self.store.client.delete_run(_run_id(run))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if PACK_KEY not in trial.config:  # a batch of epochs: the earlier ones, then its own
            self._log_epoch(trial.trial_id, result, earlier=result.get(EPOCHS_KEY) or ())
            return
        epochs = int(self.spec.get("epochs", 0))
        slots = self._slots(trial)
        for pack in (*(result.get(EPOCHS_KEY) or ()), result):  # a batch: in order
            members = list(pack.get(PACK_KEY) or [])
            for j, (slot, config) in enumerate(slots):
                member = members[j] if j < len(members) else None
                if not member or slot not in self._run_of:
                    continue
                last = self._last.get(slot)
                if last is not None and last.get("epoch") == member.get("epoch"):
                    continue  # a member that stopped earlier: nothing new
                self._log_epoch(slot, member, where=result)
                if member.get("diverged") or int(member.get("epoch") or 0) >= epochs:
                    self._finish(slot, config, member)  # done: recorded at once

    def _log_epoch(
        self,
        slot: str,
        result: dict[str, Any],
        where: dict[str, Any] | None = None,
        earlier: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Log one epoch of ``slot``, after the ``earlier`` epochs of the same report (a
        trial's batch, :mod:`study.tune.batching`), in one MLflow write; ``where``: the Tune
        result naming the node (a pack's members share their pack's)."""
        where = result if where is None else where
        run = self._run_of.get(slot)
        if run is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(METRIC_NAMES.get(name, name), float(epoch[name]), now, _epoch_of(epoch))
            for epoch in (*earlier, result)
            for name in EPOCH_METRICS
            if finite(epoch.get(name)) is not None
        ]
        tags = []
        if slot not in self._last:  # the first result: where the trial runs
            from mlflow.entities import RunTag

            for name, tag in (("node_id", Tag.NODE_ID), ("node_ip", Tag.NODE_IP)):
                if isinstance(where.get(name), str) and where[name]:
                    tags.append(RunTag(tag, where[name]))
        if metrics or tags:
            self._submit(self._write, run, metrics=metrics, tags=tags)
        self._last[slot] = {k: v for k, v in result.items() if k != EPOCHS_KEY}

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        for slot, config in self._slots(trial):
            if slot not in self._run_of:
                continue
            last = self._last.get(slot)
            if last is None and slot == trial.trial_id:
                last = dict(trial.last_result or {})
            self._finish(slot, config, last or {})

    def _finish(self, slot: str, config: dict[str, Any], last: dict[str, Any]) -> None:
        """Queue the trial's last writes (its end metrics and status, then the run closed)
        and count it ended."""
        run = self._run_of.pop(slot, None)
        if run is None:
            return
        from mlflow.entities import Metric, RunTag

        self._last.pop(slot, None)
        diverged = bool(last.get("diverged"))
        epoch = int(last.get("epoch", 0) or 0)
        epochs = int(self.spec.get("epochs", 0))
        status = TrialStatus.FINISHED if diverged or epoch >= epochs else TrialStatus.EARLY_STOPPED
        now = int(time.time() * 1000)
        final = [
            Metric(name, float(last[key]), now, epoch)
            for name, key in FINAL_METRICS.items()
            if finite(last.get(key)) is not None
        ]
        self._submit(
            self._close,
            run,
            "FINISHED",
            metrics=[
                Metric("epochs_completed", float(epoch), now, epoch),
                Metric("diverged", float(diverged), now, epoch),
                *final,
            ],
            params=final_params(last),
            tags=[RunTag(Tag.DIVERGED, str(diverged).lower()), RunTag(Tag.STATUS, status)],
        )
        row = {
            "status": status,
            "diverged": diverged,
            "arm": config[ARM_KEY],
            "val_acc": last.get("val_acc"),
        }
        self._terminal[self._key(config)] = row
        self._count(row)
        self._emit()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._first_error[trial.trial_id] = _error_text(trial)
        for slot, _ in self._slots(trial):
            run = self._run_of.pop(slot, None)
            if run is not None:
                self._submit(self._delete, run)
            self._last.pop(slot, None)
        self._emit()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        slots = [(s, c) for s, c in self._slots(trial) if s not in self._skip]
        if not slots:
            return
        if not any(slot in self._run_of for slot, _ in slots):  # failed before it started
            self.on_trial_start(iteration, trials, trial)
        from mlflow.entities import Metric, RunTag

        text = _error_text(trial)
        for slot, config in slots:
            run = self._run_of.pop(slot, None)
            if run is None:
                continue
            self._submit(
                self._close,
                run,
                "FAILED",
                metrics=[Metric("diverged", 0.0, int(time.time() * 1000), 0)],
                tags=[
                    RunTag(Tag.STATUS, TrialStatus.FAILED),
                    RunTag(Tag.DIVERGED, "false"),
                    RunTag(Tag.ERROR, text[-4900:]),
                ],
                error=text,
            )
            self._last.pop(slot, None)
            row = {"status": TrialStatus.FAILED, "diverged": False, "arm": config[ARM_KEY]}
            self._terminal[self._key(config)] = row
            self._count(row)
        self._emit()


def _run_id(run: Any) -> str:
    """A slot's run id: ``run`` itself, or the result of the queued creation it stands for
    (read on the writer thread, where the creation ran before: it is done)."""
    return run if isinstance(run, str) else run.result()


def final_params(last: dict[str, Any]) -> list[Any]:
    """The parameters ``acc`` and ``loss`` of a trial that ended: its last validation accuracy
    and loss rounded for display (the MLflow UI shows a metric with every digit; the metrics
    ``final_val_acc`` / ``final_val_loss`` keep them)."""
    from mlflow.entities import Param

    from study.records.formats import shown

    values = {"acc": shown(last.get("val_acc")), "loss": shown(last.get("val_loss"))}
    return [Param(name, value) for name, value in values.items() if value is not None]


def _epoch_of(result: dict[str, Any]) -> int:
    return int(result.get("epoch", result.get("training_iteration", 0)))


def _error_text(trial: Any) -> str:
    """The trial's latest error: its local error file (written before the retry), else the
    copy in Tune's storage."""
    from pathlib import Path

    text = None
    try:
        local = trial.error_file
        if local and Path(local).is_file():
            text = Path(local).read_text()
        if not text:
            text = trial.get_error()
    except Exception:  # the error file may be gone; the status still matters
        text = None
    return str(text) if text else "trial failed (no error text recorded)"
