"""The dataset registry: every dataset in one place, with its options (the spec's typed
dataset, checked at submission), its classes and input shape (known without loading it) and
its loader. Importing this module imports no torch; the loaders import what they need.

Adding a dataset is one :class:`DatasetKind` in :data:`DATASETS`: an options model (a
:class:`~study.spec.base.StrictModel` with ``name: Literal["<name>"]``), a ``shape`` and a
``load``. The spec, the loader (:mod:`study.data.loader`), the preflight and docs/spec.md read
it from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from study.errors import DatasetNotFoundError, SpecError
from study.spec.base import StrictModel, kind_tag, named, problem
from study.spec.problems import spec_problems

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DATASETS",
    "DATASET_KINDS",
    "DatasetFields",
    "DatasetInfo",
    "DatasetKind",
    "DatasetSpec",
    "dataset_before",
    "dataset_info",
    "dataset_spec",
]

#: What a loader returns: CPU tensors ``(x_train, y_train, x_val, y_val)``, ``x`` float32 and
#: normalized, ``y`` int64 class indices.
Tensors = tuple[Any, Any, Any, Any]


@dataclass(frozen=True)
class DatasetKind:
    """One dataset.

    ``options``: its typed options (the spec's ``dataset``). ``shape(options)``: ``(classes,
    (C, H, W))``. ``load(options, data_dir, download)``: :data:`Tensors`. ``samples(options)``:
    how many samples it holds, both splits (its size is known before it is loaded: it is
    loaded whole, as float32). ``augmentation``:
    ``"crop_flip"`` or None, given the options. ``fetch(data_dir, download)``: makes sure the
    files are in ``data_dir`` (for a dataset that keeps files there; None for one that needs
    none).
    """

    options: type[StrictModel]
    shape: Callable[[Mapping[str, Any]], tuple[int, tuple[int, int, int]]]
    load: Callable[[Mapping[str, Any], Path, bool], Tensors]
    samples: Callable[[Mapping[str, Any]], int]
    augmentation: Callable[[Mapping[str, Any]], str | None] = field(default=lambda o: None)
    fetch: Callable[[Path, bool], None] | None = None


def _standardize(x_train: torch.Tensor, x_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of the train split applied to both splits."""
    dims = (0, 2, 3)
    mean = x_train.mean(dim=dims, keepdim=True)
    std = x_train.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return (x_train - mean) / std, (x_val - mean) / std


# ---- digits: scikit-learn's bundled 8x8 handwritten digits (real data, no network) ----------


class DigitsData(StrictModel):
    name: Literal["digits"] = "digits"


def _digits_load(options: Mapping[str, Any], data_dir: Path, download: bool) -> Tensors:
    """Pixel values / 16, a fixed stratified 80/20 split (``random_state=0``), normalized by
    the train split's mean and std."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.reshape(-1, 1, 8, 8) / 16.0
    xtr, xva, ytr, yva = train_test_split(
        x, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    xtr = torch.as_tensor(xtr, dtype=torch.float32)
    xva = torch.as_tensor(xva, dtype=torch.float32)
    xtr, xva = _standardize(xtr, xva)
    ytr = torch.as_tensor(ytr, dtype=torch.int64)
    yva = torch.as_tensor(yva, dtype=torch.int64)
    return xtr, ytr, xva, yva


# ---- synthetic: Gaussian classes, deterministic from the dataset's own seed -----------------


class SyntheticData(StrictModel):
    name: Literal["synthetic"] = "synthetic"
    num_classes: Annotated[int, Field(ge=2, le=1000)] = 10
    shape: tuple[
        Annotated[int, Field(ge=1, le=64)],
        Annotated[int, Field(ge=1, le=512)],
        Annotated[int, Field(ge=1, le=512)],
    ] = (1, 8, 8)
    n_train: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    n_val: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    noise: Annotated[float, Field(ge=0, le=1e6)] = 1.0
    separation: Annotated[float, Field(gt=0, le=1e6)] = 1.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    augment: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shape_list(cls, value: Any) -> Any:
        # JSON and YAML give lists; a strict tuple field wants a tuple
        if isinstance(value, dict) and isinstance(value.get("shape"), list):
            value = {**value, "shape": tuple(value["shape"])}
        return value

    @model_validator(mode="after")
    def _augment_fits(self) -> SyntheticData:
        """augment needs height and width > 4 (4-pixel reflect padding)."""
        if self.augment and min(self.shape[1:]) <= 4:
            rule = "needs height and width > 4 (4-pixel reflect padding)"
            raise problem("augment", rule + f", got shape {list(self.shape)}", self.augment)
        return self


def _synthetic_load(options: Mapping[str, Any], data_dir: Path, download: bool) -> Tensors:
    """Class ``k`` is ``N(mu_k, noise^2 I)`` with ``mu_k ~ N(0, separation^2 I)``.

    Labels are balanced (``i mod C``, then shuffled); everything is drawn from one CPU
    generator seeded with the dataset's own ``seed``. Normalized per channel by the train split.
    """
    import torch

    c = options["num_classes"]
    shape = options["shape"]
    dim = math.prod(shape)
    g = torch.Generator().manual_seed(options["seed"])
    means = torch.randn(c, dim, generator=g) * options["separation"]

    def draw(n: int):
        y = torch.arange(n) % c
        y = y[torch.randperm(n, generator=g)]
        x = means[y] + options["noise"] * torch.randn(n, dim, generator=g)
        return x.reshape(n, *shape), y

    xtr, ytr = draw(options["n_train"])
    xva, yva = draw(options["n_val"])
    xtr, xva = _standardize(xtr, xva)
    return xtr, ytr, xva, yva


# ---- torchvision: downloaded into data_dir, normalized with the standard constants -----------


class Cifar10Data(StrictModel):
    name: Literal["cifar10"] = "cifar10"
    augment: bool = True


class Cifar100Data(StrictModel):
    name: Literal["cifar100"] = "cifar100"
    augment: bool = True


class MnistData(StrictModel):
    name: Literal["mnist"] = "mnist"


class FashionMnistData(StrictModel):
    name: Literal["fashion_mnist"] = "fashion_mnist"


@dataclass(frozen=True)
class _Vision:
    """A torchvision dataset: its class, classes, input shape and normalization."""

    name: str
    cls_name: str
    num_classes: int
    in_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    samples: int  # train + test

    def expected_files(self, root: Path) -> str:
        """Which files are expected under ``root`` and where to get them."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.cls_name)
        if hasattr(cls, "base_folder"):  # CIFAR
            return (
                f"expected {root / cls.base_folder}/ (the extracted archive) or the archive "
                f"{root / cls.filename}. To provide it, download {cls.url} and copy it into "
                f"{root} (it is extracted on first use), or extract it there yourself."
            )
        raw = root / cls.__name__ / "raw"
        files = ", ".join(fname for fname, _ in cls.resources)
        urls = " or ".join(cls.mirrors)
        return (
            f"expected the files {files} (or the same without .gz) in {raw}/. To provide them, "
            f"download each from {urls} and copy them into {raw}/."
        )

    def raw(self, root: Path, train: bool, download: bool) -> Any:
        """The torchvision dataset of one split, downloaded if missing and ``download``."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.cls_name)
        try:
            return cls(root=str(root), train=train, download=False)
        except RuntimeError:
            if not download:
                raise DatasetNotFoundError(
                    f"dataset {self.name!r} is not in {root} (download disabled): "
                    f"{self.expected_files(root)}"
                ) from None
        try:
            root.mkdir(parents=True, exist_ok=True)
            return cls(root=str(root), train=train, download=True)
        except Exception as exc:  # network, disk or archive errors all mean "not available"
            raise DatasetNotFoundError(
                f"dataset {self.name!r} is not in {root} and could not be downloaded "
                f"({type(exc).__name__}: {exc}): {self.expected_files(root)}"
            ) from exc

    def fetch(self, root: Path, download: bool) -> None:
        """Both splits present (checked the way torchvision checks them; nothing kept)."""
        for train in (True, False):
            self.raw(root, train, download)

    def load(self, options: Mapping[str, Any], root: Path, download: bool) -> Tensors:
        import numpy as np
        import torch

        def split(train: bool):
            raw = self.raw(root, train, download)
            x = torch.as_tensor(np.asarray(raw.data))  # uint8: (N,H,W,C) CIFAR, (N,H,W) MNIST
            x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)
            x = x.to(torch.float32).div_(255.0)
            mean = torch.tensor(self.mean).view(1, -1, 1, 1)
            std = torch.tensor(self.std).view(1, -1, 1, 1)
            x = ((x - mean) / std).contiguous()
            y = torch.as_tensor(np.asarray(raw.targets), dtype=torch.int64)
            return x, y

        xtr, ytr = split(True)
        xva, yva = split(False)
        return xtr, ytr, xva, yva

    def kind(self, options: type[StrictModel]) -> DatasetKind:
        return DatasetKind(
            options=options,
            shape=lambda o: (self.num_classes, self.in_shape),
            load=self.load,
            samples=lambda o: self.samples,
            augmentation=lambda o: "crop_flip" if o.get("augment") else None,
            fetch=self.fetch,
        )


_CIFAR10 = _Vision(
    "cifar10",
    "CIFAR10",
    10,
    (3, 32, 32),
    (0.4914, 0.4822, 0.4465),
    (0.2470, 0.2435, 0.2616),
    60_000,
)
_CIFAR100 = _Vision(
    "cifar100",
    "CIFAR100",
    100,
    (3, 32, 32),
    (0.5071, 0.4865, 0.4409),
    (0.2673, 0.2564, 0.2762),
    60_000,
)
_MNIST = _Vision("mnist", "MNIST", 10, (1, 28, 28), (0.1307,), (0.3081,), 70_000)
_FASHION = _Vision("fashion_mnist", "FashionMNIST", 10, (1, 28, 28), (0.2860,), (0.3530,), 70_000)


# ---- the registry ----------------------------------------------------------------------------

DATASETS: dict[str, DatasetKind] = {
    "digits": DatasetKind(
        options=DigitsData,
        shape=lambda o: (10, (1, 8, 8)),
        load=_digits_load,
        samples=lambda o: 1797,
    ),
    "synthetic": DatasetKind(
        options=SyntheticData,
        shape=lambda o: (o["num_classes"], tuple(o["shape"])),
        load=_synthetic_load,
        samples=lambda o: o["n_train"] + o["n_val"],
        augmentation=lambda o: "crop_flip" if o["augment"] else None,
    ),
    "cifar10": _CIFAR10.kind(Cifar10Data),
    "cifar100": _CIFAR100.kind(Cifar100Data),
    "mnist": _MNIST.kind(MnistData),
    "fashion_mnist": _FASHION.kind(FashionMnistData),
}

#: The dataset names, in registry order.
DATASET_KINDS: tuple[str, ...] = tuple(DATASETS)

#: The spec's typed dataset: one of the registry's options models, told apart by ``name``.
DatasetSpec = Annotated[
    Union[  # noqa: UP007 (a union built from the registry)
        tuple(Annotated[k.options, Tag(kind_tag({"name": n}))] for n, k in DATASETS.items())
    ],
    Discriminator(kind_tag),
]
#: The spec's before-validator of ``dataset``: a bare name becomes ``{"name": name}``.
dataset_before = named(DATASET_KINDS, "dataset")


class _OneDataset(StrictModel):
    dataset: DatasetSpec

    @field_validator("dataset", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return dataset_before(value)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset, without loading it; ``samples``: both
    splits together."""

    name: str
    num_classes: int
    in_shape: tuple[int, int, int]
    samples: int

    @property
    def input_bytes(self) -> int:
        """Bytes of its inputs as loaded: every sample, float32 (labels left out)."""
        return 4 * self.samples * math.prod(self.in_shape)


def dataset_spec(name: str | BaseModel, **options: Any) -> Any:
    """``name`` with ``options`` as the spec's typed dataset (a :data:`DatasetSpec`: every
    option checked by the spec's own rules, defaults filled in). A typed dataset given as
    ``name`` (with no options) is returned as it is: it was checked when it was made.

    Raises:
        SpecError: (a ``ConfigError``) unknown dataset or option, or a bad value, each as
            ``dataset.<option> <rule>, got <value>``.
    """
    if isinstance(name, BaseModel) and not options:
        return name
    value = {"name": name, **options} if options else name
    try:
        return _OneDataset.model_validate({"dataset": value}).dataset
    except ValidationError as exc:
        raise SpecError(spec_problems(exc, root=_OneDataset)) from None


def dataset_options(dataset: BaseModel) -> dict[str, Any]:
    """A typed dataset's options as its registry entry takes them (Python types, defaults in)."""
    return dataset.model_dump(exclude={"name"})


class DatasetFields:
    """``dataset_name`` and ``dataset_options`` of a model with a typed ``dataset`` field (the
    study spec and the trial config read their dataset alike). Not a field of its own: a
    pydantic model would take an annotation here as one."""

    @property
    def dataset_name(self) -> str:
        return self.dataset.name

    @property
    def dataset_options(self) -> dict[str, Any]:
        """The dataset's options (every one, defaults included, JSON types) as
        :func:`study.data.loader.load_dataset` takes them."""
        return self.dataset.model_dump(mode="json", exclude={"name"})


def dataset_info(name: str | BaseModel, **options: Any) -> DatasetInfo:
    """Number of classes and input shape of ``name`` with ``options`` (or of a typed dataset);
    loads nothing.

    Raises:
        SpecError: (a ``ConfigError``) unknown dataset (listing the valid ones) or bad option.
    """
    spec = dataset_spec(name, **options)
    kind, values = DATASETS[spec.name], dataset_options(spec)
    num_classes, in_shape = kind.shape(values)
    return DatasetInfo(
        name=spec.name,
        num_classes=num_classes,
        in_shape=tuple(in_shape),
        samples=int(kind.samples(values)),
    )
