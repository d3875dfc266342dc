"""The report page, rendered from a real summary (no server): it states the answer first, warns
where the design is too small, explains every metric with its direction, and shows missing
values as the CLI does. The browser test is test_api.py's test_report_page_in_headless_chromium.
"""

from __future__ import annotations

import itertools
import math
import re
from types import SimpleNamespace

from service.report import render_report, spec_essentials
from study.analysis import present, summarize
from tests.study.analysis_rows import row

SPEC = {
    "name": "r",
    "dataset": "digits",
    "model": {"name": "toy_cnn", "width": 8},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 1e-4, "high": 10.0, "points_per_decade": 1}, "init": ["a", "b"]},
    "sampler": "grid",
    "seeds": 3,
    "epochs": 4,
    "batch_size": 64,
    "schedule": "cosine",
    "analysis": {"tolerance": 0.02},
}


def _rows(seeds=(0, 1, 2)):
    out = []
    for arm, lr, init, seed in itertools.product(
        ("sgd", "insgd"), (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), ("a", "b"), seeds
    ):
        x = math.log10(lr)
        width = 1.0 if arm == "sgd" else 1.8
        acc = 0.1 + 0.8 * math.exp(-(((x + 2) / width) ** 2)) + 0.01 * seed
        out.append(row(arm, lr, init, seed, acc, loss=1 - acc))
    return out


def _study(status="finished"):
    links = SimpleNamespace(
        mlflow=None,
        summary="/s/summary",
        trials="/s/trials",
        plots={s: f"/s/plots/{s}.png" for s in ("lr_curves", "heatmap", "profile")},
    )
    progress = SimpleNamespace(finished=72, total=72, running=0, pending=0, diverged=0, failed=0)
    return SimpleNamespace(
        id="s1",
        name="r",
        status=status,
        links=links,
        progress=progress,
        eta_s=None,
        created_at="t0",
        started_at=None,
        finished_at=None,
    )


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_verdict_comes_first_with_its_numbers():
    s = summarize(_rows(), num_classes=10, arms=["sgd", "insgd"], lr_range=(1e-4, 10.0))
    (c,) = s.comparisons
    assert c.verdict == "more_robust"
    html = render_report(_study(), s, ["lr_curves", "heatmap", "profile"], spec=SPEC)
    text = _text(html)
    sentence = present.verdict_sentence(c, s)
    # the verdict in words first, then the AUC difference with its interval and n seeds
    assert sentence.startswith(f"insgd vs sgd: more robust — AUC +{c.auc_diff:.3f} [+")
    assert "] over 3 seeds, LR window +" in sentence and sentence.endswith("decades")
    assert text.index("insgd vs sgd: more robust — AUC") < text.index("Per arm and init")
    assert sentence in text
    assert 'class="verdict v-more_robust">more robust</span>' in html
    # a legend with the direction of every metric
    for m in present.COLUMNS:
        if m.better:
            assert f"{m.label} {'↑ higher' if m.better == 'higher' else '↓ lower'}" in text
    # per-init rows under each arm, the spec's essentials, each plot a link to its PNG
    assert html.count('<tr class="arm">') == 2 and html.count('<tr class="init">') == 4
    assert "toy_cnn (width=8)" in text and "3 seeds" in text and "(1 per decade)" in text
    assert html.count('<a href="/s/plots/') == 3
    # lr_curves (a panel per init) takes the page's width; the others share a row
    assert '<figure class="wide"><a href="/s/plots/lr_curves.png">' in html
    assert '<figure><a href="/s/plots/heatmap.png">' in html
    # 3 seeds, 12 paired points: the only warning is that 3 seeds give wide intervals
    assert "Read with care" in text and "Student t with 2 degrees of freedom: wide" in text
    assert 'http-equiv="refresh"' not in html and "Provisional" not in text


def test_a_small_design_warns_and_missing_values_look_like_the_cli():
    s = summarize(_rows(seeds=(0,)), num_classes=10, arms=["sgd", "insgd", "adam"])
    html = render_report(_study("running"), s, [], spec=SPEC)
    text = _text(html)
    assert "Read with care" in text and "only 1 seed" in text
    assert "not enough data for a verdict" in text
    assert 'http-equiv="refresh"' in html and "Partial summary" not in text  # not partial
    # adam has no trials: its row shows the shared missing mark, as the CLI does
    adam = re.search(r'<tr class="arm"><td>adam</td>(.*?)</tr>', html).group(1)
    assert present.MISSING in adam and "nan" not in adam.lower() and "None" not in adam


def test_a_running_study_shows_provisional_numbers_and_no_verdict():
    """At 57 of 378 trials v2's report said in bold green "more robust", and the finished study
    said "no clear difference". A study that has not ended states no verdict: its numbers are
    greyed as provisional, with the finished, running and pending counts."""
    s = summarize(_rows(), num_classes=10, arms=["sgd", "insgd"], complete=False)
    study = _study("running")
    study.progress = SimpleNamespace(
        finished=57, total=378, running=2, pending=319, diverged=0, failed=0
    )
    html = render_report(study, s, [], spec=SPEC)
    text = _text(html)
    (c,) = s.comparisons
    assert c.verdict == "pending" and s.partial
    assert "Provisional: 57 finished, 2 running, 319 pending of 378 trials" in text
    assert "insgd vs sgd: no verdict yet (the study is still running" in text
    (verdict_class,) = set(re.findall(r'class="verdict (v-[a-z_]+)"', html))
    assert verdict_class == "v-pending"  # no coloured verdict
    assert 'class="verdicts provisional"' in html
    assert '<div class="provisional" id="numbers">' in html  # the tables, greyed


def test_a_range_cut_is_named_with_the_bound_to_try():
    """insgd's optimum sits at the top of the range (lr 10), where it still learns: the verdict
    is range_limited, the sentence names the arm, the inits and the end and the bound to try
    (a decade further out), the warning says it per init, and the init rows show the cut."""
    rows = []
    for arm, lr, init, seed in itertools.product(
        ("sgd", "insgd"), (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), ("a", "b"), (0, 1, 2)
    ):
        centre = -2 if arm == "sgd" else 1
        acc = 0.1 + 0.8 * math.exp(-(((math.log10(lr) - centre) / 1.0) ** 2)) + 0.01 * seed
        rows.append(row(arm, lr, init, seed, acc, loss=1 - acc))
    s = summarize(rows, num_classes=10, arms=["sgd", "insgd"], lr_range=(1e-4, 10.0))
    (c,) = s.comparisons
    assert c.verdict == "range_limited"
    sentence = present.verdict_sentence(c, s)
    assert sentence.startswith("insgd vs sgd: limited by the lr range — AUC ")
    assert sentence.endswith(
        "its best lr sits 3 decades higher; the lr range cuts insgd (every init) at its high "
        "end: it still learns at the highest lr; try search.lr.high 100"
    )
    html = render_report(_study(), s, [], spec=SPEC)
    text = _text(html)
    assert sentence in text and 'class="verdict v-range_limited"' in html
    assert "arm insgd, init a: still learns at the highest lr tried (10;" in text
    insgd_rows = html.split('<tr class="arm"><td>insgd</td>', 1)[1]
    assert insgd_rows.count("<td>high</td>") == 2  # the cut column of both inits


def test_spec_essentials_of_an_old_spec():
    old = {**SPEC, "sampler": "qmc", "trials_per_arm": 16}
    old["search"] = {"lr": {"low": 1e-3, "high": 1.0}, "init": ["a"]}
    rows = dict(spec_essentials(old))
    assert rows["design"].startswith("sampler qmc; lr 0.001–1.0 (log-uniform)")
    assert rows["budget"] == "3 seeds, 16 points per arm"
    assert spec_essentials(None) == []


def test_openapi_documents_every_summary_field():
    """GET /studies/{id}/summary declares the typed Summary: every key of summarize's output,
    nested models included, is in the OpenAPI schema with its description."""
    from fastapi import FastAPI

    from service.api.routes import studies
    from study.analysis.schema import (
        VERDICTS,
        ArmSummary,
        Comparison,
        InitSummary,
        RangeCut,
        Reference,
        Summary,
    )

    app = FastAPI()
    app.include_router(studies.router)
    schema = app.openapi()
    ok = schema["paths"]["/studies/{study_id}/summary"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Summary"}
    components = schema["components"]["schemas"]
    for model in (Summary, Reference, ArmSummary, InitSummary, Comparison, RangeCut):
        props = components[model.__name__]["properties"]
        assert set(props) == set(model.model_fields), model.__name__
    verdict = components["Comparison"]["properties"]["verdict"]
    assert (
        set(verdict["enum"])
        == set(VERDICTS)
        == {
            "pending",
            "not_enough_data",
            "range_limited",
            "more_robust",
            "less_robust",
            "mixed",
            "no_clear_difference",
        }
    )
    comparison = components["Comparison"]["properties"]
    assert "Student t" in comparison["auc_diff_ci"]["description"]
    for key in ("auc_p", "lr_shift_decades", "range_cut"):
        assert comparison[key]["description"], key
    init = components["InitSummary"]["properties"]
    assert init["best_lr"]["description"] and init["range_cut"]["description"]
    assert components["Summary"]["properties"]["version"]["default"] == 3
