"""The suite spec: the same comparison on several workloads (docs/suites.md, "Running a suite").

A suite document is a study spec's shared keys (``arms``, ``search``, ``seeds``, ``epochs``,
``batch_size``, ``schedule``, ``analysis``, ``resources``, ...) plus ``name`` and
``workloads: [{name, dataset, model, ...}]``. Each workload's keys are deep-merged over the
shared ones (mappings merge key by key, anything else replaces) and the result is validated as
an ordinary study (:class:`~study.spec.study_spec.StudySpec`; a mapping naming another kind, such
as ``model: {name: mlp}`` over a shared ``toy_cnn``, replaces the shared one whole), its study named
``<suite name>/<workload name>``. A problem in a workload's own key is named by its path in the
workload (``workloads.digits-bn.model.width``); a problem in a shared key by the shared key
(``epochs``), once. The arms, baseline and seeds are the suite's: a workload may not set
``arms``, ``seeds`` or ``seed`` (every workload must run the same arms on the same seeds, or
its differences cannot be pooled).

    >>> parse_suite({"name": "s", "arms": [{"name": "sgd", "optimizer": "sgd"}],
    ...              "search": {"lr": {"low": 0.01, "high": 1}, "init": ["xavier_normal"]},
    ...              "workloads": [{"name": "a", "dataset": "digits", "model": {"name": "mlp"}}]})
    Traceback (most recent call last):
    study.errors.SpecError: workloads must have at least 2 workloads (pooling needs 2), got 1
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from study.spec.bounds import SizeLimits
    from study.spec.study_spec import StudySpec

#: Most workloads of one suite.
MAX_WORKLOADS = 16
#: Fewest workloads of one suite (pooling needs two).
MIN_WORKLOADS = 2
#: Most characters of a suite's name (its studies are named ``<suite>/<workload>``: <= 200).
MAX_SUITE_NAME = 120
#: A workload name: an identifier (it is part of field paths and of its study's name).
WORKLOAD_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
WORKLOAD_NAME_RULE = (
    "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
)
#: Keys every workload shares: the same arms (baseline first) and seeds everywhere.
SUITE_ONLY = ("arms", "seeds", "seed")
SAME_EVERYWHERE_RULE = (
    "must not be set per workload: every workload runs the suite's arms, baseline and seeds "
    "(set it among the shared keys)"
)


def is_suite(data: Any) -> bool:
    """Whether a parsed document is a suite (it has ``workloads``), not a study spec."""
    return isinstance(data, Mapping) and "workloads" in data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings key by key, anything else replaces. A
    mapping that names another kind (its ``name`` differs: ``model: {name: mlp}`` over a shared
    toy_cnn) replaces the shared one whole, so no option of the other kind is carried over."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        old = out.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(old, Mapping)
            and value.get("name", old.get("name")) == old.get("name")
        ):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Workload:
    """One workload of a suite: its name and the ordinary study it becomes."""

    name: str
    spec: StudySpec


@dataclass(frozen=True)
class SuiteSpec:
    """A valid suite: its name and its workloads' studies (same arms, baseline, seeds)."""

    name: str
    workloads: tuple[Workload, ...]

    @property
    def arm_names(self) -> list[str]:
        return self.workloads[0].spec.arm_names

    @property
    def baseline(self) -> str:
        return self.arm_names[0]

    @property
    def total_trials(self) -> int:
        return sum(w.spec.total_trials for w in self.workloads)

    def document(self) -> dict[str, Any]:
        """The suite as JSON data: its name and each workload's full study spec (what is
        signed, stored and compared for an Idempotency-Key)."""
        return {
            "name": self.name,
            "workloads": [
                {"name": w.name, "spec": w.spec.model_dump(mode="json")} for w in self.workloads
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.document(), sort_keys=True)

    def design_warnings(self) -> list[str]:
        """Each workload's design warnings, named by workload (deduplicated)."""
        out: list[str] = []
        for w in self.workloads:
            for text in w.spec.design_warnings():
                line = f"workload {w.name}: {text}"
                if line not in out:
                    out.append(line)
        if len(self.workloads) < 4:
            out.append(
                f"{len(self.workloads)} workloads: the pooled interval uses Student t with "
                f"{len(self.workloads) - 1} degree(s) of freedom, so only a large, consistent "
                "difference gives a suite verdict"
            )
        return out


def _problem(field: str, rule: str, value: Any) -> dict[str, Any]:
    return {"field": field, "rule": rule, "value": value}


def _workload_problems(
    i: int, item: Any, seen: set[str]
) -> tuple[str | None, list[dict[str, Any]]]:
    """The workload's name and the problems of its own shape (not of its study)."""
    if not isinstance(item, Mapping):
        return None, [_problem(f"workloads.{i}", "must be a mapping of keys", item)]
    name = item.get("name")
    if not isinstance(name, str) or not WORKLOAD_NAME_RE.fullmatch(name):
        return None, [_problem(f"workloads.{i}.name", WORKLOAD_NAME_RULE, name)]
    problems = []
    if name in seen:
        problems.append(_problem(f"workloads.{name}.name", "must be unique in the suite", name))
    seen.add(name)
    for key in SUITE_ONLY:
        if key in item:
            problems.append(_problem(f"workloads.{name}.{key}", SAME_EVERYWHERE_RULE, item[key]))
    return name, problems


def _study_problems(
    name: str, merged: dict[str, Any], own: Mapping[str, Any], shared: Mapping[str, Any]
) -> tuple[StudySpec | None, list[dict[str, Any]]]:
    """The workload's study, or its problems: a field under one of the workload's own keys is
    named ``workloads.<name>.<field>``; one under a shared key keeps its shared name."""
    from study.spec.study_spec import parse_spec

    try:
        return parse_spec(merged), []
    except SpecError as exc:
        out = []
        for p in exc.problems:
            field = str(p["field"])
            top = field.split(".", 1)[0]
            if top != "name" and (top in own or top not in shared):
                field = f"workloads.{name}.{field}" if field else f"workloads.{name}"
            out.append({**p, "field": field})
        return None, out


def parse_suite(data: Any, *, source: str | None = None) -> SuiteSpec:
    """Validate a suite document; SpecError listing every problem (each field a path in the
    document: ``workloads.<name>.<key>`` or a shared key)."""
    if not isinstance(data, Mapping):
        raise SpecError([_problem("suite", "must be a mapping of keys", data)], source=source)
    problems: list[dict[str, Any]] = []
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_SUITE_NAME:
        problems.append(
            _problem(
                "name", f"must be a non-blank string of at most {MAX_SUITE_NAME} characters", name
            )
        )
    workloads = data.get("workloads")
    if not isinstance(workloads, list):
        problems.append(_problem("workloads", "must be a list of workloads", workloads))
        raise SpecError(problems, source=source)
    if not MIN_WORKLOADS <= len(workloads) <= MAX_WORKLOADS:
        rule = (
            f"must have at least {MIN_WORKLOADS} workloads (pooling needs 2)"
            if len(workloads) < MIN_WORKLOADS
            else f"must have at most {MAX_WORKLOADS} workloads"
        )
        problems.append(_problem("workloads", rule, len(workloads)))
        raise SpecError(problems, source=source)
    shared = {k: v for k, v in data.items() if k not in ("name", "workloads")}
    seen: set[str] = set()
    built: list[Workload] = []
    for i, item in enumerate(workloads):
        wname, own_problems = _workload_problems(i, item, seen)
        problems += own_problems
        if wname is None or own_problems:
            continue
        own = {k: v for k, v in item.items() if k != "name"}
        merged = deep_merge(shared, own)
        merged["name"] = f"{name}/{wname}" if isinstance(name, str) else wname
        spec, study_problems = _study_problems(wname, merged, own, shared)
        for p in study_problems:
            if p not in problems:
                problems.append(p)
        if spec is not None:
            built.append(Workload(wname, spec))
    if problems:
        raise SpecError(problems, source=source)
    return SuiteSpec(name=str(name), workloads=tuple(built))


def load_suite(path: str | Path) -> SuiteSpec:
    """Read and validate a YAML suite file (bounded like a spec file)."""
    from study.bounded import BoundedInputError, load_yaml

    path = Path(path)
    try:
        data = load_yaml(path.read_text())
    except OSError as exc:
        rule = f"must be a readable file ({exc.strerror})"
        raise SpecError([_problem("suite", rule, str(path))]) from None
    except BoundedInputError as exc:
        where = str(path) + (f":{exc.line}" if exc.line is not None else "")
        raise SpecError([_problem("suite", f"{exc.rule} at {where}", str(path))]) from None
    return parse_suite(data, source=str(path))


def suite_size_problems(suite: SuiteSpec, limits: SizeLimits) -> list[dict[str, Any]]:
    """The size limits per workload (:func:`study.spec.bounds.size_problems`, each field
    named by its workload) and in total: the design points of all workloads together keep
    ``max_design_points``."""
    from study.spec.bounds import design_points, env_name, size_problems

    out = []
    total = 0
    for w in suite.workloads:
        for p in size_problems(w.spec, limits):
            out.append({**p, "field": f"workloads.{w.name}.{p['field']}"})
        total += design_points(w.spec)[0]
    if not out and total > limits.max_design_points:
        out.append(
            _problem(
                "workloads",
                f"must give at most {limits.max_design_points} design points per arm over all "
                f"workloads together ({env_name('max_design_points')}); they give {total}",
                total,
            )
        )
    return out
