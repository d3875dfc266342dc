"""Running a study on Ray Tune: the runner, the arms' searcher, MLflow tracking, the preflight,
where signals may stop a driver, and what fits on a Ray node.

- ``runner``: ``run_study`` (one Tuner for every arm)
- ``searcher``: Optuna per arm, interleaved; seeds replicated
- ``tracking``: trial events as MLflow runs (a Tune callback)
- ``preflight``: the dataset and the model checked before any trial
- ``interrupts``: SIGINT/SIGTERM held while a record is written
- ``cluster``: whether a trial fits a Ray node

Import the module you need (this package imports nothing). The process that runs one study is
:mod:`study.driver`.
"""
