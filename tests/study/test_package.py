"""``import study`` stays light (docs/design.md#the-shape): no torch, ray, mlflow or fastapi until a
module that needs them is used; ``from study import INSGD`` still works."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "mlflow", "fastapi")


@pytest.mark.parametrize(
    "statement",
    [
        "import study",
        "import study.errors, study.optim.hparams, study.optim.registry, study.records.ids",
        "import study.vocab, study.analysis",
        "import study.cli",
        "from study.spec.study_spec import StudySpec",
        "import study.spec.trial_config, study.data.registry, study.records.store",
        "import study.spec, study.optim, study.data, study.train, study.tune, study.records",
        "import study.faults, study.numbers, study.bounded, study.runtime",
    ],
)
def test_light_imports(statement: str) -> None:
    code = f"import sys\n{statement}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{statement!r} imported {result.stdout.strip()}"


def test_insgd_is_exported_lazily() -> None:
    code = "import study, sys\nassert 'torch' not in sys.modules\nprint(study.INSGD.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "study.optim.insgd"
