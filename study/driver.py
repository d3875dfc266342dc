"""The study driver: the Ray Job entrypoint that runs one recorded study.

``python -m study.driver --study-id ID --tracking-uri URI --storage PATH --data-dir DIR
[--resume] [--ray-address ADDR] [--num-cpus N] [--standby-s S]`` reads the spec from the
study's MLflow record, sets the study ``running``, runs it
(:func:`study.tune.runner.run_study`) and sets it ``finished``, ``failed`` (with the error: the
driver's own, every trial failed, or no trial could start for ``--resource-wait-s``) or
``cancelled`` (SIGINT/SIGTERM). Exit code 0, 1 or 130. A signal is held until the driver
holds no record (:mod:`study.tune.interrupts`): between two steps of Ray Tune's loop, or at
once while Ray starts and the dataset loads; a second one stops it at once.

A fault that heals (:func:`study.faults.classify`: the disk is full, MLflow or Ray is
unreachable) does not fail the study: the driver records the error as the study's
``last_error`` if it can, leaves the study ``running`` and exits with
:data:`study.faults.EXIT_TRANSIENT` (75); the service resubmits it with ``--resume`` once
the fault has cleared.

A warm driver (``--standby-s S``): the service reserves a study id before any study has it
and submits this driver for it in advance. The driver joins Ray and imports everything a
study needs (:func:`stand_by`), then waits up to ``S`` seconds for a study to be recorded
under that id and runs it as above; if none is, it exits 0 having written nothing. A study
posted to a warm service thus starts without waiting for a Ray job, a Python process and its
imports (:mod:`service.scheduler`).

Ray: inside a Ray Job (``RAY_ADDRESS`` set) or with ``--ray-address`` it joins that cluster;
otherwise it starts a fresh local Ray in a private temp dir, in its own process group's
children, and shuts it down at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from study.errors import StudyStateError
from study.faults import EXIT_TRANSIENT, classify
from study.vocab import StudyStatus, Tag


def start_ray(
    address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None
) -> str | None:
    """Join ``address`` (or ``RAY_ADDRESS``), else start a local Ray; returns the temp dir of
    a local Ray (to remove after ``ray.shutdown()``), or None."""
    import ray

    if ray.is_initialized():
        return None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **kwargs)
        return None
    temp_dir = temp_dir or tempfile.mkdtemp(prefix="hpr-ray-", dir="/tmp")
    ray.init(address="local", num_cpus=num_cpus, _temp_dir=temp_dir, **kwargs)
    return temp_dir


def stop_ray(temp_dir: str | None) -> None:
    import ray

    ray.shutdown()
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def drive(
    study_id: str,
    *,
    tracking_uri: str,
    storage: str,
    data_dir: str | None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    ray_temp_dir: str | None = None,
    resource_wait_s: float | None = None,
    secret: bytes | None = None,
    trials_done: Callable[[], None] | None = None,
    store: Any = None,
) -> dict[str, Any]:
    """Run the recorded study ``study_id`` with its status kept in MLflow; returns the summary.

    The study ends ``finished``; ``failed`` with the error (every trial failed, no trial could
    start for ``resource_wait_s`` seconds, default :data:`study.tune.runner.RESOURCE_WAIT_S`, or
    the driver itself failed); or ``cancelled`` (SIGTERM/SIGINT). Recording the end closes
    every trial run still open (:meth:`study.records.store.StudyStore.set_status`).

    Only a study whose signature holds runs (:mod:`study.records.signing`; ``secret`` None: the one
    in the environment); another is marked ``failed`` with why, and nothing runs. Its status is
    the one the service sealed: a status tag written by anyone else is ignored and reported,
    and a study whose seal does not hold is not run (StatusSealError; nothing is written but
    the report).

    ``trials_done`` is called once every trial has ended and is recorded, before the
    summary and the plots (:func:`study.tune.runner.run_study`). ``store``: a
    :class:`~study.records.store.StudyStore` over ``tracking_uri`` to use (a warm driver's,
    :func:`stand_by`); None: a new one.

    The process is expected to be set up by its entry point
    (:func:`study.runtime.configure_process`, as :func:`main` and ``hprobust run`` do): among
    others, without it Ray Tune's own SIGINT handler returns from the run as if it were done,
    and an interrupted study would not end ``cancelled``.

    Raises:
        StudyNotFoundError: no such study.
        StudyStateError: the study already finished, or is not queued and ``resume`` is False.
        SignatureError: the study is unsigned or altered, or there is no secret to check it.
    """
    from study.records.signing import SignatureError, StatusSealError
    from study.records.store import StudyStore
    from study.spec.study_spec import StudySpec
    from study.tune.interrupts import deferred, interruptible, reclaim

    with deferred():  # SIGINT/SIGTERM never land inside a store call (study.tune.interrupts)
        store = store if store is not None else StudyStore(tracking_uri, secret=secret)
        record = store.get(study_id)
        problem = store.signature_problem(study_id)
        if problem is not None:  # never run: marked failed with why
            store.refuse(study_id, problem)
            raise SignatureError(problem)
        check = store.check_status(study_id)  # only a status the service sealed is acted on
        if not check.sealed:
            raise StatusSealError(f"study {study_id} is not run: {check.problem}")
        record = store.get(study_id)
        if record.status == StudyStatus.FINISHED:
            raise StudyStateError(f"study {study_id} is already finished; nothing to resume")
        if not resume and record.status != StudyStatus.QUEUED:
            raise StudyStateError(
                f"study {study_id} is {record.status}, not queued: resume it with --resume"
            )
        spec = StudySpec.model_validate(record.spec)
        import ray

        owns_ray = not ray.is_initialized()  # a caller's Ray stays up
        try:
            with interruptible():  # starting Ray holds no record: a signal stops it at once
                temp_dir = start_ray(ray_address, num_cpus=num_cpus, temp_dir=ray_temp_dir)
            reclaim()  # ray.init sets SIGTERM to sys.exit: the cancel would end the study failed
        except KeyboardInterrupt:
            if owns_ray:
                stop_ray(None)
            store.set_status(study_id, StudyStatus.CANCELLED)
            raise
        try:
            from study.tune.runner import RESOURCE_WAIT_S, run_study

            store.set_status(study_id, StudyStatus.RUNNING)
            summary = run_study(
                spec,
                study_id=study_id,
                tracking_uri=tracking_uri,
                storage_path=storage,
                data_dir=data_dir,
                resume=resume,
                progress=progress,
                resource_wait_s=RESOURCE_WAIT_S if resource_wait_s is None else resource_wait_s,
                trials_done=trials_done,
            )
        except KeyboardInterrupt:
            store.set_status(study_id, StudyStatus.CANCELLED)
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            fault = classify(exc)
            if fault is not None:  # one line: the service quotes the driver's last line
                first = next((line for line in str(exc).splitlines() if line.strip()), "")
                line = f"{fault}: {type(exc).__name__}: {first.strip()}"[:500]
                _note_fault(store, study_id, line)
                raise TransientFault(line) from exc
            store.set_error(study_id, message)
            store.set_status(study_id, StudyStatus.FAILED)
            raise
        except BaseException as exc:
            store.set_error(study_id, f"{type(exc).__name__}: {exc}")
            store.set_status(study_id, StudyStatus.FAILED)
            raise
        finally:
            if owns_ray:
                stop_ray(temp_dir)
        store.set_status(study_id, StudyStatus.FINISHED)
        return summary


#: How often a warm driver looks for its study (one read of the store each time): a database
#: read costs a few ms; a tracking server's request more (its login app may check a password).
STANDBY_POLL_S = 0.25
STANDBY_POLL_HTTP_S = 1.0


def standby_poll_s(tracking_uri: str) -> float:
    """How often a warm driver on ``tracking_uri`` looks for its study.

    >>> standby_poll_s("sqlite:////data/mlflow.db"), standby_poll_s("http://mlflow:5000")
    (0.25, 1.0)
    """
    remote = tracking_uri.lower().startswith(("http://", "https://"))
    return STANDBY_POLL_HTTP_S if remote else STANDBY_POLL_S


def stand_by(
    study_id: str,
    *,
    tracking_uri: str,
    wait_s: float,
    ray_address: str | None = None,
    poll_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """A warm driver's wait: join Ray, import what a study needs
    (:func:`study.tune.runner.warm_up`), then look for the study ``study_id`` in the store
    every ``poll_s`` seconds (default :func:`standby_poll_s`). Returns the
    :class:`~study.records.store.StudyStore` it read it with once the study is recorded
    (queued, or anything but still being created), or None if it is not within ``wait_s``
    seconds of the call. Nothing is written either way; a read that fails for a fault that
    heals (:func:`study.faults.classify`: the store unreachable or full) is made again at
    the next poll. A signal (SIGINT/SIGTERM: the service stopping the warm driver) stops it
    at once, between reads. Meanwhile its session runs at the trials' niceness
    (:func:`study.runtime.background_share`): the imports of a driver put up while a study
    trains do not take the cores from the API.

    Call it inside :func:`study.tune.interrupts.deferred` in the main thread, as :func:`main`
    does.
    """
    from study.errors import ConfigError
    from study.records.store import StudyStore
    from study.runtime import DEFAULT_TRIAL_NICE, background_share, trial_nice
    from study.tune.interrupts import interruptible, reclaim
    from study.tune.runner import warm_up

    poll_s = standby_poll_s(tracking_uri) if poll_s is None else poll_s
    deadline = clock() + wait_s
    try:
        nice = trial_nice()
    except ConfigError:  # the study's driver says so, once it has a study to fail
        nice = DEFAULT_TRIAL_NICE
    # ahead of its study, the driver's work (seconds of imports) yields the cores to the API
    # and the trials of running studies, as trials do; its study runs at its usual share
    with background_share(nice):
        with interruptible():
            start_ray(ray_address)
            warm_up()
        reclaim()  # ray.init set SIGTERM to sys.exit
        store = StudyStore(tracking_uri)
        found = await_study(store, study_id, deadline=deadline, poll_s=poll_s, clock=clock)
    return store if found else None


def await_study(
    store: Any,
    study_id: str,
    *,
    deadline: float,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Read ``store`` for the study every ``poll_s`` seconds until it is recorded (True) or
    ``clock()`` reaches ``deadline`` (False). A read that fails for a fault that heals
    (:func:`study.faults.classify`) is made again at the next poll; any other error is
    raised. Between reads a signal stops it at once
    (:func:`study.tune.interrupts.interruptible`)."""
    from study.errors import StudyNotFoundError
    from study.tune.interrupts import interruptible

    while True:
        try:
            store.state(study_id)
            return True
        except StudyNotFoundError:
            pass
        except Exception as exc:  # a store that is down for a moment: read again later
            if classify(exc) is None:
                raise
        if clock() >= deadline:
            return False
        with interruptible():
            time.sleep(max(0.0, min(poll_s, deadline - clock())))


class TransientFault(RuntimeError):
    """The study stopped for a fault that heals; it stays ``running`` for a resubmission."""


def _note_fault(store: Any, study_id: str, message: str) -> None:
    """Record the fault as the study's last error if the store can be written (a full disk or
    an unreachable MLflow may not allow it; the service sees the fault itself then)."""
    with contextlib.suppress(Exception):
        store.set_tags(study_id, {Tag.LAST_ERROR: message})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.driver", description=__doc__)
    parser.add_argument("--study-id", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--storage", required=True, help="Ray Tune storage path")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--ray-address", default=None)
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--ray-temp-dir", default=None, help="temp dir of a local Ray")
    parser.add_argument(
        "--resource-wait-s",
        type=float,
        default=None,
        help="fail the study when no trial could start for this long (default 300)",
    )
    parser.add_argument(
        "--standby-s",
        type=float,
        default=None,
        help="a warm driver: join Ray and import now, then wait this long for the study to be "
        "recorded (its id reserved by the service); exit 0 if it never is",
    )
    args = parser.parse_args(argv)
    from study.runtime import configure_process
    from study.tune.interrupts import deferred

    configure_process()
    store = None
    if args.standby_s is not None:
        with deferred():
            try:
                store = stand_by(
                    args.study_id,
                    tracking_uri=args.tracking_uri,
                    wait_s=args.standby_s,
                    ray_address=args.ray_address,
                )
            except KeyboardInterrupt:
                print(f"warm driver for {args.study_id} stopped; no study came", file=sys.stderr)
                return 130
        if store is None:
            print(f"warm driver: no study {args.study_id} came in {args.standby_s:g} s")
            return 0
    try:
        drive(
            args.study_id,
            tracking_uri=args.tracking_uri,
            storage=args.storage,
            data_dir=args.data_dir,
            resume=args.resume,
            ray_address=args.ray_address,
            num_cpus=args.num_cpus,
            ray_temp_dir=args.ray_temp_dir,
            resource_wait_s=args.resource_wait_s,
            store=store,
        )
    except KeyboardInterrupt:
        print(f"study {args.study_id} cancelled", file=sys.stderr)
        return 130
    except TransientFault as exc:
        print(f"study {args.study_id} paused: {exc} (it resumes when this clears)", file=sys.stderr)
        return EXIT_TRANSIENT
    except Exception as exc:
        print(f"study {args.study_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"study {args.study_id} finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
