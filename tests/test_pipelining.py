"""SMTP PIPELINING (RFC 2920) and the adaptive number of sessions, against a real aiosmtpd server."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from scheduler.clock import FixedClock
from scheduler.delivery import deliver
from scheduler.mailings import compose, queue
from scheduler.store import SQLiteStore
from scheduler.transport import (
    PermanentError,
    SessionPool,
    SMTPSettings,
    SMTPTransport,
    TransientError,
    TransportConfigError,
    _crlf,
    _data,
)
from tests.smtp_server import Recorder, SMTPServer

# Bare LF line ends, a line that starts with a dot, a Cyrillic 8-bit body: what the DATA encoding must
# carry the same whichever way the commands travel.
MSG = (
    "From: a@example.org\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <x@example.org>\r\n\r\n"
    ".hidden dot\r\n..two dots\nЗдравствуйте\r\n.\r\nend"
).encode()


async def _deliver_each(port: int, recipients: list[str], message: bytes = MSG) -> list[object]:
    """Send one message to each recipient over one connection; the reply or the error of each."""
    conn = await SMTPTransport(SMTPSettings("127.0.0.1", port, timeout=5)).connect()
    out: list[object] = []
    try:
        for i, to in enumerate(recipients):
            try:
                out.append(await conn.send("a@example.org", to, message, str(i)))
            except (PermanentError, TransientError) as exc:
                out.append(exc)
    finally:
        await conn.close()
    return out


@pytest.mark.parametrize("size_limit", [None, 10_000])
async def test_commands_travel_in_one_group_and_the_message_arrives_the_same(size_limit):
    plain, piped = Recorder(), Recorder()
    rcpts = ["r0@example.org", "r1@example.org", "r2@example.org"]
    with SMTPServer(plain, data_size_limit=size_limit) as server:
        await _deliver_each(server.port, rcpts)
    with SMTPServer(piped, data_size_limit=size_limit, pipelining=True) as server:
        replies = await _deliver_each(server.port, rcpts)
    assert all(isinstance(r, str) and "queued" in r for r in replies)
    # Offered: RCPT TO and DATA were in the stream before MAIL FROM was answered; not offered: never.
    assert piped.grouped == [True, True, True] and plain.grouped == [False, False, False]
    assert [(a.sender, a.recipients, a.data) for a in piped.accepted] == [
        (a.sender, a.recipients, a.data) for a in plain.accepted
    ]
    assert piped.accepted[0].data.count(b"..two dots") == 1  # the dots were stuffed and unstuffed
    assert piped.peak == 1  # one session for the three


async def test_a_refused_recipient_inside_a_group_fails_alone_and_the_session_is_reset():
    rec = Recorder(reject={"gone@example.org"}, data_replies=[None, "451 4.3.0 try later"])
    with SMTPServer(rec, pipelining=True) as server:
        replies = await _deliver_each(
            server.port, ["a1@example.org", "gone@example.org", "a2@example.org", "a3@example.org"]
        )
    ok1, gone, later, ok3 = replies
    assert isinstance(gone, PermanentError) and "550 5.1.1 <gone@example.org>" in str(gone)
    assert isinstance(later, TransientError) and "451 4.3.0 try later" in str(later)
    assert isinstance(ok1, str) and isinstance(ok3, str)
    assert rec.resets == 2  # after the refused RCPT (its DATA answered 503) and after the 451
    assert [a.recipients for a in rec.accepted] == [["a1@example.org"], ["a3@example.org"]]


async def test_a_server_that_closes_mid_group_is_a_transient_failure_and_the_next_message_reconnects():
    rec = Recorder(drop_at_rcpt={"drop@example.org"})
    with SMTPServer(rec, pipelining=True) as server:
        replies = await _deliver_each(server.port, ["drop@example.org", "after@example.org"])
    dropped, after = replies
    assert isinstance(dropped, TransientError)
    assert isinstance(after, str)
    assert [a.recipients for a in rec.accepted] == [["after@example.org"]]


async def test_a_server_without_pipelining_is_spoken_to_one_command_at_a_time():
    rec = Recorder(reject={"gone@example.org"})
    with SMTPServer(rec) as server:
        replies = await _deliver_each(server.port, ["x@example.org", "gone@example.org", "y@example.org"])
    assert isinstance(replies[1], PermanentError) and "550" in str(replies[1])
    assert rec.grouped == [False, False, False]
    assert [a.recipients for a in rec.accepted] == [["x@example.org"], ["y@example.org"]]


@pytest.fixture
def outbox(example, tmp_path):
    clock = FixedClock(datetime(2020, 9, 11, 7, tzinfo=UTC))
    store = SQLiteStore(tmp_path / "state.db")
    messages = compose(example, "invitation", meeting="heads-2020-09", store=store, now=clock.now())
    queue(store, example, messages, now=clock.now())

    async def sleep(seconds: float) -> None:  # time passes on the test clock only
        clock.advance(timedelta(seconds=seconds))

    return store, clock, sleep, {m.recipient.lower() for m in messages}


@pytest.mark.parametrize("pipelining", [False, True])
async def test_a_421_for_too_many_sessions_shrinks_the_pool_and_every_message_still_goes(outbox, pipelining):
    store, clock, sleep, everyone = outbox
    assert len(everyone) >= 4  # enough to open the pool's first four sessions
    rec = Recorder()
    with SMTPServer(rec, pipelining=pipelining, max_sessions=2) as server:
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        assert t.pool is not None
        report = await deliver(store, t, clock, concurrency=8, sleep=sleep)
    assert rec.turned_away >= 1 and report.retried >= 1  # the first four sessions met the limit
    assert report.sent == len(everyone) and report.failed == 0
    assert {r: len(v) for r, v in rec.by_recipient().items()} == dict.fromkeys(everyone, 1)
    # Learnt: never again more than the relay took (fewer if its count of sessions lagged behind ours)
    assert 1 <= t.pool.ceiling <= 2 and t.pool.limit <= 2
    assert rec.peak <= 4  # started at four, never beyond


def test_the_pool_grows_a_round_at_a_time_while_replies_stay_fast():
    pool = SessionPool(maximum=6)
    assert pool.limit == 4
    for _ in range(4):
        pool.succeeded(0.04)
    assert pool.limit == 5
    for _ in range(5):
        pool.succeeded(0.2)  # five times slower: more sessions only queue
    assert pool.limit == 5
    for _ in range(5):
        pool.succeeded(0.05)
    assert pool.limit == 6
    for _ in range(12):
        pool.succeeded(0.01)
    assert pool.limit == 6  # never beyond the maximum
    pool.bound(3)
    assert pool.limit == 3 and pool.admits(2) and not pool.admits(3)


def test_a_refusal_halves_once_for_sessions_opened_together_and_caps_growth():
    pool = SessionPool(maximum=16, start=8)
    pool.open = 8
    pool.refused()  # the 8th session was one too many
    assert (pool.limit, pool.ceiling) == (4, 7)
    pool.open = 7
    pool.refused()  # another of the eight, opened before the first refusal: no second halving
    assert (pool.limit, pool.ceiling) == (4, 6)
    for _ in range(100):
        pool.succeeded(0.02)
    assert pool.limit == 6
    pool.open = 5
    pool.refused(connected=False)  # the sixth connection refused while five were open
    assert pool.ceiling == 5 and pool.limit == 3
    for _ in range(3 + 4 + 5 * (SessionPool.PROBE_ROUNDS - 3)):
        pool.succeeded(0.02)
    assert (pool.limit, pool.ceiling) == (5, 5)  # calm, but not yet for long
    for _ in range(5):
        pool.succeeded(0.02)
    assert pool.ceiling == 6  # long calm: one more is tried again


@given(
    maximum=st.integers(1, 30),
    start=st.integers(1, 10),
    events=st.lists(st.one_of(st.floats(0.001, 5.0), st.integers(0, 40)), max_size=200),
)
def test_the_pool_stays_between_one_and_its_bounds(maximum, start, events):
    pool = SessionPool(maximum=maximum, start=start)
    for event in events:
        if isinstance(event, float):
            pool.succeeded(event)
        else:
            pool.open = event
            pool.refused(connected=event > 0)
        assert 1 <= pool.limit <= max(1, min(pool.maximum, pool.ceiling))
        assert 1 <= pool.ceiling <= pool.maximum


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"\xd0\x97", b" "]), max_size=40))
def test_the_data_fast_path_gives_aiosmtplibs_bytes(parts):
    message = b"".join(parts)
    assert _crlf(message) == normalize_message_line_endings(message)
    assert _data(message) == PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


async def test_a_421_inside_a_group_is_reported_with_its_reply_and_shrinks_the_pool():
    rec = Recorder()
    with SMTPServer(rec, pipelining=True, max_sessions=0) as server:  # every session turned away
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        assert t.pool is not None
        conn = await t.connect()
        with pytest.raises(TransientError, match=r"421 4\.7\.0 Too many concurrent SMTP connections"):
            await conn.send("a@example.org", "b@example.org", MSG, "k")
        await conn.close()
    # One session, refused: one at most from now on
    assert (t.pool.limit, t.pool.ceiling, t.pool.open) == (1, 1, 0) and rec.accepted == []


@pytest.mark.parametrize("pipelining", [False, True])
async def test_a_421_at_rcpt_also_shrinks_the_pool(pipelining):
    rec = Recorder(busy={"busy421@example.org"})
    with SMTPServer(rec, pipelining=pipelining) as server:
        t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
        assert t.pool is not None
        conn = await t.connect()
        with pytest.raises(TransientError, match=r"421 4\.7\.0 busy"):
            await conn.send("a@example.org", "busy421@example.org", MSG, "k")
        await conn.close()
    assert (t.pool.limit, t.pool.ceiling, t.pool.open) == (1, 1, 0)


async def test_a_refused_connection_while_others_are_open_is_one_too_many_not_a_wrong_setting():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = SMTPTransport(SMTPSettings("127.0.0.1", port, timeout=5))
    assert t.pool is not None
    conn = await t.connect()
    with pytest.raises(TransportConfigError, match="cannot connect"):  # alone: nobody listens
        await conn.send("a@example.org", "b@example.org", MSG, "k")
    t.pool.open = 3  # three sessions of this transport are connected to that server
    with pytest.raises(TransientError, match="refused one more connection"):
        await conn.send("a@example.org", "b@example.org", MSG, "k")
    assert (t.pool.limit, t.pool.ceiling) == (2, 3)
