"""The warm driver (issue 24): while a slot is free the scheduler keeps one study driver
started ahead for a reserved study id, and the next study posted takes that id and runs in
that job at once. Against a real Ray head (real drivers: ``python -m study.driver``), a real
MLflow store (SQLite) and, for the POST, the real API under uvicorn; the scheduler's passes
are made by the tests (``step``), so what each pass decides is asserted, not timed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from service.jobs import StudyJobs
from service.scheduler import Scheduler, standby_margin
from service.stack import Child
from study.records.ids import STUDY_ID_RE, new_study_id
from tests.service.conftest import tiny_spec, wait_for

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789"


def real_jobs(ray_head: Child, tracking_uri: str, tmp_path: Path) -> StudyJobs:
    return StudyJobs(
        ray_head.url,
        token=ray_head.extra["token"],
        tracking_uri=tracking_uri,
        storage=tmp_path / "ray_results",
        data_dir=tmp_path / "datasets",
    )


def jobs_of(jobs: StudyJobs, study_id: str) -> list[Any]:
    """Every job on the cluster whose metadata names ``study_id``."""
    return [
        job
        for job in jobs._get_client().list_jobs()
        if (job.metadata or {}).get("hprobust.study_id") == study_id
    ]


def running(jobs: StudyJobs, ref: Any) -> Any:
    """Wait until the warm driver's job runs (its Python started)."""
    return wait_for(
        lambda: (r := jobs.status(ref)).status == "RUNNING" and r,
        timeout_s=180,
        what=f"the warm driver {ref.submission_id} to run",
    )


def step_until(scheduler: Scheduler, predicate: Any, *, what: str, timeout_s: float = 240) -> Any:
    def check() -> Any:
        scheduler.step()
        return predicate()

    return wait_for(check, timeout_s=timeout_s, what=what)


def test_a_posted_study_takes_the_warm_driver_and_runs_in_its_job(
    ray_head: Child, tmp_path: Path
) -> None:
    """POST /studies on a service whose warm driver waits: the study is recorded under the
    id reserved for that driver, runs in its job (the study's only job, attempt 0), and
    finishes; a second POST while the one slot is taken gets a fresh id and waits its turn;
    once the slot is free again, a new warm driver (a new id) waits for the next study."""
    from service.core.config import Settings
    from service.main import create_app
    from study.records.store import StudyStore, sqlite_uri
    from tests.service.test_studies import serve_in_thread

    store = StudyStore(sqlite_uri(tmp_path))
    jobs = real_jobs(ray_head, store.tracking_uri, tmp_path)
    settings = Settings(data_dir=tmp_path, api_token=TOKEN, warm_driver_s=600)
    app = create_app(settings, store=store, jobs=jobs, run_scheduler=False)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(app) as url:
        scheduler: Scheduler = app.state.scheduler
        assert scheduler.standby_s == 600
        scheduler.step()
        warm = scheduler.standby
        assert warm is not None and warm.standby and STUDY_ID_RE.fullmatch(warm.study_id)
        assert warm.submission_id == warm.study_id and warm.attempt == 0
        running(jobs, warm)

        first = httpx.post(f"{url}/studies", json=tiny_spec(), headers=headers, timeout=60)
        assert first.status_code == 202, first.text
        assert first.json()["id"] == warm.study_id  # it took the reserved id
        assert scheduler.standby is None and scheduler.take_standby() is None  # one slot
        second = httpx.post(f"{url}/studies", json=tiny_spec(), headers=headers, timeout=60)
        assert second.status_code == 202 and second.json()["id"] != warm.study_id
        second_id = second.json()["id"]

        scheduler.step()  # the first study is followed in the warm driver's job
        assert scheduler.job_of(warm.study_id).submission_id == warm.submission_id
        assert scheduler.standby is None  # no slot free: no new warm driver
        assert jobs.find(second_id) is None  # the second waits for the slot
        step_until(
            scheduler,
            lambda: store.state(warm.study_id).status == "finished",
            what="the first study to finish",
        )
        assert [j.submission_id for j in jobs_of(jobs, warm.study_id)] == [warm.study_id]
        step_until(
            scheduler,
            lambda: store.state(second_id).status == "finished",
            what="the second study to finish",
        )
        assert jobs.find(second_id).submission_id == second_id  # a job of its own, submitted
        step_until(scheduler, lambda: scheduler.standby, what="a new warm driver")
        final = scheduler.standby
        assert final.study_id not in (warm.study_id, second_id)
        scheduler.stop()  # the service stops: so does its waiting warm driver
    ended = wait_for(
        lambda: (r := jobs.status(final)).terminal and r, timeout_s=120, what="it to stop"
    )
    assert ended.status == "STOPPED"


def test_a_warm_driver_that_waits_in_vain_is_replaced_and_forgotten(
    ray_head: Child, tmp_path: Path
) -> None:
    """A warm driver whose wait ends with no study exits 0 having recorded nothing; the next
    pass deletes its job from the cluster's list and submits another for a new id. One near
    the end of its wait is not handed out."""
    from study.records.store import StudyStore, sqlite_uri

    store = StudyStore(sqlite_uri(tmp_path))
    jobs = real_jobs(ray_head, store.tracking_uri, tmp_path)
    scheduler = Scheduler(store, jobs, standby_s=1.0)
    scheduler.step()
    first = scheduler.standby
    assert first is not None
    ended = wait_for(
        lambda: (r := jobs.status(first)).terminal and r, timeout_s=180, what="its wait to end"
    )
    assert ended.status == "SUCCEEDED", ended
    logs = jobs._get_client().get_job_logs(first.submission_id)
    assert f"no study {first.study_id} came" in logs
    assert store.states() == []  # it recorded nothing

    scheduler.step()
    second = scheduler.standby
    assert second is not None and second.study_id != first.study_id
    with pytest.raises(LookupError):
        jobs.status(first)  # deleted from the cluster's job list
    # its wait is 1 s: past 1 - standby_margin(1) s of age it is not handed out
    scheduler._standby_since = scheduler.clock() - (1.0 - standby_margin(1.0)) - 0.01
    assert scheduler.take_standby() is None
    scheduler.stop()
    wait_for(lambda: jobs.status(second).terminal, timeout_s=120, what="the last to stop")


def test_a_study_whose_warm_driver_ended_before_reading_it_runs_in_a_new_job(
    ray_head: Child, tmp_path: Path
) -> None:
    """The warm driver is stopped after its id was taken but before the study was recorded
    (e.g. a second service swept it): the study is submitted again at once as attempt 1,
    its loss not counted, and finishes."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    jobs = real_jobs(ray_head, store.tracking_uri, tmp_path)
    scheduler = Scheduler(store, jobs, standby_s=600, max_attempts=0)
    scheduler.step()
    warm = scheduler.standby
    study_id = scheduler.take_standby()
    assert study_id == warm.study_id
    jobs.stop(warm)
    wait_for(lambda: jobs.status(warm).terminal, timeout_s=120, what="the warm driver to stop")
    assert store.create_study(parse_spec(tiny_spec()), study_id).id == study_id

    scheduler.step()
    ref = scheduler.job_of(study_id)
    assert ref.submission_id == f"{study_id}-r1" and ref.failures == 0 and not ref.standby
    assert scheduler.retry_of(study_id) is None and store.state(study_id).last_error is None
    step_until(
        scheduler, lambda: store.state(study_id).status == "finished", what="the study to finish"
    )
    scheduler.stop()


def test_warm_drivers_with_no_study_are_stopped_and_one_with_a_study_is_not(
    ray_head: Child, tmp_path: Path
) -> None:
    """At its first pass a scheduler stops the warm drivers a previous run of the service
    left with no study, and follows one whose study was recorded as that study's job (which
    runs it). A failed creation gives its reserved id back unused: its warm driver is stopped
    at the next pass."""
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import parse_spec

    store = StudyStore(sqlite_uri(tmp_path))
    jobs = real_jobs(ray_head, store.tracking_uri, tmp_path)
    left = jobs.submit(new_study_id(), standby_s=600)  # a previous run's, with no study
    kept = jobs.submit(new_study_id(), standby_s=600)  # a previous run's, whose study came
    store.create_study(parse_spec(tiny_spec()), kept.study_id)

    scheduler = Scheduler(store, jobs, standby_s=600, max_concurrent=2)
    scheduler.step()
    assert scheduler.job_of(kept.study_id).submission_id == kept.submission_id
    wait_for(lambda: jobs.status(left).terminal, timeout_s=120, what="the left one to stop")
    assert jobs.status(left).status == "STOPPED"
    assert jobs.status(kept).status != "STOPPED"

    own = scheduler.standby  # the second slot is free: a warm driver of its own
    assert own is not None and own.study_id not in (left.study_id, kept.study_id)
    study_id = scheduler.take_standby()
    assert study_id == own.study_id
    scheduler.standby_unused(study_id)  # e.g. the store failed to record the study
    scheduler.step()
    wait_for(lambda: jobs.status(own).terminal, timeout_s=120, what="the unused one to stop")
    assert jobs.status(own).status == "STOPPED"
    step_until(
        scheduler,
        lambda: store.state(kept.study_id).status == "finished",
        what="the kept driver's study to finish",
    )
    assert [j.submission_id for j in jobs_of(jobs, kept.study_id)] == [kept.submission_id]
    scheduler.stop()
