"""Where ``hprobust trials`` and ``hprobust summary`` read a study: a service, when one is
configured, else the embedded store of a data dir.

The study layer knows no service: the root command installs the finder of a service
(:func:`install`; the service layer's is ``service.cli.remote``), which answers for an
explicit ``--url``, ``HPROBUST_URL`` or the URL a running ``hprobust serve`` recorded, and
None when none is configured. An explicit ``--data-dir`` always reads that store.

Both sources raise :class:`~study.errors.StudyNotFoundError` for an unknown study (the
command exits 2, naming where it looked: ``... in hprobust-data`` or ``... at http://...``)
and another :class:`~study.errors.HprobustError` for anything else (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from study.cli.options import DEFAULT_DIR, fail


class Source(Protocol):
    """A place to read studies from; ``where`` ends its errors (``in DIR``, ``at URL``)."""

    where: str

    def study(self, study_id: str) -> dict[str, Any]:
        """``{id, name, status, total_trials, ...}`` of the study."""

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        """Its trial rows (``study.analysis.rows.TRIAL_FIELDS`` and more)."""

    def summary(self, study_id: str) -> dict[str, Any]:
        """Its robustness summary (JSON dict; partial while it runs)."""

    def suite_summary(self, suite_id: str) -> Any:
        """A suite's summary (:class:`study.analysis.suite_schema.SuiteSummary`)."""


#: ``finder(url, token)``: the service's source, or None when no service is configured.
Finder = Callable[[str | None, str | None], Source | None]
_finder: list[Finder] = []


def install(finder: Finder) -> None:
    """Let ``trials`` and ``summary`` ask a service (called by the service layer's CLI)."""
    _finder[:] = [finder]


class LocalSource:
    """The embedded store of ``data_dir`` (``DIR/mlflow.db``)."""

    def __init__(self, data_dir: Path) -> None:
        from study.cli.options import store_uri
        from study.records.store import StudyStore

        self.where = f"in {data_dir}"
        self.store = StudyStore(store_uri(data_dir))

    def study(self, study_id: str) -> dict[str, Any]:
        record = self.store.get(study_id)
        return {
            "id": record.id,
            "name": record.name,
            "status": record.status,
            "total_trials": record.total_trials,
        }

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        return self.store.trials(study_id)

    def summary(self, study_id: str) -> dict[str, Any]:
        return self.store.summary(study_id)

    def suite_summary(self, suite_id: str) -> Any:
        from study.cli.suite import suite_summary_of

        return suite_summary_of(self.store, suite_id)


def open_source(data_dir: Path | None, url: str | None, token: str | None) -> Source:
    """The source a command reads: ``data_dir`` when given; else the configured service;
    else the default data dir. Exits 2 when the store does not exist or ``--url`` cannot be
    followed."""
    if data_dir is None:
        remote = _finder[0](url, token) if _finder else None
        if remote is not None:
            return remote
        if url is not None:
            fail("--url needs the service's client (run it as hprobust, not study.cli)", 2)
        data_dir = DEFAULT_DIR
    elif url is not None:
        fail("give --data-dir (a local store) or --url (a service), not both", 2)
    if not (Path(data_dir) / "mlflow.db").is_file():
        fail(
            f"no study store in {data_dir} (no mlflow.db); pass --data-dir, or --url (or "
            "HPROBUST_URL) for a service",
            2,
        )
    return LocalSource(Path(data_dir))
