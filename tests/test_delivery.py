"""The outbox worker against a real SMTP server: retries on the test clock, failures, crashes, rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.clock import FixedClock
from scheduler.delivery import backoff_delay, deliver
from scheduler.mailings import compose, queue
from scheduler.store import SQLiteStore
from scheduler.transport import SMTPSettings, SMTPTransport
from tests.smtp_server import Recorder, SMTPServer

SEED = "heads-2020-09"


@pytest.fixture
def setup(example, tmp_path):
    clock = FixedClock(datetime(2020, 9, 11, 7, tzinfo=UTC))
    store = SQLiteStore(tmp_path / "state.db")
    messages = compose(example, "invitation", meeting=SEED, store=store, now=clock.now())
    queue(store, example, messages, now=clock.now())
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes on the test clock only
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    return store, clock, sleep, slept, {m.recipient.lower() for m in messages}


async def test_451_then_ok_retries_with_backoff_and_550_fails(setup):
    store, clock, sleep, slept, everyone = setup
    rec = Recorder(data_replies=["451 4.7.1 greylisted"], reject={"head@school2.example.org"})
    with SMTPServer(rec) as server:
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        report = await deliver(store, t, clock, concurrency=2, sleep=sleep)
    assert report.sent == len(everyone) - 1 and report.failed == 1 and report.retried == 1
    assert report.failures[0][1] == "head@school2.example.org" and "550" in report.failures[0][2]
    assert slept == [15.0]  # one backoff step, waited on the given clock
    assert {r: len(v) for r, v in rec.by_recipient().items()} == dict.fromkeys(
        everyone - {"head@school2.example.org"}, 1
    )
    failed = store.outbox(status="failed")
    assert len(failed) == 1 and failed[0].attempts == 1  # a 5xx is never retried
    again = await deliver(store, t, clock, sleep=sleep)  # server gone; nothing queued, nothing tried
    assert again.sent == again.failed == 0


async def test_gives_up_after_max_attempts(setup):
    store, clock, sleep, _slept, everyone = setup
    rec = Recorder(data_replies=["421 4.3.2 busy"] * 100)
    with SMTPServer(rec) as server:
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        report = await deliver(store, t, clock, concurrency=1, sleep=sleep, max_attempts=3)
    assert report.failed == len(everyone) and report.sent == 0
    assert all("gave up after 3 attempts" in r.last_error for r in store.outbox(status="failed"))
    assert backoff_delay(1, timedelta(seconds=15), timedelta(minutes=30)) == timedelta(seconds=15)
    assert backoff_delay(3, timedelta(seconds=15), timedelta(minutes=30)) == timedelta(seconds=60)
    assert backoff_delay(30, timedelta(seconds=15), timedelta(minutes=30)) == timedelta(minutes=30)


async def test_dropped_connection_and_stall_are_retried(setup):
    store, clock, sleep, _slept, everyone = setup
    rec = Recorder(drop_at={1}, stall_at={3})
    with SMTPServer(rec) as server:
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=0.5))
        report = await deliver(store, t, clock, concurrency=1, sleep=sleep)
        server.release()
    assert report.sent == len(everyone) and report.failed == 0 and report.retried == 2
    assert all(len(v) == 1 for v in rec.by_recipient().values()) and set(rec.by_recipient()) == everyone


class _Crash(BaseException):
    """A kill: nothing in the worker handles it, so the row stays in `sending`."""


async def test_crash_mid_delivery_then_rerun_delivers_each_once(setup):
    store, clock, sleep, _slept, everyone = setup
    rec = Recorder()
    with SMTPServer(rec) as server:
        real = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))

        class Crashing:
            description = "crashing"
            sent = 0

            async def connect(self):
                inner = await real.connect()
                outer = self

                class Conn:
                    async def send(self, *a):
                        if outer.sent == 3:
                            raise _Crash("worker died")
                        outer.sent += 1
                        return await inner.send(*a)

                    async def close(self):
                        await inner.close()

                return Conn()

        with pytest.raises(_Crash):
            await deliver(store, Crashing(), clock, concurrency=1, sleep=sleep)
        assert store.outbox_counts()["sending"] == 1  # as a kill would leave it
        report = await deliver(store, real, clock, concurrency=3, sleep=sleep)
    assert report.recovered == 1
    assert {r: len(v) for r, v in rec.by_recipient().items()} == dict.fromkeys(everyone, 1)
    assert store.outbox_counts()["sent"] == len(everyone)


async def test_rate_limit_paces_on_the_clock(setup):
    store, clock, sleep, _slept, everyone = setup
    rec = Recorder()
    start = clock.now()
    with SMTPServer(rec) as server:
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        report = await deliver(store, t, clock, concurrency=3, rate_per_minute=60, sleep=sleep)
    assert report.sent == len(everyone)
    assert clock.now() - start >= timedelta(seconds=len(everyone) - 1)


# --- hostile servers and a failing store (issue 10) ---------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_a_refused_login_stops_every_worker_loudly_and_leaves_nothing_in_sending(setup, caplog):
    from scheduler.delivery import stopped_reason
    from scheduler.transport import TransportConfigError

    store, clock, sleep, _slept, everyone = setup
    rec = Recorder()
    with SMTPServer(rec, credentials=("user", "right"), auth_require_tls=False) as server:
        t = SMTPTransport(
            SMTPSettings("127.0.0.1", server.port, "none", "user", "wrong", timeout=5, allow_plain_auth=True)
        )
        with pytest.raises(TransportConfigError, match="refused the login: 535"):  # not an ExceptionGroup
            await deliver(store, t, clock, concurrency=4, sleep=sleep)
    counts = store.outbox_counts()
    assert counts.get("sending", 0) == 0 and counts["queued"] == len(everyone)
    assert "535" in (stopped_reason(store.outbox()) or "")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors and all("535" in r.getMessage() for r in errors)
    assert rec.accepted == []


async def test_nobody_listening_is_a_configuration_failure(setup):
    import socket

    from scheduler.transport import TransportConfigError

    store, clock, sleep, _slept, _everyone = setup
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = SMTPTransport(SMTPSettings("127.0.0.1", port, timeout=5))
    with pytest.raises(TransportConfigError, match="cannot connect"):
        await deliver(store, t, clock, concurrency=2, sleep=sleep)
    assert store.outbox_counts().get("sending", 0) == 0


async def test_the_servers_size_is_honoured_before_data_and_a_hard_cap_applies(setup):
    store, clock, sleep, _slept, everyone = setup
    rec = Recorder()
    with SMTPServer(rec, data_size_limit=2000) as server:  # every invitation is larger
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        report = await deliver(store, t, clock, sleep=sleep)
    assert report.failed == len(everyone) and report.sent == 0 and report.retried == 0
    assert all("accepts at most 2000" in reason for _, _, reason in report.failures)
    assert rec.data_count == 0  # refused before MAIL FROM, not after sending the whole message

    store.requeue_failed(clock.now())

    class Never:
        description = "never"

        async def connect(self):
            raise AssertionError("an oversized message must not reach the transport")

    report = await deliver(store, Never(), clock, sleep=sleep, max_message_bytes=1000)
    assert report.failed == len(everyone) and "over the 1000 bytes" in report.failures[0][2]


async def test_a_locked_store_is_waited_for_then_reported_in_one_error(setup):
    import sqlite3
    import threading

    from scheduler.delivery import StoreFailure
    from scheduler.transport import MaildirTransport

    store, clock, sleep, _slept, everyone = setup
    store._db.execute("PRAGMA busy_timeout=300")  # the production 30 s, shortened for the test
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreFailure, match="database is locked"):
        await deliver(store, MaildirTransport(store.path.parent / "mail"), clock, sleep=sleep)
    # Locked for a moment only: SQLite's busy timeout waits it out and everything goes.
    store._db.execute("PRAGMA busy_timeout=5000")
    threading.Timer(0.3, other.execute, ["ROLLBACK"]).start()
    report = await deliver(store, MaildirTransport(store.path.parent / "mail"), clock, sleep=sleep)
    assert report.sent == len(everyone)
    other.close()


async def test_rows_in_doubt_after_a_crash_are_counted_for_the_caller(setup):
    from scheduler.transport import MaildirTransport

    store, clock, sleep, _slept, everyone = setup
    store.claim(clock.now(), 2)  # as a kill in the middle of two transactions leaves them
    told: list[int] = []
    report = await deliver(
        store, MaildirTransport(store.path.parent / "mail"), clock, sleep=sleep, on_recovered=told.append
    )
    assert told == [2] and report.recovered == 2 and report.sent == len(everyone)


async def test_a_transport_failing_unexpectedly_is_retried_not_raised(setup):
    store, clock, sleep, _slept, everyone = setup

    class Flaky:
        description = "flaky"
        calls = 0

        async def connect(self):
            return self

        async def send(self, sender, recipient, message, key):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")
            return "250 ok"

        async def close(self):
            return None

    report = await deliver(store, Flaky(), clock, concurrency=1, sleep=sleep)
    assert report.retried == 1 and report.sent == len(everyone) and report.failed == 0
