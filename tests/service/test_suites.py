"""``/suites`` over real HTTP: a real ``hprobust serve`` on a real Ray head and MLflow (SQLite).

One tiny suite runs end to end, cancelled mid-run and resumed on the way (its pooled numbers
checked against a meta-analysis computed here from its studies' own summaries, by hand:
DerSimonian-Laird, modified Hartung-Knapp); a suite with a bad workload creates nothing."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import httpx
import pytest
from scipy.stats import t as student_t

from tests.service.conftest import wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]


def tiny_suite(name: str = "tiny-suite", **shared: Any) -> dict[str, Any]:
    """Two MLP workloads on digits: 2 arms x 2 points x 2 seeds, 1 epoch each."""
    return {
        "name": name,
        "dataset": "digits",
        "arms": [
            {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
            {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
        ],
        "search": {"lr": {"low": 0.01, "high": 1.0, "points": 2}, "init": ["kaiming_normal"]},
        "sampler": "grid",
        "seeds": 2,
        "epochs": 1,
        "batch_size": 64,
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
        "workloads": [
            {"name": "mlp8", "model": {"name": "mlp", "hidden": [8]}},
            {"name": "mlp16", "model": {"name": "mlp", "hidden": [16]}},
        ],
        **shared,
    }


def _experiments(data_dir) -> int:
    with sqlite3.connect(data_dir / "mlflow.db") as db:
        return db.execute("SELECT count(*) FROM experiments").fetchone()[0]


def _pooled_by_hand(y: list[float], s: list[float]) -> tuple[float, float, float, float, float]:
    """DerSimonian-Laird tau², random-effects mean, modified Hartung-Knapp 95% interval with
    k - 1 df, I² (docs/suites.md, "Pooling"), written out here independently."""
    k = len(y)
    v = [1 / si**2 for si in s]
    ybar = sum(vi * yi for vi, yi in zip(v, y, strict=True)) / sum(v)
    q = sum(vi * (yi - ybar) ** 2 for vi, yi in zip(v, y, strict=True))
    c = sum(v) - sum(vi**2 for vi in v) / sum(v)
    tau2 = max(0.0, (q - (k - 1)) / c)
    w = [1 / (si**2 + tau2) for si in s]
    mu = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    qhk = sum(wi * (yi - mu) ** 2 for wi, yi in zip(w, y, strict=True)) / (k - 1)
    se = math.sqrt(max(qhk, 1.0) / sum(w))
    half = float(student_t.ppf(0.975, k - 1)) * se
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return mu, mu - half, mu + half, tau2, i2


def test_suite_end_to_end(api, api_token: str) -> None:
    auth = {"Authorization": f"Bearer {api_token}"}
    with httpx.Client(base_url=api.url, timeout=60) as client:
        # a bad workload: 422 naming it, nothing created
        before_studies = client.get("/studies").json()["count"]
        before_experiments = _experiments(api.data_dir)
        bad = tiny_suite()
        bad["workloads"] = [
            *bad["workloads"],
            {"name": "cnn", "model": {"name": "toy_cnn", "width": 0}},
        ]
        r = client.post("/suites", json=bad, headers=auth)
        assert r.status_code == 422, r.text
        fields = [p["field"] for p in r.json()["problems"]]
        assert "workloads.cnn.model.width" in fields
        r = client.post("/suites", json={**tiny_suite(), "seeds": 1, "workloads": [
            {"name": "a", "model": {"name": "mlp"}, "seeds": 3},
            {"name": "b", "model": {"name": "mlp"}},
        ]}, headers=auth)  # fmt: skip
        assert r.status_code == 422
        assert [p["field"] for p in r.json()["problems"]] == ["workloads.a.seeds"]
        assert client.get("/studies").json()["count"] == before_studies
        assert client.get("/suites").json()["count"] == 0
        assert _experiments(api.data_dir) == before_experiments

        # a good suite: 202, every study queued and tagged, Idempotency-Key replays
        headers = {**auth, "Idempotency-Key": "suite-e2e-1"}
        r = client.post("/suites", json=tiny_suite(), headers=headers)
        assert r.status_code == 202, r.text
        suite = r.json()
        suite_id = suite["id"]
        assert r.headers["Location"].endswith(f"/suites/{suite_id}")
        assert [s["workload"] for s in suite["studies"]] == ["mlp8", "mlp16"]
        replay = client.post("/suites", json=tiny_suite(), headers=headers)
        assert replay.status_code == 200 and replay.json()["id"] == suite_id
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert client.get("/studies").json()["count"] == before_studies + 2
        listed = client.get("/suites").json()
        assert [s["id"] for s in listed["data"]] == [suite_id]
        study_ids = [s["study_id"] for s in suite["studies"]]
        for study_id in study_ids:
            assert client.get(f"/studies/{study_id}").json()["spec"]["seeds"] == 2

        # cancel mid-run: every study ends (none live), none holds a running trial
        def started() -> bool:
            return client.get(f"/suites/{suite_id}").json()["status"] == "running"

        wait_for(started, timeout_s=300, what="the suite to start", poll_s=0.5)
        r = client.post(f"/suites/{suite_id}/cancel", headers=auth)
        assert r.status_code == 200, r.text
        stopped = client.get(f"/suites/{suite_id}").json()
        statuses = [s["status"] for s in stopped["studies"]]
        assert "cancelled" in statuses and set(statuses) <= {"cancelled", "finished"}, statuses
        assert stopped["status"] == "cancelled"
        for study_id in study_ids:
            trials = client.get(f"/studies/{study_id}/trials").json()["data"]
            assert all(t["status"] != "running" for t in trials), trials
        assert client.post(f"/suites/{suite_id}/cancel", headers=auth).status_code == 409

        # resume: every cancelled study runs again, all finish, no trial run twice
        r = client.post(f"/suites/{suite_id}/resume", headers=auth)
        assert r.status_code == 202, r.text

        def ended() -> dict[str, Any] | None:
            body = client.get(f"/suites/{suite_id}").json()
            return body if body["status"] not in ("queued", "running") else None

        done = wait_for(ended, timeout_s=600, what="the resumed suite to end", poll_s=2)
        assert done["status"] == "finished", done
        assert done["progress"]["finished"] == done["progress"]["total"] == 16
        for study_id in study_ids:
            keys = [t["key"] for t in client.get(f"/studies/{study_id}/trials").json()["data"]]
            assert len(keys) == len(set(keys)) == 8
        assert client.post(f"/suites/{suite_id}/resume", headers=auth).status_code == 409

        summary = client.get(f"/suites/{suite_id}/summary").json()
        assert summary["partial"] is False
        assert [w["study_id"] for w in summary["workloads"]] == study_ids
        (comparison,) = summary["comparisons"]
        assert comparison["arm"] == "insgd" and comparison["baseline"] == "sgd"
        # independent: each study's own summary, pooled by hand
        own = []
        for study_id in study_ids:
            s = client.get(f"/studies/{study_id}/summary").json()
            (c,) = s["comparisons"]
            own.append(c)
        pooled = [c for c in own if c["auc_diff_ci"] is not None and (c["auc_diff_se"] or 0) > 0]
        assert comparison["k"] == len(pooled)
        if len(pooled) >= 2:
            mu, low, high, tau2, i2 = _pooled_by_hand(
                [c["auc_diff"] for c in pooled], [c["auc_diff_se"] for c in pooled]
            )
            assert comparison["pooled_auc_diff"] == pytest.approx(mu, abs=1e-9)
            assert comparison["pooled_ci"] == pytest.approx([low, high], abs=1e-9)
            assert comparison["tau2"] == pytest.approx(tau2, abs=1e-12)
            assert comparison["i2"] == pytest.approx(i2, abs=1e-9)
            if low > 0 or high < 0:
                assert comparison["verdict"] in ("more_robust", "less_robust", "mixed")
            else:
                assert comparison["verdict"] in ("no_clear_difference", "mixed")
        else:
            assert comparison["verdict"] == "not_enough_data"
        counts = comparison["verdict_counts"]
        for c in own:
            assert counts[c["verdict"]] >= 1
        assert sum(counts.values()) == 2

        # the report: the sentence first, both figures, links to each study's report
        page = client.get(f"/suites/{suite_id}/report").text
        assert page.index("insgd vs sgd over") < page.index('src="forest.png"')
        assert 'src="profile.png"' in page
        for study_id in study_ids:
            assert f"../../studies/{study_id}/report" in page
        for png in ("forest.png", "profile.png"):
            r = client.get(f"/suites/{suite_id}/{png}")
            assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"suite-{suite_id}" in client.get("/").text
        assert client.get("/suites/u20000101-000000-abcdef").status_code == 404
        openapi = client.get("/openapi.json").json()
        assert "SuiteSummary" in openapi["components"]["schemas"]
        assert "/suites/{suite_id}/summary" in openapi["paths"]
