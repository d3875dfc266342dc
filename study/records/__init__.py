"""Study records in MLflow (the system of record): the store, signatures and ids.

- ``store``: ``StudyStore`` (create, read, list, set status, trials, summaries)
- ``signing``: signing and checking study records
- ``ids``: study ids and idempotency keys
- ``locks``: the creation lock, shared by every process of one store

Import the module you need (this package imports nothing).
"""
