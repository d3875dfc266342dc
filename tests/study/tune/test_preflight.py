"""A study that cannot run fails before any trial, with the error's own message: a missing
dataset (not downloadable) or a model that does not run on the dataset's inputs."""

from __future__ import annotations

import pytest
from torch import nn

import models
from study.errors import DatasetNotFoundError
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec
from study.tune.preflight import ModelBuildError, preflight

OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
SPEC = {
    "name": "preflight",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "adam", "optimizer": "adam"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
    "seeds": 1,  # the seeds default (3) would triple the trials
    "epochs": 1,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


def test_a_runnable_study_passes(tmp_path):
    preflight(parse_spec(SPEC), data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # digits needs no files


def test_missing_dataset_names_directory_files_and_source(tmp_path, monkeypatch):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    spec = parse_spec({**SPEC, "dataset": {"name": "mnist"}})
    with pytest.raises(DatasetNotFoundError) as info:
        preflight(spec, data_dir=tmp_path)
    message = str(info.value)
    assert f"dataset 'mnist' is not in {tmp_path} and could not be downloaded" in message
    assert f"{tmp_path}/MNIST/raw/" in message and "train-images-idx3-ubyte.gz" in message


class _Broken(nn.Module):
    def __init__(self, in_shape, num_classes):
        super().__init__()
        self.linear = nn.Linear(3, num_classes)

    def forward(self, x):
        return self.linear(x)  # the wrong width: fails on every real batch


def _broken(in_shape, num_classes, *, width: int = 3) -> nn.Module:
    return _Broken(in_shape, num_classes)


def _wrong_outputs(in_shape, num_classes) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes + 1))


def test_a_model_that_does_not_run_is_named_with_its_error(tmp_path, monkeypatch):
    monkeypatch.setitem(models.MODELS, "broken", _broken)
    monkeypatch.setitem(models.MODELS, "wrong", _wrong_outputs)
    spec = parse_spec({**SPEC, "model": {"name": "broken", "width": 4}})
    with pytest.raises(ModelBuildError) as info:
        preflight(spec, data_dir=tmp_path)
    message = str(info.value)
    assert "model 'broken' (options {'width': 4}) does not run on digits inputs of shape" in message
    assert "(1, 8, 8): RuntimeError: mat1 and mat2 shapes cannot be multiplied" in message
    with pytest.raises(ModelBuildError, match=r"must output \(batch, 10\) logits .* \(2, 11\)"):
        preflight(parse_spec({**SPEC, "model": {"name": "wrong"}}), data_dir=tmp_path)


@pytest.mark.slow
def test_the_driver_fails_the_study_before_any_trial(ray_local, tmp_path, monkeypatch):
    """The API's path: a recorded study whose dataset is missing ends ``failed`` with the
    dataset's message as its error, and not one trial run was started."""
    from study.driver import drive

    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    store = StudyStore(sqlite_uri(tmp_path))
    record = store.create_study(parse_spec({**SPEC, "dataset": {"name": "fashion_mnist"}}))
    with pytest.raises(DatasetNotFoundError):
        drive(
            record.id,
            tracking_uri=store.tracking_uri,
            storage=str(tmp_path / "ray_results"),
            data_dir=str(tmp_path / "datasets"),
        )
    failed = store.get(record.id)
    assert failed.status == "failed"
    assert failed.error.startswith("DatasetNotFoundError: dataset 'fashion_mnist' is not in")
    assert store.trial_runs(record.id) == []
    assert store.progress(record.id)["pending"] == 4
