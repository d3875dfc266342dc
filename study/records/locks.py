"""The creation lock: studies are created one at a time per store, across processes.

:meth:`study.records.store.StudyStore.create_study` looks up an ``Idempotency-Key`` and then
writes the study; two creators must not both find the key unused. A lock per process is not
enough once two API processes (replicas, or ``hprobust run`` beside ``hprobust serve``) share
one store, so the lock belongs to the store:

- ``sqlite:///DIR/mlflow.db``: an exclusive ``flock`` on ``DIR/mlflow.db.create-lock`` (every
  process on the machine that opens the database; SQLite is not shared across machines);
- ``postgresql://...``: a PostgreSQL advisory lock (``pg_try_advisory_lock``) held on a
  connection of its own, which the server releases if its holder dies;
- any other URI (an MLflow tracking server, ``http://...``): a lock in this process only. The
  tracking server offers no lock: creations through one server are serialized per API
  process (run one API process per tracking server, or point the API at the database).

A holder that dies releases the lock with its process (file) or its connection (PostgreSQL):
no lock outlives its holder. Every lock is also a thread lock, so threads of one process take
turns as well. Importing this module imports only the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

#: The advisory lock's key: a fixed 64-bit number of its own (the first 8 bytes of a hash).
ADVISORY_KEY = int.from_bytes(
    hashlib.sha256(b"hprobust.create_study").digest()[:8], "big", signed=True
)
POLL_S = 0.02  # how often a waiter tries again


class CreationLock:
    """A lock in this process (the base: other locks add a lock shared with other processes)."""

    scope = "process"

    def __init__(self) -> None:
        self._threads = threading.Lock()

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds (None: for good); False if it
        could not be had in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._threads.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            if self._take_shared(deadline):
                return True
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def release(self) -> None:
        try:
            self._release_shared()
        finally:
            self._threads.release()

    def _take_shared(self, deadline: float | None) -> bool:
        return True

    def _release_shared(self) -> None:
        return None

    @staticmethod
    def _wait(deadline: float | None) -> bool:
        """Sleep before the next try; False once ``deadline`` has passed."""
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
        return True


class FileLock(CreationLock):
    """An exclusive ``flock`` on ``path`` (a new open file each time, so threads and processes
    alike take turns)."""

    scope = "machine"

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = None

    def _take_shared(self, deadline: float | None) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self._wait(deadline):
                    continue
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return True

    def _release_shared(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


class AdvisoryLock(CreationLock):
    """A PostgreSQL advisory lock (:data:`ADVISORY_KEY`) on a connection of its own, opened
    for each turn and closed after it (the server drops the lock with the connection)."""

    scope = "database"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._engine: Any = None
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(self.url, poolclass=NullPool)
        return self._engine.connect()

    def _take_shared(self, deadline: float | None) -> bool:
        from sqlalchemy import text

        conn = self._connect()
        try:
            while True:
                taken = conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
                ).scalar()
                conn.commit()  # no transaction stays open while the lock is held
                if taken:
                    self._conn = conn
                    return True
                if not self._wait(deadline):
                    conn.close()
                    return False
        except BaseException:
            conn.close()
            raise

    def _release_shared(self) -> None:
        from sqlalchemy import text

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with contextlib.suppress(Exception):  # closing the connection releases it anyway
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                conn.commit()
        finally:
            conn.close()


def creation_lock(tracking_uri: str) -> CreationLock:
    """The creation lock of the store at ``tracking_uri`` (see the module doc)."""
    if tracking_uri.startswith("sqlite:///"):
        return FileLock(tracking_uri.removeprefix("sqlite:///") + ".create-lock")
    if tracking_uri.startswith(("postgresql://", "postgresql+", "postgres://")):
        url = "postgresql://" + tracking_uri.removeprefix("postgres://")
        return AdvisoryLock(url if tracking_uri.startswith("postgres://") else tracking_uri)
    return CreationLock()
