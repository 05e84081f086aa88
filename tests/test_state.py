"""The state store: one interface, tested through a fixture every backend will share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.store import NewMessage, SQLiteStore, StateStore

T0 = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path: Path) -> StateStore:
    s = SQLiteStore(tmp_path / "state.db")
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


def test_claim_send_retry_fail_and_recover(store):
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
    assert store.recover(T0) == 1  # the one a crash would have left in `sending`
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
