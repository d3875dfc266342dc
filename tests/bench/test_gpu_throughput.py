"""bench/gpu_throughput.py runs on CPU at a tiny size (every row: eager, fast, Ray, packs; the
vmap vs hand-fused timing) and its figures are consistent with their definitions."""

from __future__ import annotations

import json
import math

import pytest

from tests.bench import load_bench

pytestmark = pytest.mark.slow


def test_gpu_throughput_runs_on_cpu(ray_local, tmp_path, capsys):
    bench = load_bench("gpu_throughput")
    out = tmp_path / "rows.json"
    argv = [
        "--device", "cpu", "--n-train", "64", "--batch", "16", "--depth", "8",
        "--epochs", "2", "--packs", "2", "--ray-trials", "2", "--threads", "1",
        "--fusion", "2", "--fusion-steps", "1", "--fusion-blocks", "2", "--json", str(out),
    ]  # fmt: skip
    result = bench.main(argv)
    printed = capsys.readouterr().out
    rows = result["rows"]
    assert [(r["row"], r["optimizer"]) for r in rows] == [
        (row, opt) for opt in ("sgd", "insgd") for row in ("eager", "fast", "ray x2", "pack 2")
    ]
    for row in rows:
        assert row["epoch_s"] > 0
        assert math.isclose(row["images_per_s"], row["trials"] * 64 / row["epoch_s"])
        per_h = 3600 * row["trials"] / (row["epoch_s"] * 50_000 / 64)
        assert math.isclose(row["trial_epochs_per_h"], per_h)
        assert math.isclose(row["study_hours"], 12_800 / per_h)
        assert row["row"] in printed
        eager = next(r for r in rows if r["row"] == "eager" and r["optimizer"] == row["optimizer"])
        assert math.isclose(row["x_eager"], row["trial_epochs_per_h"] / eager["trial_epochs_per_h"])
    assert {r["fast_path"] for r in rows if r["row"] == "fast"} == {"static"}
    assert {r["fast_path"] for r in rows if r["row"] != "fast"} == {"eager"}
    (fusion,) = result["fusion"]
    assert fusion["k"] == 2 and fusion["vmap_ms"] > 0 and fusion["fused_ms"] > 0
    assert json.loads(out.read_text())["rows"] == rows
    assert "12,800 trial-epoch study" in printed
