"""Checks a study passes before any trial starts, so that a study that cannot run fails at
once with one clear message instead of failing every trial (a missing dataset used to fail
16 of 16 trials with 32 tracebacks and exit 0).

:func:`preflight`: the dataset is on disk or downloadable now (downloaded then, once, before
the trials share it) and the model builds for the dataset's inputs and runs a forward pass on
the CPU. The spec's own validation has already built the model on the meta device; this build
is a real one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from study.errors import ConfigError

if TYPE_CHECKING:
    from study.spec.study_spec import StudySpec


class ModelBuildError(ConfigError):
    """The study's model does not build or cannot run a forward pass on the dataset's inputs."""


def preflight(spec: StudySpec, *, data_dir: str | os.PathLike[str] | None) -> None:
    """Raise before any trial if the study cannot run.

    Raises:
        DatasetNotFoundError: the dataset is not in ``data_dir`` and cannot be downloaded
            (the message names the directory, the files and where to get them).
        ModelBuildError: the model fails to build or to run on a batch of the dataset's shape.
    """
    from study.data.loader import ensure_dataset
    from study.data.registry import dataset_info

    ensure_dataset(spec.dataset, data_dir=data_dir)
    import torch

    from models import create_model

    info = dataset_info(spec.dataset)
    options = {k: v for k, v in spec.model.items() if k != "name"}
    name = spec.model["name"]
    shape = tuple(info.in_shape)
    try:
        model = create_model(name, in_shape=shape, num_classes=info.num_classes, **options)
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(2, *shape))
    except Exception as exc:
        raise ModelBuildError(
            f"model {name!r} (options {options}) does not run on {spec.dataset_name} inputs "
            f"of shape {shape}: {type(exc).__name__}: {exc}"
        ) from exc
    if tuple(out.shape) != (2, info.num_classes):
        raise ModelBuildError(
            f"model {name!r} must output (batch, {info.num_classes}) logits for "
            f"{spec.dataset_name}, got shape {tuple(out.shape)}"
        )
