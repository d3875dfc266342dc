"""Packed trials equal K unpacked trials (float64, CPU): every packable model of the zoo,
SGD and INSGD (both variants and norms) with momentum/nesterov/dampening/weight decay, the
other optimizers of the registry, a diverging member, BatchNorm on and off, per-member data
order and augmentation, per-epoch reports; and what cannot be packed is refused clearly."""

from __future__ import annotations

import math

import pytest
import torch

import study.train.pack as pack
from study.errors import ConfigError
from study.optim.registry import OPTIMIZERS
from study.train.pack import train_pack
from study.train.trial import train_trial

TIMING_KEYS = {"wall_time_s", "epoch_time_s"}
PACK_ONLY_KEYS = {"pack_size"}
RTOL = 1e-9  # float64: members and unpacked trials differ only by summation order

SGD = {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
SGD_PLAIN = {"optimizer": "sgd"}
SGD_DAMPENED = {"optimizer": "sgd", "momentum": 0.5, "dampening": 0.3}
INSGD_L2 = {"optimizer": "insgd", "momentum": 0.9, "weight_decay": 5e-4}
INSGD_L1 = {"optimizer": "insgd", "norm": "l1", "nesterov": True, "momentum": 0.8}
INSGD_REF_L2 = {"optimizer": "insgd", "variant": "reference", "momentum": 0.9}
INSGD_REF_L1 = {
    "optimizer": "insgd",
    "variant": "reference",
    "norm": "l1",
    "momentum": 0.5,
    "dampening": 0.1,
    "weight_decay": 1e-3,
}


def config(optimizer: dict, lr: float, seed: int, **overrides) -> dict:
    """A tiny float64 trial: synthetic 3x8x8 images with crop+flip augmentation."""
    base = {
        "dataset": {
            "name": "synthetic",
            "num_classes": 4,
            "shape": [3, 8, 8],
            "n_train": 32,
            "n_val": 16,
            "augment": True,
        },
        "model": {"name": "toy_cnn", "width": 4},
        "optimizer": optimizer,
        "lr": lr,
        "init": "kaiming_normal",
        "seed": seed,
        "epochs": 2,
        "batch_size": 8,
        "schedule": "cosine",
        "precision": "fp64",
        "device": "cpu",
        "num_threads": 1,
    }
    base.update(overrides)
    return base


def close(a, b, rtol: float = RTOL) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)
    return a == b


def assert_matches_unpacked(configs: list[dict], rtol: float = RTOL) -> list[dict]:
    """Train ``configs`` as a pack and one by one; every report and result must agree."""
    reports: dict[int, list[dict]] = {}
    calls: list[list[int]] = []

    def report(by_member: dict[int, dict]) -> None:
        calls.append(list(by_member))
        for index, metrics in by_member.items():
            reports.setdefault(index, []).append(metrics)

    results = train_pack(configs, report=report)
    assert len(results) == len(configs)
    epochs = configs[0]["epochs"]
    assert 1 <= len(calls) <= epochs
    for index, cfg in enumerate(configs):
        expected_reports: list[dict] = []
        expected = train_trial(cfg, report=expected_reports.append)
        got_reports = reports[index]
        assert [r["epoch"] for r in got_reports] == [r["epoch"] for r in expected_reports]
        for want, got in zip(expected_reports, got_reports, strict=True):
            assert set(got) == set(want)
            for key in set(want) - TIMING_KEYS:
                assert close(want[key], got[key], rtol), (index, want["epoch"], key, want, got)
        assert set(results[index]) == set(expected) | PACK_ONLY_KEYS
        assert results[index]["pack_size"] == len(configs)
        for key in set(expected) - TIMING_KEYS:
            assert close(expected[key], results[index][key], rtol), (index, key, expected, results)
    return results


# ---- the zoo ---------------------------------------------------------------------------------

PACKABLE_MODELS = [
    pytest.param({"name": "mlp", "hidden": [16, 8]}, id="mlp"),
    pytest.param({"name": "mlp", "hidden": [16], "batchnorm": True}, id="mlp-bn"),
    pytest.param({"name": "toy_cnn", "width": 4}, id="toy_cnn-bn"),
    pytest.param({"name": "toy_cnn", "width": 4, "batchnorm": False}, id="toy_cnn"),
    pytest.param({"name": "resnet20", "depth": 8}, id="resnet8-bn"),
    pytest.param({"name": "resnet20", "depth": 8, "batchnorm": False}, id="resnet8"),
    pytest.param({"name": "wrn", "depth": 10, "widen": 1}, id="wrn10-1-bn"),
    pytest.param(
        {"name": "vit_tiny", "depth": 1, "dim": 8, "heads": 2, "mlp_ratio": 2.0}, id="vit"
    ),
    pytest.param(
        {"name": "vit_tiny", "depth": 1, "dim": 8, "heads": 2, "norm": False}, id="vit-nonorm"
    ),
]


@pytest.mark.parametrize("model", PACKABLE_MODELS)
def test_every_packable_model_matches_unpacked_trials(model):
    assert_matches_unpacked(
        [
            config(SGD, 0.05, 0, model=model),
            config(INSGD_L2, 0.1, 1, model=model, init="xavier_normal"),
            config(INSGD_REF_L1, 0.05, 2, model=model, init_scale=0.5),
            config(INSGD_L2, 0.05, 3, model=model, init="orthogonal"),  # two in one group
        ]
    )


def test_mobilenetv3_packs_without_dropout():
    """Depthwise (grouped) convs, squeeze-excitation, hardswish. Its 8x8 inputs shrink to 1x1
    and its BatchNorm running statistics (momentum 0.01) barely move in a few steps, so the
    eval-mode logits are huge (val loss ~1e13) and amplify rounding: tolerance 1e-7."""
    model = {"name": "mobilenetv3_small", "dropout": 0.0}
    small = {"model": model, "epochs": 1}
    assert_matches_unpacked(
        [
            config(SGD, 0.05, 0, **small),
            config(INSGD_L2, 0.1, 1, **small),
            config(INSGD_REF_L1, 0.05, 2, **small),
        ],
        rtol=1e-7,
    )


def test_resnet50_packs_too():
    model = {"name": "resnet50", "stem": "cifar"}
    dataset = {"name": "synthetic", "num_classes": 3, "shape": [3, 8, 8], "n_train": 4, "n_val": 4}
    assert_matches_unpacked(
        [
            config(INSGD_L2, 0.05, 0, model=model, dataset=dataset, epochs=1, batch_size=4),
            config(SGD, 0.05, 1, model=model, dataset=dataset, epochs=1, batch_size=4),
        ]
    )


def test_all_insgd_variants_norms_and_sgd_settings_in_one_pack():
    """Six arms in one pack (each its own group), different inits, scales, seeds and
    schedules; a multistep schedule moves the learning rate inside the run."""
    multistep = {"name": "multistep", "milestones": [1], "gamma": 0.5}  # (milestones < epochs)
    assert_matches_unpacked(
        [
            config(INSGD_L2, 0.1, 0),
            config(SGD_DAMPENED, 0.05, 1, init="orthogonal"),
            config(INSGD_L1, 0.05, 2, init_scale=2.0),
            config(INSGD_REF_L2, 0.1, 3, schedule=multistep, init="default"),
            config(SGD_PLAIN, 0.2, 4, init="lecun_normal", schedule="constant"),
            config(INSGD_REF_L1, 0.1, 5),
            config(INSGD_L2, 0.02, 6, init="xavier_uniform"),  # a second member of a group
        ]
    )


def test_other_optimizers_run_as_their_own_torch_optimizer_per_member(monkeypatch):
    """Optimizers without a batched step (the registry's other ones; SGD forced here) run as
    one real torch optimizer per member over views of the stacked parameters."""
    monkeypatch.setattr(pack, "PACKED_OPTIMIZERS", ("insgd",))
    configs = [config(SGD, 0.05, 0), config(INSGD_L2, 0.1, 1), config(SGD_DAMPENED, 0.1, 2)]
    assert_matches_unpacked(configs)


BASELINE_ARMS = [
    {"optimizer": "adam"},
    {"optimizer": "adam", "amsgrad": True, "weight_decay": 1e-3},
    {
        "optimizer": "adam",
        "decoupled_weight_decay": True,
        "weight_decay": 0.01,
        "betas": [0.8, 0.99],
    },
    {"optimizer": "adamw", "eps": 1e-6},
    {"optimizer": "adagrad", "lr_decay": 0.01, "initial_accumulator_value": 0.1},
    {"optimizer": "rmsprop", "centered": True, "momentum": 0.9, "weight_decay": 1e-4},
    {"optimizer": "nadam", "decoupled_weight_decay": True, "weight_decay": 0.01},
]
# Every optimizer of the registry but SGD and INSGD (tested above): the arms listed, or its
# defaults for one added to the registry since.
BASELINES = [
    arm
    for name in OPTIMIZERS
    if name not in ("sgd", "insgd")
    for arm in [a for a in BASELINE_ARMS if a["optimizer"] == name] or [{"optimizer": name}]
]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per-member"])
def test_the_registrys_baselines_match_unpacked_trials(batched, monkeypatch):
    """Batched (one update per arm, torch.optim's formulas) and as one torch optimizer per
    member (what any optimizer without a batched step gets)."""
    if not batched:
        monkeypatch.setattr(pack, "PACKED_OPTIMIZERS", ("sgd", "insgd"))
    configs = [
        config(arm, 0.01, i, init="xavier_normal" if i % 2 else "kaiming_normal")
        for i, arm in enumerate(BASELINES)
    ]
    configs.append(config(INSGD_L2, 0.1, 99))
    configs.append(config(BASELINES[0], 0.02, 98, init="orthogonal"))  # two in one group
    assert_matches_unpacked(configs)


def test_one_member_is_a_plain_trial():
    assert_matches_unpacked([config(INSGD_REF_L2, 0.1, 7, model={"name": "resnet20", "depth": 8})])


def test_a_diverging_member_is_frozen_at_once_and_the_others_go_on():
    """100 steps per epoch: the lr=1e4 member's loss is non-finite by the check after step 50;
    it stops there (reported diverged in epoch 1, no later report) while the others train
    all their epochs, exactly as their unpacked trials do."""
    dataset = {"name": "synthetic", "num_classes": 4, "shape": [1, 4, 4], "n_train": 400}
    common = {"model": {"name": "mlp", "hidden": [8]}, "dataset": dataset, "batch_size": 4}
    configs = [
        config(SGD, 0.05, 0, **common),
        config(SGD_PLAIN, 1e4, 1, **common, schedule="constant"),
        config(INSGD_L2, 0.05, 2, **common),
    ]
    results = assert_matches_unpacked(configs)
    assert [r["diverged"] for r in results] == [False, True, False]
    assert [r["epochs_completed"] for r in results] == [2, 1, 2]
    assert results[1]["train_loss"] is None


def test_members_have_their_own_data_order_and_augmentation():
    """Two members that differ only in seed draw different batches (so different results),
    and a member's result does not depend on who it is packed with."""
    same = dict(init="kaiming_normal", init_scale=1.0)
    a, b = train_pack([config(SGD, 0.05, 0, **same), config(SGD, 0.05, 1, **same)])
    assert a["train_loss"] != b["train_loss"]
    alone = train_pack([config(SGD, 0.05, 1, **same)])[0]
    with_others = train_pack([config(INSGD_L1, 0.1, 5), config(SGD, 0.05, 1, **same)])[1]
    for key in ("train_loss", "val_loss", "val_acc"):
        assert close(alone[key], b[key]) and close(with_others[key], b[key])


def test_a_pack_is_deterministic_and_leaves_rng_and_threads_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(4321)
    state = torch.get_rng_state()
    configs = [config(INSGD_L2, 0.1, 0), config(SGD, 0.05, 1)]
    first = train_pack(configs)
    again = train_pack(configs)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    strip = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in first]
    assert strip == [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in again]


# ---- refusals --------------------------------------------------------------------------------

BAD_PACKS = [
    ([], ["non-empty list"]),
    ([config(SGD, 0.1, 0), config(SGD, 0.1, 1, epochs=3)], ["configs[1].epochs", "3 != 2"]),
    ([config(SGD, 0.1, 0), config(SGD, 0.1, 1, batch_size=4)], ["configs[1].batch_size"]),
    (
        [config(SGD, 0.1, 0), config(SGD, 0.1, 1, model={"name": "toy_cnn", "width": 8})],
        ["configs[1].model must equal configs[0].model", "'width': 8"],
    ),
    ([config(SGD, 0.1, 0), config(SGD, 0.1, 1, precision="fp32")], ["configs[1].precision"]),
    ([config(SGD, 0.1, 0), config(SGD, -1, 1)], ["configs[1]: lr must be > 0, got -1"]),
    (
        [config(SGD, 0.1, 0, model={"name": "wrn", "depth": 10, "widen": 1, "dropout": 0.3})] * 2,
        ["model cannot be packed", "dropout", "p=0.3"],
    ),
    (
        [config(SGD, 0.1, i, model={"name": "mobilenetv3_small"}) for i in range(2)],
        ["model cannot be packed", "'mobilenetv3_small' has dropout"],
    ),
    (
        [config(SGD, 0.1, 0), config({"optimizer": "sgd", "momentum": -1}, 0.1, 1)],
        ["configs[1]: optimizer.momentum must be >= 0, got -1"],
    ),
]


@pytest.mark.parametrize(("configs", "parts"), BAD_PACKS)
def test_bad_packs_are_refused_naming_the_field(configs, parts):
    calls: list = []
    with pytest.raises(ConfigError) as err:
        train_pack(configs, report=calls.append)
    for part in parts:
        assert part in str(err.value), str(err.value)
    assert calls == []


def test_a_single_member_with_dropout_is_just_a_trial():
    """Dropout only stops packing K > 1: one member draws its masks like train_trial."""
    model = {"name": "wrn", "depth": 10, "widen": 1, "dropout": 0.3}
    assert_matches_unpacked([config(SGD, 0.05, 0, model=model)])


# ---- the spec's pack_size and the pack searcher -----------------------------------------------

SPEC = {
    "name": "p",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {"lr": {"low": 0.01, "high": 1.0}, "init": ["kaiming_normal", "xavier_normal"]},
    "trials_per_arm": 5,
    "seeds": 3,
}


def spec_with(**changes):
    from study.spec.study_spec import parse_spec

    data = {**SPEC, **changes}
    return parse_spec(data)


@pytest.mark.parametrize(
    ("changes", "size"),
    [
        ({}, 1),  # auto on CPU: never packs
        ({"resources": {"pack_size": "auto"}}, 1),
        ({"resources": {"gpus_per_trial": 1}}, 12),  # auto on GPUs: 2 arms x 3 seeds x 2
        ({"resources": {"gpus_per_trial": 0.5}, "seeds": 1, "trials_per_arm": 20}, 16),
        ({"resources": {"gpus_per_trial": 1}, "seeds": 10}, 20),  # at least one point
        ({"resources": {"gpus_per_trial": 1}, "trials_per_arm": 1, "seeds": 1}, 2),  # all trials
        ({"resources": {"gpus_per_trial": 1}, "early_stopping": "asha"}, 1),
        (
            {
                "resources": {"gpus_per_trial": 1},
                "model": {"name": "wrn", "depth": 10, "dropout": 0.1},
            },
            1,
        ),
        ({"resources": {"pack_size": 4}}, 4),  # forced, on CPU too
        ({"resources": {"pack_size": 1, "gpus_per_trial": 1}}, 1),
        ({"resources": {"pack_size": 1000}}, 30),  # never more than the study's trials
    ],
)
def test_pack_size_resolves(changes, size):
    spec = spec_with(**changes)
    assert spec.pack_size == size


@pytest.mark.parametrize(
    ("changes", "parts"),
    [
        (
            {"resources": {"pack_size": 4}, "early_stopping": "asha"},
            ["resources.pack_size", "must be 1 or auto when early_stopping is asha", "got 4"],
        ),
        (
            {"resources": {"pack_size": 2}, "model": {"name": "mobilenetv3_small"}},
            ["resources.pack_size", "must be 1 or auto", "dropout", "got 2"],
        ),
        ({"resources": {"pack_size": 0}}, ["resources.pack_size", ">= 1", "got 0"]),
        ({"resources": {"pack_size": "many"}}, ["resources.pack_size", "'auto'", "'many'"]),
    ],
)
def test_bad_pack_size_is_refused_naming_field_rule_and_value(changes, parts):
    from study.errors import SpecError

    with pytest.raises(SpecError) as err:
        spec_with(**changes)
    for part in parts:
        assert part in str(err.value), str(err.value)


def test_pack_searcher_packs_the_interleaved_suggestions_and_completes_each_member():
    pytest.importorskip("ray.tune")
    from study.tune.searcher import (
        ARM_KEY,
        PACK_KEY,
        ArmInterleaver,
        PackSearcher,
        study_searcher,
        trial_key,
    )

    spec = spec_with(resources={"pack_size": 4})
    plain = ArmInterleaver(spec_with())
    expected = []
    n = 0
    while (config := plain.suggest(f"u{n}")) != "FINISHED":
        plain.on_trial_complete(f"u{n}", result={"val_acc": 0.5, "epoch": 10})
        expected.append(trial_key(config))
        n += 1
    assert len(expected) == 30

    searcher = PackSearcher(ArmInterleaver(spec), 4)
    packs, n = [], 0
    while (config := searcher.suggest(f"p{n}")) != "FINISHED":
        members = config[PACK_KEY]
        packs.append(members)
        # a point's arms and seeds together: 2 arms x the first 2 of 3 seeds, then the third ...
        assert {m[ARM_KEY] for m in members} <= {"sgd", "insgd"}
        searcher.on_trial_complete(
            f"p{n}", result={PACK_KEY: [{"val_acc": 0.5, "epoch": 10} for _ in members]}
        )
        n += 1
    assert [len(p) for p in packs] == [4] * 7 + [2]  # the last pack is smaller
    assert [trial_key(m) for p in packs for m in p] == expected  # the unpacked order
    assert not searcher.packs and not searcher.inner.live  # every member completed
    assert isinstance(study_searcher(spec).searcher, PackSearcher)
    assert not isinstance(study_searcher(spec_with()).searcher, PackSearcher)


def test_pack_searcher_saves_and_restores_mid_study(tmp_path):
    pytest.importorskip("ray.tune")
    from study.tune.searcher import PACK_KEY, ArmInterleaver, PackSearcher, trial_key

    spec = spec_with(resources={"pack_size": 4})
    first = PackSearcher(ArmInterleaver(spec), 4)
    a = first.suggest("a")
    first.save(str(tmp_path / "state.pkl"))
    b = first.suggest("b")
    restored = PackSearcher(ArmInterleaver(spec), 4)
    restored.restore(str(tmp_path / "state.pkl"))
    assert [trial_key(m) for m in restored.suggest("b")[PACK_KEY]] == [
        trial_key(m) for m in b[PACK_KEY]
    ]
    assert "a" in restored.packs and len(a[PACK_KEY]) == 4


# ---- the fast path's fixed-buffer step (what a CUDA graph captures), on CPU -------------------


@pytest.mark.parametrize(
    "optimizer", [SGD, INSGD_L2, INSGD_REF_L1, {"optimizer": "adam", "amsgrad": True}]
)
def test_the_fast_single_trial_path_matches_the_eager_loop(optimizer):
    """train_trial(fast=True) on CPU runs the fast path's step without a capture: a pack of
    one with fixed input buffers, a device learning rate and in-place state."""
    cfg = config(optimizer, 0.05, 3, model={"name": "resnet20", "depth": 8})
    reports: list[dict] = []
    fast = train_trial(cfg, report=reports.append, fast=True)
    eager_reports: list[dict] = []
    eager = train_trial(cfg, report=eager_reports.append, fast=False)
    assert fast["fast_path"] == "static" and eager["fast_path"] == "eager"
    assert set(fast) == set(eager)
    for key in set(eager) - TIMING_KEYS - {"fast_path"}:
        assert close(eager[key], fast[key]), (key, eager, fast)
    for want, got in zip(eager_reports, reports, strict=True):
        for key in set(want) - TIMING_KEYS:
            assert close(want[key], got[key]), (key, want, got)


def test_a_fast_pack_with_a_diverging_member_matches_unpacked():
    """The fixed buffers start over when a member leaves (its shapes change)."""
    dataset = {"name": "synthetic", "num_classes": 4, "shape": [1, 4, 4], "n_train": 400}
    common = {"model": {"name": "mlp", "hidden": [8]}, "dataset": dataset, "batch_size": 4}
    configs = [
        config(INSGD_L2, 0.05, 0, **common),
        config(SGD_PLAIN, 1e4, 1, **common, schedule="constant"),
        config({"optimizer": "rmsprop"}, 0.01, 2, **common),
    ]
    fast = train_pack(configs, fast=True)
    assert {r["fast_path"] for r in fast} == {"static"}
    eager = train_pack(configs, fast=False)
    assert [r["diverged"] for r in fast] == [False, True, False]
    for a, b in zip(eager, fast, strict=True):
        for key in set(a) - TIMING_KEYS - {"fast_path"}:
            assert close(a[key], b[key]), (key, a, b)


def test_the_fast_path_is_off_on_cpu_by_default_and_can_be_switched_off(monkeypatch):
    import torch as _torch

    from study.train.pack import step_mode

    cpu, cuda = _torch.device("cpu"), _torch.device("cuda")
    assert step_mode(None, cpu) == "eager" and step_mode(True, cpu) == "static"
    assert step_mode(None, cuda) == "graph" and step_mode(False, cuda) == "eager"
    monkeypatch.setenv("HPROBUST_FAST_PATH", "0")
    assert step_mode(None, cuda) == "eager" and step_mode(True, cuda) == "graph"


def test_channels_last_single_member_matches_the_eager_loop():
    """The fast path's channels-last layout (on by default on CUDA), forced on CPU."""
    import time

    from study.spec.trial_config import TrialConfig
    from study.train.pack import run_members

    cfg = config(INSGD_L2, 0.05, 5, model={"name": "resnet20", "depth": 8})
    reports: list[dict] = []
    (got,) = run_members(
        [TrialConfig.from_mapping(cfg)],
        torch.device("cpu"),
        lambda by_member: reports.append(by_member[0]),
        time.perf_counter(),
        True,
        channels_last=True,
    )
    eager_reports: list[dict] = []
    eager = train_trial(cfg, report=eager_reports.append, fast=False)
    for key in set(eager) - TIMING_KEYS - {"fast_path"}:
        assert close(eager[key], got[key]), (key, eager, got)
    assert len(reports) == len(eager_reports) == 2
