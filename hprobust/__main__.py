"""``python -m hprobust``: the same command line as the ``hprobust`` console script."""

from hprobust.cli import app

app(prog_name="hprobust")
