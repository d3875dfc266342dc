"""The study spec: what a study and one trial may ask for, and the rules that check it.

- ``study_spec``: :class:`~study.spec.study_spec.StudySpec`, the YAML file / ``POST /studies`` body
- ``options``: schedules and datasets as typed options; model, optimizer and init rules
- ``model_check``: a model's name, options and size (its ceilings) checked
- ``bounds``: how big a study is (design, model, dataset), from the spec alone, and the
  limits the service and ``hprobust run`` put on it
- ``docs``: writes ``docs/spec.md`` from the code (``python -m study.spec.docs``)

Import the module you need (this package imports nothing).
"""
