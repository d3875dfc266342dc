"""hprobust's HTTP front end: routes, settings, auth, limits and Ray Job submission.

No training code lives here: routes call :mod:`study.records.store` (MLflow) and
:mod:`service.jobs` (Ray Jobs), which know nothing of HTTP.
"""
