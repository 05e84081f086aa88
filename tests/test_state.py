"""The state store: one interface, tested through a fixture every backend will share."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.store import NewMessage, SQLiteStore, StateStore, open_url

T0 = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path: Path) -> str:
    """Every test of the interface runs against each store (as APScheduler tests its data stores)."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> StateStore:
    s = open_url(store_url, lease=LEASE)
    yield s
    s.close()


def msg(i: int, mailing: str = "m/invitation") -> NewMessage:
    return NewMessage(
        f"{mailing}|r{i}@example.org|0",
        mailing,
        "invitation",
        "m",
        f"r{i}@example.org",
        0,
        b"Subject: x\r\n\r\nbody",
        "org@example.org",
    )


def test_sequence_rises_only_on_change_and_survives_reopening(tmp_path):
    s = SQLiteStore(tmp_path / "state.db")
    assert s.event_state("u", "a", T0).sequence == 0
    assert s.event_state("u", "a", T0 + timedelta(hours=1)).sequence == 0
    changed = s.event_state("u", "b", T0 + timedelta(hours=2))
    assert changed.sequence == 1 and changed.last_modified == T0 + timedelta(hours=2)
    assert changed.created == T0
    s.close()
    again = SQLiteStore(tmp_path / "state.db")
    assert (
        again.event_state("u", "a", T0 + timedelta(hours=3)).sequence == 2
    )  # back is a change too: never falls
    again.close()


def test_secret_is_made_once(store):
    made = []
    first = store.secret("feed", lambda: made.append(1) or "s1")
    assert store.secret("feed", lambda: "s2") == first == "s1" and made == [1]
    store.set_secret("feed", "rotated")
    assert store.secret("feed", lambda: "s3") == "rotated"


def test_enqueue_is_idempotent(store):
    assert store.enqueue([msg(1), msg(2)], T0) == 2
    assert store.enqueue([msg(1), msg(2), msg(3)], T0) == 1
    assert store.outbox_counts()["queued"] == 3


def test_claim_send_retry_fail_and_recover(store, store_url):
    store.enqueue([msg(i) for i in range(3)], T0)
    claimed = store.claim(T0, 2)
    assert [r.status for r in claimed] == ["sending", "sending"] and claimed[0].attempts == 1
    assert store.claim(T0, 5)[0].id == msg(2).id  # the third; the first two are taken
    store.mark_sent(claimed[0].id, T0, "250 ok")
    store.mark_retry(claimed[1].id, T0, "451 later", T0 + timedelta(minutes=5))
    assert store.claim(T0 + timedelta(minutes=1), 5) == []
    assert [r.id for r in store.claim(T0 + timedelta(minutes=5), 5)] == [claimed[1].id]
    store.mark_failed(claimed[1].id, T0, "550 no such user")
    assert store.outbox_counts() == {"queued": 0, "sending": 1, "sent": 1, "failed": 1}
    if store_url.startswith("sqlite:"):
        # One deliverer at a time (the file lock): whatever is in `sending` was left by a crash.
        assert store.recover(T0) == 1  # the one a crash would have left in `sending`
    else:
        # Several deliverers: a row is recovered only once its lease is over (its instance is gone).
        assert store.recover(T0) == 0
        assert store.recover(T0 + LEASE + timedelta(seconds=1)) == 1
    assert store.outbox("failed")[0].last_error == "550 no such user"
    assert store.requeue_failed(T0) == 1
    assert store.outbox_counts()["queued"] == 2


def test_snapshots_and_mailing_states(store):
    assert store.snapshot("m") is None
    store.put_snapshot("m", {"place": "ГЦРО"}, T0)
    assert store.snapshot("m") == {"place": "ГЦРО"}
    store.mark_mailing("m/invitation", "sent", T0)
    store.mark_mailing("m/agenda", "missed", T0)
    assert store.mailing_states() == {"m/invitation": "sent", "m/agenda": "missed"}


def test_naive_timestamps_are_refused(store):
    with pytest.raises(ValueError):
        store.enqueue([msg(1)], datetime(2020, 9, 11))


def test_one_deliverer_at_a_time(tmp_path):
    first = SQLiteStore(tmp_path / "state.db")
    second = SQLiteStore(tmp_path / "state.db")  # another process's view of the same file
    with first.delivery_lease() as mine:
        assert mine
        with second.delivery_lease() as theirs:
            assert not theirs
    with second.delivery_lease() as theirs:
        assert theirs  # released when the holder is done
    first.close()
    second.close()


def test_a_version_1_store_is_migrated_with_its_queue(tmp_path):
    import sqlite3

    from scheduler.store.sqlite import _SCHEMA

    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA[0] + "PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO outbox (id, mailing, kind, meeting, recipient, revision, status, attempts, created, "
        "updated, next_attempt, message, sender) VALUES ('m|a@x|0', 'm', 'invitation', 'm', 'a@x', 0, "
        "'queued', 0, ?, ?, ?, ?, 'o@x')",
        (T0.isoformat(), T0.isoformat(), T0.isoformat(), b"Subject: kept\r\n\r\nbody"),
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    (row,) = store.claim(T0, 5)
    assert row.message == b"Subject: kept\r\n\r\nbody" and row.recipient == "a@x"
    store.close()


def test_an_expired_lease_is_taken_over_in_doubt(store):
    store.enqueue([msg(1), msg(2)], T0)
    (first,) = store.claim(T0, 1)
    assert not first.in_doubt
    assert [r.id for r in store.claim(T0 + LEASE - timedelta(seconds=1), 5)] == [msg(2).id]
    # The first deliverer died holding msg(1): after its lease another takes it, saying it may be sent.
    (again,) = store.claim(T0 + LEASE + timedelta(seconds=1), 5)
    assert again.id == first.id and again.in_doubt and again.attempts == 2
    store.mark_sent(again.id, T0 + LEASE + timedelta(seconds=2), "250 ok")
    # The first deliverer wakes up and reports a failure: what was sent stays sent.
    store.mark_retry(first.id, T0 + LEASE + timedelta(seconds=3), "451 later", T0)
    store.mark_failed(first.id, T0 + LEASE + timedelta(seconds=3), "550 no")
    assert store.has(first.id).status == "sent"


def test_sequence_is_shared_and_rises_once_per_change(store_url):
    a, b = open_url(store_url), open_url(store_url)  # two instances on one store
    try:
        assert a.event_state("u", "f1", T0).sequence == 0
        assert b.event_state("u", "f1", T0).sequence == 0
        assert a.event_state("u", "f2", T0 + timedelta(hours=1)).sequence == 1
        seen = b.event_state("u", "f2", T0 + timedelta(hours=2))  # the same edit seen by the other
        assert seen.sequence == 1 and seen.last_modified == T0 + timedelta(hours=1)
        assert a.peek_event_state("u") == seen
    finally:
        a.close()
        b.close()


_EXAMPLES = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rounds=st.lists(
        st.lists(st.tuples(st.sampled_from("uvwxy"), st.sampled_from("abc")), max_size=8),
        min_size=1,
        max_size=4,
    )
)
def test_a_batch_of_event_states_is_each_state_in_turn(store_url, tmp_path, rounds):
    """The feeds record every item's fingerprint in one batch: the same numbers as one call per item."""
    n = next(_EXAMPLES)  # the stores outlive one example: each example has its own uids and reference file
    batch, single = open_url(store_url), SQLiteStore(tmp_path / f"one-{n}.db")
    prefix = f"batch-{n}-"
    try:
        for i, items in enumerate(rounds):
            now = T0 + timedelta(hours=i)
            items = [(prefix + uid, fp) for uid, fp in items]
            got = batch.event_states(items, now)
            want = {uid: single.event_state(uid, fp, now) for uid, fp in items}
            assert {u: (s.sequence, s.created, s.last_modified) for u, s in got.items()} == {
                u: (s.sequence, s.created, s.last_modified) for u, s in want.items()
            }
            assert all(batch.peek_event_state(uid) == got[uid] for uid in got)
    finally:
        batch.close()
        single.close()


def test_instances_see_each_others_configuration(store):
    assert store.note_instance("a", "fp1", T0) == {}
    assert store.note_instance("b", "fp2", T0 + timedelta(seconds=1)) == {"a": ("fp1", T0)}
    assert store.note_instance("a", "fp2", T0 + timedelta(seconds=2)) == {
        "b": ("fp2", T0 + timedelta(seconds=1))
    }


def test_mailing_lock_is_a_transaction(store):
    with pytest.raises(RuntimeError), store.mailing_lock("m/invitation") as free:
        assert free
        store.enqueue([msg(1)], T0)
        store.mark_mailing("m/invitation", "sent", T0)
        raise RuntimeError("a template failed half-way")
    assert store.outbox_counts()["queued"] == 0 and store.mailing_states() == {}
    with store.mailing_lock("m/invitation"):
        store.enqueue([msg(1)], T0)
        store.mark_mailing("m/invitation", "sent", T0)
    assert store.outbox_counts()["queued"] == 1 and store.mailing_states() == {"m/invitation": "sent"}


def test_dump_and_load_move_everything(store, tmp_path):
    store.secret("feed", lambda: "s3cret")
    store.event_state("u", "f1", T0)
    store.event_state("u", "f2", T0 + timedelta(hours=1))
    store.put_snapshot("m", {"place": "ГЦРО", "n": [1, 2]}, T0)
    store.mark_mailing("m/invitation", "sent", T0)
    store.set_review("m/agenda", "approved", "fp", T0)
    store.mark_notified(["m/agenda"], T0 + timedelta(minutes=1))
    store.enqueue([msg(i) for i in range(3)], T0)
    sent, failed = store.claim(T0, 2)
    store.mark_sent(sent.id, T0, "250 ok")
    store.mark_failed(failed.id, T0, "550 no")
    rows = list(store.dump())
    copy = SQLiteStore(tmp_path / "copy.db")
    counts = copy.load(iter(rows))
    assert counts == {
        "secrets": 1,
        "events": 1,
        "snapshots": 1,
        "mailings": 1,
        "reviews": 1,
        "outbox": 3,
        "answers": 0,
        "imap_seen": 0,
    }
    assert list(copy.dump()) == rows
    assert copy.outbox_counts() == {"queued": 1, "sending": 0, "sent": 1, "failed": 1}
    assert store.load(copy.dump(), replace=True) == counts and list(store.dump()) == rows
    assert not store.is_empty() and SQLiteStore(tmp_path / "empty.db").is_empty()
    copy.close()


def test_a_state_file_deleted_or_replaced_under_a_running_store_stops_its_writes(tmp_path):
    from scheduler.store import StoreError

    path = tmp_path / "var" / "state.db"
    store = SQLiteStore(path)
    store.enqueue([msg(1), msg(2)], T0)
    (row,) = store.claim(T0, 1)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="deleted while cyclogram was running"):
        store.mark_sent(row.id, T0, "250 ok")
    with pytest.raises(StoreError, match="deleted"):
        store.claim(T0, 1)
    assert not path.exists()  # nothing made afresh in its place
    store.close()
    path.parent.mkdir(exist_ok=True)
    running = SQLiteStore(path)
    SQLiteStore(tmp_path / "other.db").close()
    (tmp_path / "other.db").rename(path)  # e.g. a restore while a process still runs
    with pytest.raises(StoreError, match="replaced"):
        running.enqueue([msg(3)], T0)
    running.close()


def test_an_empty_or_foreign_file_is_never_taken_for_a_new_store(tmp_path):
    import sqlite3

    from scheduler.store import StoreError

    empty = tmp_path / "state.db"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="0 bytes"):
        SQLiteStore(empty)
    assert empty.read_bytes() == b""
    foreign = tmp_path / "notes.db"
    sqlite3.connect(foreign).execute("CREATE TABLE notes (x)").connection.commit()
    with pytest.raises(StoreError, match="not a cyclogram state store"):
        SQLiteStore(foreign)
    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).execute("PRAGMA user_version = 999").connection.commit()
    with pytest.raises(StoreError, match="newer cyclogram"):
        SQLiteStore(newer)


# Deliverers that claim, finish or die at random moments: whatever the interleaving, a row is never held by
# two live leases, a finished row is never claimed again, and every row is sent once a live deliverer gets it.
_STEP = st.tuples(st.integers(0, 2), st.sampled_from(["send", "die", "wait"]), st.integers(0, 400))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_STEP, max_size=30))
def test_leases_hold_under_any_interleaving(store, steps):
    store.load([], replace=True)
    store.enqueue([msg(i) for i in range(6)], T0)
    now = T0
    held: dict[str, datetime] = {}  # row id -> lease end, for rows a live or dead deliverer holds
    sent: set[str] = set()
    for _who, what, seconds in steps:
        now += timedelta(seconds=seconds)
        if what == "wait":
            continue
        for row in store.claim(now, 1):
            assert row.id not in sent
            assert row.id not in held or held[row.id] < now  # only an expired lease is taken over
            assert row.in_doubt == (row.id in held)
            if what == "send":
                store.mark_sent(row.id, now, "250 ok")
                sent.add(row.id)
                held.pop(row.id, None)
            else:  # the deliverer dies holding it
                held[row.id] = now + LEASE
    later = now + LEASE + timedelta(seconds=1)
    while rows := store.claim(later, 5):
        for row in rows:
            assert row.id not in sent and row.in_doubt == (row.id in held)
            store.mark_sent(row.id, later, "250 ok")
            sent.add(row.id)
    assert sent == {msg(i).id for i in range(6)} and store.outbox_counts()["sent"] == 6
