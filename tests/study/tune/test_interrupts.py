"""study.tune.interrupts: SIGINT/SIGTERM held until a safe point, so a cancel never tears a record.

The signals are real (``os.kill`` of this process): Python runs the handler in the main thread
right after the call returns, which is where pytest runs the tests.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec
from study.tune.interrupts import deferred, deliver, interruptible, reclaim
from study.vocab import StudyStatus


def _send(signum: int = signal.SIGINT) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_held_until_deliver_raises_it(signum):
    after = []
    with deferred():
        _send(signum)
        after.append("ran on")  # the signal did not stop this line
        with pytest.raises(KeyboardInterrupt, match=f"^signal {int(signum)}$"):
            deliver()
        deliver()  # delivered once: nothing is held now
    assert after == ["ran on"]


def test_a_second_signal_while_one_is_held_raises_at_once():
    reached = []
    with deferred():
        _send()
        with pytest.raises(KeyboardInterrupt, match=r"^signal 15$"):
            _send(signal.SIGTERM)
            reached.append("after the second")
        deliver()  # the forced one took the held one with it
    assert reached == []


def test_interruptible_raises_a_held_signal_on_entry_and_a_new_one_at_once():
    entered = []
    with deferred():
        _send()
        with pytest.raises(KeyboardInterrupt), interruptible():
            entered.append("body")
        assert entered == []
        with pytest.raises(KeyboardInterrupt, match=r"^signal 15$"), interruptible():
            _send(signal.SIGTERM)
            entered.append("after the signal")
        assert entered == []
        _send()  # closed again after the block: held
        entered.append("held")
        with pytest.raises(KeyboardInterrupt):
            deliver()
    assert entered == ["held"]


def test_a_signal_held_when_the_block_ends_is_dropped_and_the_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with deferred():
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
        _send(signal.SIGTERM)
    assert {s: signal.getsignal(s) for s in before} == before
    deliver()  # nothing held after the block: the work it wanted to stop was done
    with deferred():
        deliver()  # a new block starts with nothing held


def test_reclaim_takes_the_signals_back_from_a_library_handler():
    """``ray.init`` sets SIGTERM to ``sys.exit``: after it, a service's cancel raised
    SystemExit wherever the driver was, and the study ended failed."""

    def library_handler(signum, frame):  # what ray.init installs
        raise SystemExit(signum)

    with deferred():
        signal.signal(signal.SIGTERM, library_handler)
        reclaim()
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM)
        _send(signal.SIGTERM)  # held, not SystemExit
        with pytest.raises(KeyboardInterrupt, match=r"^signal 15$"):
            deliver()
    assert signal.getsignal(signal.SIGTERM) is not library_handler


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            _send()
            reclaim()  # takes only what deferred() took
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            deliver()  # nothing was held
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_other_threads_neither_deliver_nor_open_the_gate():
    outcome = []

    def worker():
        try:
            deliver()
            with interruptible():
                outcome.append("no raise in the thread")
        except KeyboardInterrupt:  # pragma: no cover - the failure this test catches
            outcome.append("raised in the thread")

    with deferred():
        _send()
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        with pytest.raises(KeyboardInterrupt):
            deliver()  # still held for the main thread
    assert outcome == ["no raise in the thread"]


SPEC = {
    "name": "interrupts",
    "dataset": "synthetic",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["kaiming_normal"]},
    "trials_per_arm": 2,
    "seeds": 1,  # the seeds default (3) would triple the trials
    "epochs": 1,
}


def test_a_signal_inside_a_store_read_waits_for_it_and_the_cancel_write_goes_through(tmp_path):
    """What CI caught (stop 17): SIGINT landed in the driver between a SQLite SELECT and the
    read of its rows. The open statement kept SQLite's shared lock while the exception was
    being handled, so the cancel's write in the handler failed ``database is locked`` after
    20 s and the study ended failed. Held, the signal waits for the read to end."""
    store = StudyStore(sqlite_uri(tmp_path))
    sid = store.create_study(parse_spec(SPEC)).id
    sent: list[str] = []

    def signal_mid_read(conn, cursor, statement, parameters, context, executemany):
        if not sent and statement.lstrip().upper().startswith("SELECT"):
            sent.append(statement)
            _send()  # after the SELECT ran, before its rows are read

    event.listen(Engine, "after_cursor_execute", signal_mid_read)
    try:
        with deferred():
            try:
                record = store.get(sid)
                deliver()
            except KeyboardInterrupt as exc:
                assert str(exc) == "signal 2"
                store.set_status(sid, StudyStatus.CANCELLED)  # in the handler, as drive() does
            else:
                pytest.fail("the held signal was not delivered")
    finally:
        event.remove(Engine, "after_cursor_execute", signal_mid_read)
    assert sent  # the signal did land inside the read
    assert record.id == sid
    assert store.get(sid).status == StudyStatus.CANCELLED
