"""Training: one trial, a pack of trials trained as one batched computation, and schedules.

- ``trial``: ``train_trial`` (config in, metrics out)
- ``pack``: ``train_pack`` (K trials of one study at once)
- ``schedule``: learning-rate schedules as pure functions

Import the module you need (this package imports nothing).
"""
