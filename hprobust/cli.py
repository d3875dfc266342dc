"""The ``hprobust`` root command: the study commands (:mod:`study.cli`: run, trials, summary,
demo) and the service's (:mod:`service.cli`: serve, submit, ui) in one group.

Composition only: each layer owns its commands, so the study layer's never import the service
and the service's sit beside what they start. Both command apps are light to import (their
heavy imports are inside the commands), so ``hprobust --help`` stays instant.
"""

from __future__ import annotations

import typer

from service.cli import app as service_app
from study.cli import app as study_app

app = typer.Typer(
    name="hprobust",
    help="Hyperparameter-robustness studies: learning rate x initialization, SGD vs INSGD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """Hyperparameter-robustness studies: learning rate x initialization, SGD vs INSGD."""
    # A callback keeps ``hprobust <command>`` a command group whatever the commands are.
    from study.runtime import configure_process

    configure_process()  # the process-wide settings of Ray Tune and MLflow, for every command


# Without a name, typer merges the sub-apps' commands into this group (``hprobust run``, not
# ``hprobust study run``).
app.add_typer(study_app)
app.add_typer(service_app)
