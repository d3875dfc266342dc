"""Optimizers: the registry, INSGD and the rules of their hyperparameters.

- ``registry``: ``OPTIMIZERS``, ``create_optimizer``, ``optimizer_hparams``
- ``insgd``: the INSGD optimizer (torch-shaped)
- ``hparams``: one rule per hyperparameter, checked before anything is built

Import the module you need (this package imports nothing).
"""
