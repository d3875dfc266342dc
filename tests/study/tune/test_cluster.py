"""What the Ray cluster can run (study/tune/cluster.py): a trial fits a node or the spec is
refused; ``max_concurrent_trials`` is bounded by the CPUs, GPUs and memory the nodes really
have (issue 21, probe Q2), with a warning that says so."""

from __future__ import annotations

import doctest

import pytest

import study.tune.cluster
from study.errors import SpecError
from study.spec.bounds import TRIAL_PROCESS_BYTES, trial_memory_bytes
from study.spec.study_spec import parse_spec
from study.tune.cluster import concurrency_cap, study_concurrency, trials_that_fit

GB = 1e9
SPEC = {
    "name": "q2",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "sampler": "qmc",
    "trials_per_arm": 6,
}
TWO_CPUS = [{"CPU": 2.0, "memory": 16 * GB}]


def test_doctests():
    assert doctest.testmod(study.tune.cluster).failed == 0


def test_q2_a_hundredth_of_a_cpu_is_refused():
    """Probe Q2: ``cpus_per_trial: 0.01, max_concurrent_trials: 12`` started 5+ trial
    processes of 0.75 GB each on 2 CPUs. A trial now asks for a quarter of a CPU at least."""
    with pytest.raises(SpecError) as info:
        parse_spec({**SPEC, "resources": {"cpus_per_trial": 0.01, "max_concurrent_trials": 12}})
    (problem,) = info.value.problems
    assert problem["field"] == "resources.cpus_per_trial" and problem["value"] == 0.01
    assert problem["rule"].startswith("must be >= 0.25")


def test_q2_concurrency_is_capped_by_the_cpus_a_cpu_trial_really_takes():
    """Q2 at the floor: 12 trials at once asked, 0.25 CPUs each, on 2 CPUs: a trial on CPUs
    runs at least one thread, so 2 run at a time, and the warning says why."""
    spec = parse_spec({**SPEC, "resources": {"cpus_per_trial": 0.25, "max_concurrent_trials": 12}})
    cap, warning = study_concurrency(spec, TWO_CPUS)
    assert cap == 2
    assert warning.startswith(
        "resources.max_concurrent_trials 12 is more than the Ray cluster can run at once: a "
        "trial asks for 0.25 CPUs (counted as 1: a trial on CPUs runs at least one thread)"
    )
    assert warning.endswith("so at most 2 trials run at a time")
    assert "1 node with 2 CPUs and 0 GPUs, 16 GB of memory in all" in warning


def test_memory_caps_too():
    """Four 1-CPU trials of about 0.76 GB on 16 CPUs but 2.5 GB of memory: 3 at a time."""
    spec = parse_spec({**SPEC, "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 4}})
    need = trial_memory_bytes(spec)
    assert TRIAL_PROCESS_BYTES < need < TRIAL_PROCESS_BYTES + 0.05 * GB
    cap, warning = study_concurrency(spec, [{"CPU": 16.0, "memory": 3 * need + 1}])
    assert cap == 3 and "at most 3 trials" in warning
    # memory the node does not report is not a limit
    assert study_concurrency(spec, [{"CPU": 16.0}]) == (4, None)


def test_gpus_cap_gpu_trials_and_fractional_cpus_count_as_asked_there():
    nodes = [{"CPU": 4.0, "GPU": 1.0, "memory": 64 * GB}, {"CPU": 8.0, "memory": 64 * GB}]
    # on the GPU node: 4 by the GPU (0.25 each), 8 by the CPUs (0.5 each, a GPU trial)
    assert trials_that_fit(0.5, 0.25, GB, nodes) == 4
    assert concurrency_cap(8, 0.5, 0.25, GB, nodes)[0] == 4
    assert concurrency_cap(3, 0.5, 0.25, GB, nodes) == (3, None)
    # CPU trials use both nodes
    assert trials_that_fit(1, 0, GB, nodes) == 12


def test_nothing_known_nothing_capped_and_never_below_one():
    assert concurrency_cap(12, 1, 0, GB, []) == (12, None)
    cap, warning = concurrency_cap(4, 1, 0, 100 * GB, TWO_CPUS)  # no node holds one trial
    assert cap == 1 and "at most 1 trial run at a time" in warning


def test_the_service_warns_with_the_202(monkeypatch):
    from service.studies import limit_warnings

    spec = parse_spec({**SPEC, "resources": {"cpus_per_trial": 0.25, "max_concurrent_trials": 12}})
    assert limit_warnings(spec, TWO_CPUS) == [study_concurrency(spec, TWO_CPUS)[1]]
    assert limit_warnings(spec, None) == []


@pytest.mark.parametrize(
    ("resources", "cores", "cpus", "at_once"),
    [
        ({}, 16, 2, 2),  # the defaults: 2 trials at once, 1 CPU each
        ({"cpus_per_trial": 0.5, "max_concurrent_trials": 3}, 16, 3, 3),  # CPU trial: >= 1 CPU
        ({"cpus_per_trial": 0.5, "gpus_per_trial": 0.25, "max_concurrent_trials": 3}, 16, 2, 3),
        ({"cpus_per_trial": 4, "max_concurrent_trials": 4}, 6, 6, 1),  # at most the cores
        ({"cpus_per_trial": 1, "max_concurrent_trials": 1}, 1, 1, 1),
    ],
)
def test_hprobust_runs_local_ray_gets_the_cpus_its_trials_take_at_once(
    resources, cores, cpus, at_once
):
    """Ray starts a worker per CPU of a local Ray (each importing torch): ``hprobust run``
    gives it what the study's trials take at once, never more than the machine has; on such
    a Ray the study runs as many trials at once as it would on all the machine's cores."""
    from study.tune.cluster import local_ray_cpus

    spec = parse_spec({**SPEC, "resources": resources})
    assert local_ray_cpus(spec, cores=cores) == cpus
    node = {"CPU": float(cpus), "GPU": 4.0, "memory": 64 * GB}
    everything = {"CPU": float(cores), "GPU": 4.0, "memory": 64 * GB}
    assert study_concurrency(spec, [node])[0] == at_once
    assert study_concurrency(spec, [everything])[0] == at_once
