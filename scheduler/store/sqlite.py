"""The embedded state store: one SQLite file in WAL mode, safe across crashes."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..translation import _
from .base import (
    DEFAULT_LEASE,
    PARTSTATS,
    STATUSES,
    TABLES,
    Answer,
    EventState,
    NewMessage,
    OutboxRow,
    ReviewState,
    StoreError,
    state_dir,
)

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
    # version 4: which configuration each running instance applies
    """
    CREATE TABLE instances (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, seen TEXT NOT NULL);
    """,
    # version 5: answers to invitations, and the IMAP messages already read (by UIDVALIDITY and UID)
    """
    CREATE TABLE answers (
        meeting TEXT NOT NULL, email TEXT NOT NULL, partstat TEXT NOT NULL, at TEXT NOT NULL,
        via TEXT NOT NULL, sequence INTEGER, detail TEXT, PRIMARY KEY (meeting, email)
    );
    CREATE TABLE imap_seen (
        mailbox TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
        outcome TEXT NOT NULL, detail TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (mailbox, uidvalidity, uid)
    );
    CREATE INDEX outbox_sent_to ON outbox (meeting, recipient COLLATE NOCASE);
    """,
]


def _restore_hint() -> str:
    return _(
        "restore the last backup with `cyclogram state restore FILE`, or move the file away to start a new "
        "store (the feed secret, so every private feed URL, and the record of what was sent would be lost)"
    )


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SQLiteStore:
    """The embedded state store: one SQLite file in WAL mode, safe across crashes."""

    def __init__(self, path: str | os.PathLike[str], *, lease: timedelta = DEFAULT_LEASE):
        self.path = Path(path)
        self.description = str(path)
        self.lease = lease
        self._memory = str(path) == ":memory:"
        self._inode: tuple[int, int] | None = None
        if not self._memory:
            # A store is made only where no file is: an empty one is a truncated store, never a new one.
            if self.path.is_file() and self.path.stat().st_size == 0:
                raise StoreError(
                    _("{path} is empty (0 bytes): the state was truncated or never written; {hint}").format(
                        path=self.path, hint=_restore_hint()
                    )
                )
            if self.path.exists() and not self.path.is_file():
                raise StoreError(
                    _("{path} is not a file: the state store must be a SQLite file").format(path=self.path)
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(
                _("{path}: cannot open the state store: {reason}").format(path=self.path, reason=exc)
            ) from None
        with self._guard():
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._check_schema()
            self._migrate()
        if not self._memory:
            st = self.path.stat()
            self._inode = (st.st_dev, st.st_ino)

    def _check_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_SCHEMA):
            raise StoreError(
                f"{self.path} was written by a newer cyclogram (state schema {version}, this one knows "
                f"{len(_SCHEMA)}): upgrade cyclogram"
            )
        if version == 0:
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError(
                    _("{path} is a SQLite file but not a cyclogram state store; {hint}").format(
                        path=self.path, hint=_restore_hint()
                    )
                )

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's own errors as the store's: the file, what is wrong, and what to do."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise
            raise StoreError(
                _("{path} is damaged ({reason}); {hint}").format(
                    path=self.path, reason=exc, hint=_restore_hint()
                )
            ) from None

    def _check_file(self) -> None:
        """Refuse to write when the file was deleted or replaced under us: writing on would go to a file
        nobody will open again, and the next start would take the lost state for a fresh one."""
        if self._inode is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise StoreError(
                f"{self.path} was deleted while cyclogram was running; stopping so that nothing is sent "
                "twice: restore the state (`cyclogram state restore FILE`) before starting again"
            ) from None
        if (st.st_dev, st.st_ino) != self._inode:
            raise StoreError(
                f"{self.path} was replaced while cyclogram was running (a restore?); stopping: start "
                "cyclogram again to use the new file"
            )

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
            self._check_file()
            with self._guard():
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            yield self._db

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
        self._check_file()  # a lock beside a vanished store would lock nothing anyone else looks at
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

    def event_states(self, items: Sequence[tuple[str, str]], now: datetime) -> dict[str, EventState]:
        """`event_state` for many items in one transaction: one read of the table, writes only for changes."""
        stamp, moment = _ts(now), now.astimezone(UTC)
        out: dict[str, EventState] = {}
        with self._tx() as db:
            known = {
                row[0]: row[1:]
                for row in db.execute("SELECT uid, fingerprint, sequence, created, last_modified FROM events")
            }
            inserts, updates = [], []
            for uid, fingerprint in items:
                row = known.get(uid)
                if row is None:
                    inserts.append((uid, fingerprint, stamp, stamp))
                    known[uid] = (fingerprint, 0, stamp, stamp)
                    out[uid] = EventState(uid, 0, moment, moment)
                    continue
                old_fp, seq, created, modified = row
                if old_fp != fingerprint:
                    seq, modified = seq + 1, stamp
                    updates.append((fingerprint, seq, modified, uid))
                    known[uid] = (fingerprint, seq, created, modified)
                out[uid] = EventState(uid, seq, _dt(created), _dt(modified))
            db.executemany("INSERT INTO events VALUES (?, ?, 0, ?, ?)", inserts)
            db.executemany(
                "UPDATE events SET fingerprint = ?, sequence = ?, last_modified = ? WHERE uid = ?", updates
            )
        return out

    def peek_event_state(self, uid: str) -> EventState | None:
        with self._read() as db:
            row = db.execute(
                "SELECT sequence, created, last_modified FROM events WHERE uid = ?", (uid,)
            ).fetchone()
        return EventState(uid, row[0], _dt(row[1]), _dt(row[2])) if row else None

    # -- snapshots -------------------------------------------------------------------------------------
    def snapshot(self, meeting: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT data FROM snapshots WHERE meeting = ?", (meeting,)).fetchone()
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
        with self._read() as db:
            return dict(db.execute("SELECT key, state FROM mailings").fetchall())

    @contextmanager
    def mailing_lock(self, key: str) -> Iterator[bool]:
        """One write transaction: SQLite has one writer at a time, so it is the mailing's lock too."""
        with self._tx():
            yield True

    # -- instances -------------------------------------------------------------------------------------
    def note_instance(
        self, instance: str, fingerprint: str, now: datetime
    ) -> dict[str, tuple[str, datetime]]:
        """Record the configuration this instance applies; return every other one's (fingerprint, seen)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO instances VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, seen = excluded.seen",
                (instance, fingerprint, _ts(now)),
            )
            # Each start is a new name (host and pid): forget the ones gone for a day.
            db.execute("DELETE FROM instances WHERE seen < ?", (_ts(now - timedelta(days=1)),))
            rows = db.execute(
                "SELECT name, fingerprint, seen FROM instances WHERE name <> ?", (instance,)
            ).fetchall()
        return {name: (fp, _dt(seen)) for name, fp, seen in rows}

    # -- reviews ---------------------------------------------------------------------------------------
    def review(self, key: str) -> ReviewState | None:
        with self._read() as db:
            row = db.execute(
                "SELECT key, state, fingerprint, updated, notified FROM reviews WHERE key = ?", (key,)
            ).fetchone()
        return _review(row) if row else None

    def reviews(self) -> dict[str, ReviewState]:
        with self._read() as db:
            rows = db.execute("SELECT key, state, fingerprint, updated, notified FROM reviews").fetchall()
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
        """Lease up to `limit` due rows; a row whose lease expired (its deliverer is gone) comes first,
        marked in doubt. The lease is the claim's time in `updated` plus `self.lease`."""
        stamp = _ts(now)
        with self._tx() as db:
            # Expired leases: few rows (at most what was in flight), scanned through the status index.
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM {_ROWS} WHERE status = 'sending' AND updated < ? "
                "ORDER BY updated, outbox.rowid LIMIT ?",
                (_ts(now - self.lease), limit),
            ).fetchall()
            doubt = {r[0] for r in rows}
            if len(rows) < limit:
                # In the index's own order (rowid is its last key): sorting otherwise drags every queued
                # message's bytes through a temporary B-tree, for each single claim.
                rows += db.execute(
                    f"SELECT {_COLUMNS} FROM {_ROWS} WHERE status = 'queued' AND next_attempt <= ? "
                    "ORDER BY next_attempt, outbox.rowid LIMIT ?",
                    (stamp, limit - len(rows)),
                ).fetchall()
            db.executemany(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated = ? WHERE id = ?",
                [(stamp, r[0]) for r in rows],
            )
        return [_row(r, status="sending", attempts=r[7] + 1, in_doubt=r[0] in doubt) for r in rows]

    def mark_sent(self, row_id: str, now: datetime, reply: str) -> None:
        self._set(row_id, "sent", now, None)

    def mark_retry(self, row_id: str, now: datetime, error: str, next_attempt: datetime) -> None:
        with self._tx() as db:
            db.execute(
                # Only a row still being sent: one another instance took over and sent stays sent.
                "UPDATE outbox SET status = 'queued', last_error = ?, updated = ?, next_attempt = ? "
                "WHERE id = ? AND status = 'sending'",
                (error, _ts(now), _ts(next_attempt), row_id),
            )

    def mark_failed(self, row_id: str, now: datetime, error: str) -> None:
        self._set(row_id, "failed", now, error)

    def _set(self, row_id: str, status: str, now: datetime, error: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status = ?, last_error = COALESCE(?, last_error), updated = ? "
                "WHERE id = ? AND status <> 'sent'",
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
        with self._read() as db:
            rows = db.execute(query + " ORDER BY created, id", args).fetchall()
        return [_row(r) for r in rows]

    def outbox_counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(dict(rows))
        return counts

    def has(self, row_id: str) -> OutboxRow | None:
        with self._read() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM {_ROWS} WHERE id = ?", (row_id,)).fetchone()
        return _row(row) if row else None

    def next_due(self) -> datetime | None:
        with self._read() as db:
            row = db.execute("SELECT MIN(next_attempt) FROM outbox WHERE status = 'queued'").fetchone()
        return _dt(row[0]) if row and row[0] else None

    # -- answers ---------------------------------------------------------------------------------------
    def sent_to(self, meeting: str, recipient: str) -> list[OutboxRow]:
        """The messages about a meeting delivered to one address (any case), oldest first."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM {_ROWS} WHERE meeting = ? AND status = 'sent' "
                "AND recipient = ? COLLATE NOCASE ORDER BY created, id",
                (meeting, recipient),
            ).fetchall()
        return [_row(r) for r in rows]

    def record_answer(self, answer: Answer) -> bool:
        """Keep the person's latest answer; an older one (a reply read late) changes nothing.

        Returns whether the recorded answer changed. The same answer read twice (a message fetched
        again after its folder's UIDVALIDITY changed) is no change, so every answer counts once.
        """
        if answer.partstat not in PARTSTATS:
            raise ValueError(f"not an answer: {answer.partstat!r}")
        email = answer.email.lower()
        with self._tx() as db:
            row = db.execute(
                "SELECT partstat, at FROM answers WHERE meeting = ? AND email = ?", (answer.meeting, email)
            ).fetchone()
            if row is not None:
                old_at = _dt(row[1])
                if answer.at < old_at or (answer.at == old_at and answer.partstat == row[0]):
                    return False
            db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(meeting, email) DO UPDATE SET "
                "partstat = excluded.partstat, at = excluded.at, via = excluded.via, "
                "sequence = excluded.sequence, detail = excluded.detail",
                (
                    answer.meeting,
                    email,
                    answer.partstat,
                    _ts(answer.at),
                    answer.via,
                    answer.sequence,
                    answer.detail,
                ),
            )
            return True

    def answers(self, meeting: str | None = None) -> list[Answer]:
        query = "SELECT meeting, email, partstat, at, via, sequence, detail FROM answers"
        args: tuple[Any, ...] = ()
        if meeting is not None:
            query += " WHERE meeting = ?"
            args = (meeting,)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY meeting, email", args).fetchall()
        return [Answer(r[0], r[1], r[2], _dt(r[3]), r[4], r[5], r[6]) for r in rows]

    def imap_seen(self, mailbox: str, uidvalidity: int) -> dict[int, str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT uid, outcome FROM imap_seen WHERE mailbox = ? AND uidvalidity = ?",
                (mailbox, uidvalidity),
            ).fetchall()
        return {int(r[0]): str(r[1]) for r in rows}

    def mark_imap_seen(
        self, mailbox: str, uidvalidity: int, uid: int, outcome: str, detail: str, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO imap_seen VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(mailbox, uidvalidity, uid) "
                "DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail, at = excluded.at",
                (mailbox, uidvalidity, uid, outcome, detail, _ts(now)),
            )

    # -- migration, backup and restore ------------------------------------------------------------------
    def dump(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every row, table by table (TABLES), as plain values; read in one snapshot of the file."""
        with self._tx() as db:
            for name, value in db.execute("SELECT name, value FROM secrets ORDER BY name"):
                yield "secrets", {"name": name, "value": value}
            for uid, fp, seq, created, modified in db.execute(
                "SELECT uid, fingerprint, sequence, created, last_modified FROM events ORDER BY uid"
            ):
                yield "events", {
                    "uid": uid, "fingerprint": fp, "sequence": seq, "created": _dt(created),
                    "last_modified": _dt(modified),
                }  # fmt: skip
            for meeting, data, updated in db.execute(
                "SELECT meeting, data, updated FROM snapshots ORDER BY 1"
            ):
                yield "snapshots", {"meeting": meeting, "data": json.loads(data), "updated": _dt(updated)}
            for key, state, updated in db.execute("SELECT key, state, updated FROM mailings ORDER BY key"):
                yield "mailings", {"key": key, "state": state, "updated": _dt(updated)}
            for r in db.execute(
                "SELECT key, state, fingerprint, updated, notified FROM reviews ORDER BY key"
            ):
                yield "reviews", _review_row(_review(r))
            for r in db.execute(f"SELECT {_COLUMNS} FROM {_ROWS} ORDER BY outbox.rowid"):
                row = _row(r)
                yield "outbox", {f: getattr(row, f) for f in _OUTBOX_FIELDS}
            for r in db.execute(
                "SELECT meeting, email, partstat, at, via, sequence, detail FROM answers ORDER BY meeting, email"
            ):
                yield "answers", {
                    "meeting": r[0], "email": r[1], "partstat": r[2], "at": _dt(r[3]), "via": r[4],
                    "sequence": r[5], "detail": r[6],
                }  # fmt: skip
            for r in db.execute(
                "SELECT mailbox, uidvalidity, uid, outcome, detail, at FROM imap_seen ORDER BY 1, 2, 3"
            ):
                yield "imap_seen", {
                    "mailbox": r[0], "uidvalidity": r[1], "uid": r[2], "outcome": r[3], "detail": r[4],
                    "at": _dt(r[5]),
                }  # fmt: skip

    def load(self, rows: Iterable[tuple[str, dict[str, Any]]], *, replace: bool = False) -> dict[str, int]:
        """Take rows from `dump` (of any store) in one transaction; `replace` empties this store first."""
        counts = dict.fromkeys(TABLES, 0)
        with self._tx() as db:
            if replace:
                for table in (
                    "secrets",
                    "events",
                    "snapshots",
                    "mailings",
                    "reviews",
                    "outbox",
                    "outbox_messages",
                    "answers",
                    "imap_seen",
                ):
                    db.execute(f"DELETE FROM {table}")
            for table, r in rows:
                if table == "secrets":
                    db.execute("INSERT INTO secrets VALUES (?, ?)", (r["name"], r["value"]))
                elif table == "events":
                    db.execute(
                        "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                        (
                            r["uid"],
                            r["fingerprint"],
                            r["sequence"],
                            _ts(r["created"]),
                            _ts(r["last_modified"]),
                        ),
                    )
                elif table == "snapshots":
                    data = json.dumps(r["data"], ensure_ascii=False, sort_keys=True)
                    db.execute(
                        "INSERT INTO snapshots VALUES (?, ?, ?)", (r["meeting"], data, _ts(r["updated"]))
                    )
                elif table == "mailings":
                    db.execute(
                        "INSERT INTO mailings VALUES (?, ?, ?)", (r["key"], r["state"], _ts(r["updated"]))
                    )
                elif table == "reviews":
                    db.execute(
                        "INSERT INTO reviews VALUES (?, ?, ?, ?, ?)",
                        (
                            r["key"], r["state"], r["fingerprint"], _ts(r["updated"]),
                            _ts(r["notified"]) if r["notified"] else None,
                        ),
                    )  # fmt: skip
                elif table == "outbox":
                    db.execute(
                        "INSERT INTO outbox (id, mailing, kind, meeting, recipient, revision, status, attempts, "
                        "last_error, created, updated, next_attempt, sender) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            r["id"], r["mailing"], r["kind"], r["meeting"], r["recipient"], r["revision"],
                            r["status"], r["attempts"], r["last_error"], _ts(r["created"]), _ts(r["updated"]),
                            _ts(r["next_attempt"]), r["sender"],
                        ),
                    )  # fmt: skip
                    db.execute("INSERT INTO outbox_messages VALUES (?, ?)", (r["id"], r["message"]))
                elif table == "answers":
                    db.execute(
                        "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            r["meeting"], r["email"], r["partstat"], _ts(r["at"]), r["via"], r["sequence"],
                            r["detail"],
                        ),
                    )  # fmt: skip
                elif table == "imap_seen":
                    db.execute(
                        "INSERT INTO imap_seen VALUES (?, ?, ?, ?, ?, ?)",
                        (r["mailbox"], r["uidvalidity"], r["uid"], r["outcome"], r["detail"], _ts(r["at"])),
                    )
                else:
                    raise StoreError(f"unknown table {table!r} in the state to load")
                counts[table] += 1
        return counts

    def is_empty(self) -> bool:
        with self._read() as db:
            return not any(db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in TABLES)

    def check(self) -> None:
        """Read every page (SQLite's quick_check); a damaged store raises StoreError naming the file."""
        with self._read() as db:
            problems = [r[0] for r in db.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            raise StoreError(
                _("{path} is damaged ({reason}); {hint}").format(
                    path=self.path, reason="; ".join(problems), hint=_restore_hint()
                )
            )

    def backup(self, target: str | os.PathLike[str]) -> None:
        """Copy the store into `target` with SQLite's online backup: consistent while others write."""
        with self._lock, self._guard():
            dest = sqlite3.connect(str(target))
            try:
                self._db.backup(dest)
            finally:
                dest.close()


_OUTBOX_FIELDS = (
    "id", "mailing", "kind", "meeting", "recipient", "revision", "status", "attempts", "last_error",
    "created", "updated", "next_attempt", "sender", "message",
)  # fmt: skip
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


def _review_row(review: ReviewState) -> dict[str, Any]:
    return {f: getattr(review, f) for f in ("key", "state", "fingerprint", "updated", "notified")}


def _review(r: tuple[Any, ...]) -> ReviewState:
    return ReviewState(r[0], r[1], r[2], _dt(r[3]), _dt(r[4]) if r[4] else None)


def open_store(
    directory: str | os.PathLike[str] | None = None, *, lease: timedelta = DEFAULT_LEASE
) -> SQLiteStore:
    """The default store: `state.db` in the state directory."""
    return SQLiteStore(state_dir(directory) / "state.db", lease=lease)
