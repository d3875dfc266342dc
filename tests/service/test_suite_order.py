"""The order the scheduler submits live studies in: oldest first, a suite's studies (created
in the same second) in its workload order, whatever their random ids."""

from __future__ import annotations

from types import SimpleNamespace

from service.scheduler import submit_order


def test_a_suites_studies_go_in_workload_order() -> None:
    def study(id_: str, at: str, suite: str | None = None, index: int | None = None):
        return SimpleNamespace(id=id_, created_at=at, suite_id=suite, suite_index=index)

    records = [
        study("s-ff", "2026-01-01T00:00:01Z", "u-1", 0),
        study("s-aa", "2026-01-01T00:00:01Z", "u-1", 2),
        study("s-cc", "2026-01-01T00:00:01Z", "u-1", 1),
        study("s-bb", "2026-01-01T00:00:00Z"),  # older, on its own
        study("s-zz", "2026-01-01T00:00:02Z"),
        SimpleNamespace(id="s-dd", created_at="2026-01-01T00:00:03Z"),  # no suite fields
    ]
    ordered = sorted(records, key=submit_order)
    assert [r.id for r in ordered] == ["s-bb", "s-ff", "s-cc", "s-aa", "s-zz", "s-dd"]


def test_studies_created_in_one_second_go_in_the_order_they_were_created() -> None:
    """``created_at`` has second precision: two studies posted in the same second went in
    the order of their random ids (CI: the older study, the one a test made Ray refuse, was
    not tried first). MLflow's creation time of each experiment orders them."""
    at = "2026-01-01T00:00:01Z"
    first = SimpleNamespace(id="s-zz", created_at=at, created_ms=1_000)
    second = SimpleNamespace(id="s-aa", created_at=at, created_ms=1_007)
    assert [r.id for r in sorted([second, first], key=submit_order)] == ["s-zz", "s-aa"]
