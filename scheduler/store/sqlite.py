"""The embedded state store: one SQLite file in WAL mode, safe across crashes."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .base import STATUSES, EventState, NewMessage, OutboxRow, ReviewState, state_dir

__all__ = ["SQLiteStore", "open_store"]

_SCHEMA = [
    # version 1
    """
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE events (
        uid TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, sequence INTEGER NOT NULL,
        created TEXT NOT NULL, last_modified TEXT NOT NULL
    );
    CREATE TABLE snapshots (meeting TEXT PRIMARY KEY, data TEXT NOT NULL, updated TEXT NOT NULL);
    CREATE TABLE mailings (key TEXT PRIMARY KEY, state TEXT NOT NULL, updated TEXT NOT NULL);
    CREATE TABLE outbox (
        id TEXT PRIMARY KEY, mailing TEXT NOT NULL, kind TEXT NOT NULL, meeting TEXT,
        recipient TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        created TEXT NOT NULL, updated TEXT NOT NULL, next_attempt TEXT NOT NULL,
        message BLOB NOT NULL, sender TEXT NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt);
    CREATE INDEX outbox_mailing ON outbox (mailing);
    """,
    # version 2: the message bytes apart, so that each status change rewrites a small row, not 20 KB
    """
    CREATE TABLE outbox_messages (id TEXT PRIMARY KEY, message BLOB NOT NULL);
    INSERT INTO outbox_messages (id, message) SELECT id, message FROM outbox;
    ALTER TABLE outbox DROP COLUMN message;
    """,
    # version 3: the review of held mailings (drafts, approvals, holds)
    """
    CREATE TABLE reviews (
        key TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT NOT NULL,
        updated TEXT NOT NULL, notified TEXT
    );
    """,
]


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SQLiteStore:
    """The embedded state store: one SQLite file in WAL mode, safe across crashes."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for i, script in enumerate(_SCHEMA[version:], start=version + 1):
            with self._tx():
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {i}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # Re-entrant: work done while an outer transaction is open (rendering a mailing records its
        # calendar SEQUENCE while `enqueue` streams the messages in) commits or rolls back with it.
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def delivery_lease(self) -> Iterator[bool]:
        """True while this process is the only one delivering from this outbox; False if another is.

        An advisory lock on a file beside the database: the kernel releases it when the holder dies,
        so a killed process never leaves the outbox locked.
        """
        if str(self.path) == ":memory:":
            yield True
            return
        with open(self.path.with_name(self.path.name + ".deliver.lock"), "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- secrets ---------------------------------------------------------------------------------------
    def secret(self, name: str, make: Callable[[], str]) -> str:
        with self._tx() as db:
            row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            if row:
                return str(row[0])
            value = make()
            db.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", (name, value))
            return value

    def set_secret(self, name: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # -- sequences -------------------------------------------------------------------------------------
    def event_state(self, uid: str, fingerprint: str, now: datetime) -> EventState:
        """Record the event's current fingerprint; SEQUENCE rises by one when it differs from the last."""
        with self._tx() as db:
            row = db.execute(
                "SELECT fingerprint, sequence, created, last_modified FROM events WHERE uid = ?", (uid,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO events VALUES (?, ?, 0, ?, ?)", (uid, fingerprint, _ts(now), _ts(now))
                )
                return EventState(uid, 0, now.astimezone(UTC), now.astimezone(UTC))
            old_fp, seq, created, modified = row
            if old_fp != fingerprint:
                seq += 1
                modified = _ts(now)
                db.execute(
                    "UPDATE events SET fingerprint = ?, sequence = ?, last_modified = ? WHERE uid = ?",
                    (fingerprint, seq, modified, uid),
                )
            return EventState(uid, seq, _dt(created), _dt(modified))

    def peek_event_state(self, uid: str) -> EventState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sequence, created, last_modified FROM events WHERE uid = ?", (uid,)
            ).fetchone()
        return EventState(uid, row[0], _dt(row[1]), _dt(row[2])) if row else None

    # -- snapshots -------------------------------------------------------------------------------------
    def snapshot(self, meeting: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM snapshots WHERE meeting = ?", (meeting,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_snapshot(self, meeting: str, data: dict[str, Any], now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO snapshots VALUES (?, ?, ?) ON CONFLICT(meeting) DO UPDATE SET "
                "data = excluded.data, updated = excluded.updated",
                (meeting, json.dumps(data, ensure_ascii=False, sort_keys=True), _ts(now)),
            )

    # -- mailings --------------------------------------------------------------------------------------
    def mark_mailing(self, key: str, state: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO mailings VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "state = excluded.state, updated = excluded.updated",
                (key, state, _ts(now)),
            )

    def mailing_states(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT key, state FROM mailings").fetchall())

    # -- reviews ---------------------------------------------------------------------------------------
    def review(self, key: str) -> ReviewState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, state, fingerprint, updated, notified FROM reviews WHERE key = ?", (key,)
            ).fetchone()
        return _review(row) if row else None

    def reviews(self) -> dict[str, ReviewState]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, state, fingerprint, updated, notified FROM reviews"
            ).fetchall()
        return {r[0]: _review(r) for r in rows}

    def set_review(self, key: str, state: str, fingerprint: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO reviews (key, state, fingerprint, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET state = excluded.state, fingerprint = excluded.fingerprint, "
                "updated = excluded.updated",
                (key, state, fingerprint, _ts(now)),
            )

    def mark_notified(self, keys: Iterable[str], now: datetime) -> None:
        with self._tx() as db:
            db.executemany("UPDATE reviews SET notified = ? WHERE key = ?", [(_ts(now), k) for k in keys])

    # -- outbox ----------------------------------------------------------------------------------------
    def enqueue(self, messages: Iterable[NewMessage], now: datetime) -> int:
        """Queue messages in one transaction; ones already in the outbox (by id) are left as they are."""
        stamp = _ts(now)
        added = 0
        with self._tx() as db:
            for m in messages:
                cur = db.execute(
                    "INSERT OR IGNORE INTO outbox (id, mailing, kind, meeting, recipient, revision, status, "
                    "attempts, created, updated, next_attempt, sender) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
                    (
                        m.id,
                        m.mailing,
                        m.kind,
                        m.meeting,
                        m.recipient,
                        m.revision,
                        stamp,
                        stamp,
                        stamp,
                        m.sender,
                    ),
                )
                if cur.rowcount:
                    db.execute("INSERT INTO outbox_messages (id, message) VALUES (?, ?)", (m.id, m.message))
                added += cur.rowcount
        return added

    def recover(self, now: datetime) -> int:
        """Put rows a crash left in `sending` back in the queue."""
        with self._tx() as db:
            return db.execute(
                "UPDATE outbox SET status = 'queued', updated = ?, next_attempt = ? WHERE status = 'sending'",
                (_ts(now), _ts(now)),
            ).rowcount

    def claim(self, now: datetime, limit: int) -> list[OutboxRow]:
        with self._tx() as db:
            # In the index's own order (rowid is its last key): sorting otherwise drags every queued
            # message's bytes through a temporary B-tree, for each single claim.
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM {_ROWS} WHERE status = 'queued' AND next_attempt <= ? "
                "ORDER BY next_attempt, outbox.rowid LIMIT ?",
                (_ts(now), limit),
            ).fetchall()
            stamp = _ts(now)
            db.executemany(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated = ? WHERE id = ?",
                [(stamp, r[0]) for r in rows],
            )
        return [_row(r, status="sending", attempts=r[7] + 1) for r in rows]

    def mark_sent(self, row_id: str, now: datetime, reply: str) -> None:
        self._set(row_id, "sent", now, None)

    def mark_retry(self, row_id: str, now: datetime, error: str, next_attempt: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status = 'queued', last_error = ?, updated = ?, next_attempt = ? WHERE id = ?",
                (error, _ts(now), _ts(next_attempt), row_id),
            )

    def mark_failed(self, row_id: str, now: datetime, error: str) -> None:
        self._set(row_id, "failed", now, error)

    def _set(self, row_id: str, status: str, now: datetime, error: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status = ?, last_error = COALESCE(?, last_error), updated = ? WHERE id = ?",
                (status, error, _ts(now), row_id),
            )

    def requeue_failed(self, now: datetime, ids: Iterable[str] | None = None) -> int:
        stamp = _ts(now)
        with self._tx() as db:
            if ids is None:
                return db.execute(
                    "UPDATE outbox SET status = 'queued', attempts = 0, updated = ?, next_attempt = ? "
                    "WHERE status = 'failed'",
                    (stamp, stamp),
                ).rowcount
            return sum(
                db.execute(
                    "UPDATE outbox SET status = 'queued', attempts = 0, updated = ?, next_attempt = ? "
                    "WHERE status = 'failed' AND id = ?",
                    (stamp, stamp, i),
                ).rowcount
                for i in ids
            )

    def outbox(self, status: str | None = None, mailing: str | None = None) -> list[OutboxRow]:
        query = f"SELECT {_COLUMNS} FROM {_ROWS} WHERE 1 = 1"
        args: list[Any] = []
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        if mailing is not None:
            query += " AND mailing = ?"
            args.append(mailing)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created, id", args).fetchall()
        return [_row(r) for r in rows]

    def outbox_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(dict(rows))
        return counts

    def has(self, row_id: str) -> OutboxRow | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM {_ROWS} WHERE id = ?", (row_id,)).fetchone()
        return _row(row) if row else None

    def next_due(self) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_attempt) FROM outbox WHERE status = 'queued'").fetchone()
        return _dt(row[0]) if row and row[0] else None


_ROWS = "outbox JOIN outbox_messages USING (id)"
_COLUMNS = (
    "id, mailing, kind, meeting, recipient, revision, status, attempts, last_error, "
    "created, updated, next_attempt, message, sender"
)


def _row(r: tuple[Any, ...], **override: Any) -> OutboxRow:
    fields = dict(
        id=r[0],
        mailing=r[1],
        kind=r[2],
        meeting=r[3],
        recipient=r[4],
        revision=r[5],
        status=r[6],
        attempts=r[7],
        last_error=r[8],
        created=_dt(r[9]),
        updated=_dt(r[10]),
        next_attempt=_dt(r[11]),
        message=bytes(r[12]),
        sender=r[13],
    )
    fields.update(override)
    return OutboxRow(**fields)


def _review(r: tuple[Any, ...]) -> ReviewState:
    return ReviewState(r[0], r[1], r[2], _dt(r[3]), _dt(r[4]) if r[4] else None)


def open_store(directory: str | os.PathLike[str] | None = None) -> SQLiteStore:
    """The default store: `state.db` in the state directory."""
    return SQLiteStore(state_dir(directory) / "state.db")
