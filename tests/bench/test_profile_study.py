"""bench/profile_study.py's py-spy summary: each sample goes to the process it was taken in,
and the process py-spy started (the driver, whose command line Ray's driver leaves empty in
``/proc``) is told apart from its children and grandchildren."""

from __future__ import annotations

from pathlib import Path

from tests.bench import load_bench


def test_samples_go_to_the_driver_and_the_trial_actor(tmp_path: Path, capsys) -> None:
    bench = load_bench("profile_study")
    root = 'process 10:""'
    raylet = 'process 11:"/venv/ray/core/src/ray/raylet/raylet --raylet_socket_name=x;y"'
    worker = 'process 12:"/venv/python /venv/ray/_private/workers/default_worker.py --a"'
    raw = tmp_path / "pyspy.txt"
    raw.write_text(
        f"{root};Tuner.fit (ray/tune/tuner.py:332);TuneController.step (t.py:670) 30\n"
        f"{root};Thread.run (threading.py:982);MlflowClient.log_batch (c.py:2793) 50\n"
        f"{root};{raylet};{worker};Worker.main_loop (ray/_private/worker.py:1069) 7\n"
        f"{root};{raylet};{worker};Worker.main_loop (ray/_private/worker.py:1069);"
        "_find_and_load (<frozen importlib._bootstrap>:1176) 4\n"
    )
    bench.summarize_pyspy(raw, top=5)
    out = capsys.readouterr().out
    rows = {line.split("%", 1)[1].strip(): int(line.split()[0]) for line in out.splitlines()
            if line.strip().endswith(")") and "%" in line}  # fmt: skip
    assert rows == {"driver (hprobust run)": 80, "Ray worker (trial actor)": 11}
    driver = out.split("of the driver (hprobust run):")[1].split("heaviest")[0]
    assert "50  MlflowClient.log_batch (c.py:2793)" in driver
    assert "30  Tuner.fit (ray/tune/tuner.py:332)" in driver
    worker_part = out.split("of the Ray worker (trial actor):")[1]
    assert "11  Worker.main_loop (ray/_private/worker.py:1069)" in worker_part
    assert "MlflowClient" not in worker_part
