"""The shared state store: PostgreSQL, for several instances delivering one outbox and one schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
    redact_url,
)

__all__ = ["PostgresStore"]

log = logging.getLogger("cyclogram.store")

# One advisory lock key for schema migrations (an arbitrary constant: "cyclogra" in ASCII); mailing locks
# use hashtextextended(key, 1), whose values may meet it only by a 1-in-2^64 chance that costs a wait.
_MIGRATION_LOCK = 0x6379636C6F677261
_BATCH = 500  # messages per INSERT while streaming a mailing into the outbox

_SCHEMA = [
    # version 1
    """
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE events (
        uid TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, sequence INTEGER NOT NULL,
        created TIMESTAMPTZ NOT NULL, last_modified TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE snapshots (meeting TEXT PRIMARY KEY, data JSONB NOT NULL, updated TIMESTAMPTZ NOT NULL);
    CREATE TABLE mailings (key TEXT PRIMARY KEY, state TEXT NOT NULL, updated TIMESTAMPTZ NOT NULL);
    CREATE TABLE outbox (
        n BIGSERIAL UNIQUE, id TEXT PRIMARY KEY, mailing TEXT NOT NULL, kind TEXT NOT NULL, meeting TEXT,
        recipient TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        created TIMESTAMPTZ NOT NULL, updated TIMESTAMPTZ NOT NULL, next_attempt TIMESTAMPTZ NOT NULL,
        lease_until TIMESTAMPTZ, sender TEXT NOT NULL
    );
    CREATE INDEX outbox_queue ON outbox (next_attempt, n) WHERE status = 'queued';
    CREATE INDEX outbox_leases ON outbox (lease_until) WHERE status = 'sending';
    CREATE INDEX outbox_mailing ON outbox (mailing);
    CREATE TABLE outbox_messages (id TEXT PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
                                  message BYTEA NOT NULL);
    CREATE TABLE instances (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, seen TIMESTAMPTZ NOT NULL);
    """,
    # version 2: the review of held mailings (drafts, approvals, holds)
    """
    CREATE TABLE reviews (
        key TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT NOT NULL,
        updated TIMESTAMPTZ NOT NULL, notified TIMESTAMPTZ
    );
    """,
    # version 3: answers to invitations, and the IMAP messages already read (by UIDVALIDITY and UID)
    """
    CREATE TABLE answers (
        meeting TEXT NOT NULL, email TEXT NOT NULL, partstat TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
        via TEXT NOT NULL, sequence INTEGER, detail TEXT, PRIMARY KEY (meeting, email)
    );
    CREATE TABLE imap_seen (
        mailbox TEXT NOT NULL, uidvalidity BIGINT NOT NULL, uid BIGINT NOT NULL,
        outcome TEXT NOT NULL, detail TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (mailbox, uidvalidity, uid)
    );
    CREATE INDEX outbox_sent_to ON outbox (meeting, lower(recipient));
    """,
]

_COLUMNS = (
    "o.id, o.mailing, o.kind, o.meeting, o.recipient, o.revision, o.status, o.attempts, o.last_error, "
    "o.created, o.updated, o.next_attempt, m.message, o.sender"
)
_ROWS = "outbox o JOIN outbox_messages m ON m.id = o.id"


def _ts(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC)


def _row(r: tuple[Any, ...], **override: Any) -> OutboxRow:
    fields = dict(
        id=r[0], mailing=r[1], kind=r[2], meeting=r[3], recipient=r[4], revision=r[5], status=r[6],
        attempts=r[7], last_error=r[8], created=r[9], updated=r[10], next_attempt=r[11],
        message=bytes(r[12]), sender=r[13],
    )  # fmt: skip
    fields.update(override)
    return OutboxRow(**fields)


class PostgresStore:
    """The StateStore on PostgreSQL: rows leased one by one, so any number of instances deliver together."""

    def __init__(
        self,
        url: str,
        *,
        lease: timedelta = DEFAULT_LEASE,
        max_connections: int = 4,
        connect_timeout: float = 10.0,
    ):
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:  # pragma: no cover - a dependency of the package
            raise StoreError(_("PostgreSQL needs the psycopg and psycopg-pool packages")) from None
        self._psycopg = psycopg
        self.url = url
        self.description = redact_url(url)
        self.lease = lease
        self._local = threading.local()

        def configure(conn: Any) -> None:
            # UTC on the wire, whatever the server's default: timestamps come back as the clock gave them.
            conn.execute("SET TIME ZONE 'UTC'")

        try:
            # One connection first: a wrong password or host is told at once, in the server's words,
            # where the pool would retry in the background until its timeout.
            psycopg.connect(url, connect_timeout=max(1, int(connect_timeout))).close()
        except Exception as exc:
            raise self._unreachable(exc) from None
        try:
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_connections,
                configure=configure,
                # One statement is its own transaction (one round trip); several take `_tx`'s BEGIN/COMMIT.
                kwargs={"autocommit": True},
                open=False,
                timeout=connect_timeout,
                name="cyclogram",
            )
            self._pool.open(wait=True, timeout=connect_timeout)
        except Exception as exc:
            raise self._unreachable(exc) from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    # -- connections and transactions ----------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A transaction on this thread's connection; nested calls join it (a mailing streamed into the
        outbox records its sequences and snapshots in the same transaction: all or nothing)."""
        with self._conn(transaction=True) as conn:
            yield conn

    def _unreachable(self, exc: BaseException) -> StoreError:
        return StoreError(
            _("cannot connect to PostgreSQL at {where}: {reason}").format(
                where=self.description, reason=_reason(exc)
            )
        )

    @contextmanager
    def _auto(self) -> Iterator[Any]:
        """A connection for one statement (its own transaction), or the transaction already open."""
        with self._conn(transaction=False) as conn:
            yield conn

    @contextmanager
    def _conn(self, *, transaction: bool) -> Iterator[Any]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn:
                if not transaction:
                    yield conn
                    return
                self._local.conn = conn
                try:
                    with conn.transaction():
                        yield conn
                finally:
                    self._local.conn = None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreError(f"PostgreSQL at {self.description}: {_reason(exc)}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg_pool"):
                raise StoreError(f"PostgreSQL at {self.description}: {_reason(exc)}") from None
            raise

    def _one(self, query: str, args: Any = ()) -> Any:
        with self._auto() as conn:
            return conn.execute(query, args).fetchone()

    def _all(self, query: str, args: Any = ()) -> list[Any]:
        with self._auto() as conn:
            return conn.execute(query, args).fetchall()

    def _migrate(self) -> None:
        with self._tx() as conn:
            # Every instance starts by migrating: one at a time, the others then find nothing to do.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS cyclogram_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM cyclogram_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO cyclogram_schema VALUES (0)")
                version = 0
            else:
                version = row[0]
            if version > len(_SCHEMA):
                raise StoreError(
                    f"{self.description} was written by a newer cyclogram (state schema {version}, this one "
                    f"knows {len(_SCHEMA)}): upgrade cyclogram"
                )
            for i, script in enumerate(_SCHEMA[version:], start=version + 1):
                conn.execute(script)
                conn.execute("UPDATE cyclogram_schema SET version = %s", (i,))
                log.info("action=migrate store=%s version=%d", self.description, i)

    @contextmanager
    def delivery_lease(self) -> Iterator[bool]:
        """No global lease: rows are leased one by one, so every instance and every `send` may deliver."""
        yield True

    @contextmanager
    def mailing_lock(self, key: str) -> Iterator[bool]:
        """A transaction holding the mailing's advisory lock. Another instance composing the same mailing
        is waited for (its transaction then committed what it queued, which the caller sees and skips)."""
        with self._tx() as conn:
            got = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 1))", (key,)
            ).fetchone()[0]
            if not got:
                log.info("action=wait mailing=%s reason='another instance is composing it'", key)
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (key,))
            yield bool(got)

    # -- secrets ---------------------------------------------------------------------------------------
    def secret(self, name: str, make: Callable[[], str]) -> str:
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM secrets WHERE name = %s", (name,)).fetchone()
            if row:
                return str(row[0])
            # Two instances making the secret at once: the first insert wins and both return it.
            conn.execute("INSERT INTO secrets VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, make()))
            return str(conn.execute("SELECT value FROM secrets WHERE name = %s", (name,)).fetchone()[0])

    def set_secret(self, name: str, value: str) -> None:
        with self._auto() as conn:
            conn.execute(
                "INSERT INTO secrets VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # -- sequences -------------------------------------------------------------------------------------
    def event_state(self, uid: str, fingerprint: str, now: datetime) -> EventState:
        """SEQUENCE rises by one, atomically, when the fingerprint differs: instances that see the same
        edit agree on the number, so their feeds are the same bytes."""
        stamp = _ts(now)
        with self._auto() as conn:
            row = conn.execute(
                "INSERT INTO events AS e VALUES (%s, %s, 0, %s, %s) ON CONFLICT (uid) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, sequence = e.sequence + 1, "
                "last_modified = excluded.last_modified WHERE e.fingerprint <> excluded.fingerprint "
                "RETURNING sequence, created, last_modified",
                (uid, fingerprint, stamp, stamp),
            ).fetchone()
            if row is None:  # unchanged: nothing written
                row = conn.execute(
                    "SELECT sequence, created, last_modified FROM events WHERE uid = %s", (uid,)
                ).fetchone()
        return EventState(uid, row[0], row[1], row[2])

    def event_states(self, items: Sequence[tuple[str, str]], now: datetime) -> dict[str, EventState]:
        """`event_state` for each item; each upsert stays atomic on its own, as instances share the table."""
        return {uid: self.event_state(uid, fingerprint, now) for uid, fingerprint in items}

    def peek_event_state(self, uid: str) -> EventState | None:
        row = self._one("SELECT sequence, created, last_modified FROM events WHERE uid = %s", (uid,))
        return EventState(uid, row[0], row[1], row[2]) if row else None

    # -- snapshots and mailings ----------------------------------------------------------------------
    def snapshot(self, meeting: str) -> dict[str, Any] | None:
        row = self._one("SELECT data FROM snapshots WHERE meeting = %s", (meeting,))
        return row[0] if row else None

    def put_snapshot(self, meeting: str, data: dict[str, Any], now: datetime) -> None:
        from psycopg.types.json import Jsonb

        with self._auto() as conn:
            conn.execute(
                "INSERT INTO snapshots VALUES (%s, %s, %s) ON CONFLICT (meeting) DO UPDATE SET "
                "data = excluded.data, updated = excluded.updated",
                (meeting, Jsonb(data), _ts(now)),
            )

    def mark_mailing(self, key: str, state: str, now: datetime) -> None:
        with self._auto() as conn:
            conn.execute(
                "INSERT INTO mailings VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
                "state = excluded.state, updated = excluded.updated",
                (key, state, _ts(now)),
            )

    def mailing_states(self) -> dict[str, str]:
        return dict(self._all("SELECT key, state FROM mailings"))

    # -- reviews ---------------------------------------------------------------------------------------
    def review(self, key: str) -> ReviewState | None:
        row = self._one(
            "SELECT key, state, fingerprint, updated, notified FROM reviews WHERE key = %s", (key,)
        )
        return ReviewState(*row) if row else None

    def reviews(self) -> dict[str, ReviewState]:
        rows = self._all("SELECT key, state, fingerprint, updated, notified FROM reviews")
        return {r[0]: ReviewState(*r) for r in rows}

    def set_review(self, key: str, state: str, fingerprint: str, now: datetime) -> None:
        with self._auto() as conn:
            conn.execute(
                "INSERT INTO reviews (key, state, fingerprint, updated) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, fingerprint = excluded.fingerprint, "
                "updated = excluded.updated",
                (key, state, fingerprint, _ts(now)),
            )

    def mark_notified(self, keys: Iterable[str], now: datetime) -> None:
        with self._auto() as conn:
            conn.execute("UPDATE reviews SET notified = %s WHERE key = ANY(%s)", (_ts(now), list(keys)))

    # -- instances -------------------------------------------------------------------------------------
    def note_instance(
        self, instance: str, fingerprint: str, now: datetime
    ) -> dict[str, tuple[str, datetime]]:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO instances VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, seen = excluded.seen",
                (instance, fingerprint, _ts(now)),
            )
            # Each start is a new name (host and pid): forget the ones gone for a day.
            conn.execute("DELETE FROM instances WHERE seen < %s", (_ts(now) - timedelta(days=1),))
            rows = conn.execute(
                "SELECT name, fingerprint, seen FROM instances WHERE name <> %s", (instance,)
            ).fetchall()
        return {name: (fp, seen) for name, fp, seen in rows}

    # -- outbox ----------------------------------------------------------------------------------------
    def enqueue(self, messages: Iterable[NewMessage], now: datetime) -> int:
        """Queue messages in one transaction, in batches; ones already there (by id) are left as they are,
        so instances queueing the same mailing at once add it once."""
        stamp = _ts(now)
        added = 0
        with self._tx() as conn:
            batch: list[NewMessage] = []
            for m in messages:
                batch.append(m)
                if len(batch) >= _BATCH:
                    added += self._insert(conn, batch, stamp)
                    batch = []
            if batch:
                added += self._insert(conn, batch, stamp)
        return added

    @staticmethod
    def _insert(conn: Any, batch: list[NewMessage], stamp: datetime) -> int:
        columns = list(
            zip(
                *[(m.id, m.mailing, m.kind, m.meeting, m.recipient, m.revision, m.sender) for m in batch],
                strict=True,
            )
        )
        new = {
            r[0]
            for r in conn.execute(
                "INSERT INTO outbox (id, mailing, kind, meeting, recipient, revision, status, attempts, created, "
                "updated, next_attempt, sender) "
                "SELECT id, mailing, kind, meeting, recipient, revision, 'queued', 0, %s, %s, %s, sender FROM "
                "unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[]) "
                "WITH ORDINALITY AS t(id, mailing, kind, meeting, recipient, revision, sender, i) "
                "ORDER BY i ON CONFLICT (id) DO NOTHING RETURNING id",
                (stamp, stamp, stamp, *[list(c) for c in columns]),
            ).fetchall()
        }
        if new:
            bodies = {m.id: m.message for m in batch if m.id in new}
            conn.execute(
                "INSERT INTO outbox_messages SELECT * FROM unnest(%s::text[], %s::bytea[])",
                (list(bodies), list(bodies.values())),
            )
        return len(new)

    def recover(self, now: datetime) -> int:
        """Put back rows whose lease expired (their instance died); a live instance's rows are left alone."""
        stamp = _ts(now)
        with self._auto() as conn:
            return conn.execute(
                "UPDATE outbox SET status = 'queued', updated = %s, next_attempt = %s, lease_until = NULL "
                "WHERE status = 'sending' AND (lease_until IS NULL OR lease_until < %s)",
                (stamp, stamp, stamp),
            ).rowcount

    def claim(self, now: datetime, limit: int) -> list[OutboxRow]:
        """Lease up to `limit` due rows in one statement, skipping rows other instances are claiming.

        Rows whose lease expired come first and are marked in doubt: their deliverer died, perhaps after
        the server took the message. The queued rows are read only as far as needed (a UNION ALL under a
        LIMIT stops early), so no row is locked that is not taken.
        """
        stamp = _ts(now)
        with self._auto() as conn:
            rows = conn.execute(
                "WITH expired AS (SELECT id, TRUE AS doubt FROM outbox WHERE status = 'sending' "
                "    AND (lease_until IS NULL OR lease_until < %(now)s) ORDER BY lease_until NULLS FIRST "
                "    LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
                "due AS (SELECT id, FALSE AS doubt FROM outbox WHERE status = 'queued' AND next_attempt <= %(now)s "
                "    ORDER BY next_attempt, n LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
                "picked AS ((SELECT * FROM expired) UNION ALL (SELECT * FROM due) LIMIT %(limit)s) "
                "UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1, updated = %(now)s, "
                "lease_until = %(until)s FROM picked, outbox_messages m WHERE o.id = picked.id AND m.id = o.id "
                f"RETURNING {_COLUMNS}, picked.doubt",
                {"now": stamp, "limit": limit, "until": stamp + self.lease},
            ).fetchall()
        return [_row(r, in_doubt=bool(r[14])) for r in rows]

    def mark_sent(self, row_id: str, now: datetime, reply: str) -> None:
        with self._auto() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'sent', updated = %s, lease_until = NULL WHERE id = %s",
                (_ts(now), row_id),
            )

    def mark_retry(self, row_id: str, now: datetime, error: str, next_attempt: datetime) -> None:
        with self._auto() as conn:
            # Only a row still being sent: one another instance took over and sent stays sent.
            conn.execute(
                "UPDATE outbox SET status = 'queued', last_error = %s, updated = %s, next_attempt = %s, "
                "lease_until = NULL WHERE id = %s AND status = 'sending'",
                (error, _ts(now), _ts(next_attempt), row_id),
            )

    def mark_failed(self, row_id: str, now: datetime, error: str) -> None:
        with self._auto() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'failed', last_error = %s, updated = %s, lease_until = NULL "
                "WHERE id = %s AND status <> 'sent'",
                (error, _ts(now), row_id),
            )

    def requeue_failed(self, now: datetime, ids: Iterable[str] | None = None) -> int:
        stamp = _ts(now)
        query = (
            "UPDATE outbox SET status = 'queued', attempts = 0, updated = %s, next_attempt = %s "
            "WHERE status = 'failed'"
        )
        with self._auto() as conn:
            if ids is None:
                return conn.execute(query, (stamp, stamp)).rowcount
            return conn.execute(query + " AND id = ANY(%s)", (stamp, stamp, list(ids))).rowcount

    def outbox(self, status: str | None = None, mailing: str | None = None) -> list[OutboxRow]:
        query = f"SELECT {_COLUMNS} FROM {_ROWS} WHERE TRUE"
        args: list[Any] = []
        if status is not None:
            query += " AND o.status = %s"
            args.append(status)
        if mailing is not None:
            query += " AND o.mailing = %s"
            args.append(mailing)
        return [_row(r) for r in self._all(query + " ORDER BY o.created, o.id", args)]

    def outbox_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(dict(self._all("SELECT status, count(*) FROM outbox GROUP BY status")))
        return counts

    def has(self, row_id: str) -> OutboxRow | None:
        row = self._one(f"SELECT {_COLUMNS} FROM {_ROWS} WHERE o.id = %s", (row_id,))
        return _row(row) if row else None

    def next_due(self) -> datetime | None:
        row = self._one(
            "SELECT least((SELECT min(next_attempt) FROM outbox WHERE status = 'queued'), "
            "(SELECT min(lease_until) FROM outbox WHERE status = 'sending'))"
        )
        return row[0] if row else None

    # -- answers ---------------------------------------------------------------------------------------
    def sent_to(self, meeting: str, recipient: str) -> list[OutboxRow]:
        """The messages about a meeting delivered to one address (any case), oldest first."""
        rows = self._all(
            f"SELECT {_COLUMNS} FROM {_ROWS} WHERE o.meeting = %s AND o.status = 'sent' "
            "AND lower(o.recipient) = lower(%s) ORDER BY o.created, o.id",
            (meeting, recipient),
        )
        return [_row(r) for r in rows]

    def record_answer(self, answer: Answer) -> bool:
        """Keep the person's latest answer, in one statement: an older one (a reply read late), or the same
        one again, changes nothing. Returns whether the recorded answer changed."""
        if answer.partstat not in PARTSTATS:
            raise ValueError(f"not an answer: {answer.partstat!r}")
        with self._auto() as conn:
            row = conn.execute(
                "INSERT INTO answers AS a VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (meeting, email) DO UPDATE SET partstat = excluded.partstat, at = excluded.at, "
                "via = excluded.via, sequence = excluded.sequence, detail = excluded.detail "
                "WHERE excluded.at > a.at OR (excluded.at = a.at AND excluded.partstat <> a.partstat) "
                "RETURNING 1",
                (
                    answer.meeting, answer.email.lower(), answer.partstat, _ts(answer.at), answer.via,
                    answer.sequence, answer.detail,
                ),
            ).fetchone()  # fmt: skip
        return row is not None

    def answers(self, meeting: str | None = None) -> list[Answer]:
        query = "SELECT meeting, email, partstat, at, via, sequence, detail FROM answers"
        args: tuple[Any, ...] = ()
        if meeting is not None:
            query += " WHERE meeting = %s"
            args = (meeting,)
        rows = self._all(query + " ORDER BY meeting, email", args)
        return [Answer(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def imap_seen(self, mailbox: str, uidvalidity: int) -> dict[int, str]:
        rows = self._all(
            "SELECT uid, outcome FROM imap_seen WHERE mailbox = %s AND uidvalidity = %s",
            (mailbox, uidvalidity),
        )
        return {int(r[0]): str(r[1]) for r in rows}

    def mark_imap_seen(
        self, mailbox: str, uidvalidity: int, uid: int, outcome: str, detail: str, now: datetime
    ) -> None:
        with self._auto() as conn:
            conn.execute(
                "INSERT INTO imap_seen VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE SET "
                "outcome = excluded.outcome, detail = excluded.detail, at = excluded.at",
                (mailbox, uidvalidity, uid, outcome, detail, _ts(now)),
            )

    # -- migration, backup and restore ------------------------------------------------------------------
    def dump(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every row, table by table (TABLES), as plain values, from one consistent snapshot."""
        with self._tx() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for name, value in conn.execute("SELECT name, value FROM secrets ORDER BY name").fetchall():
                yield "secrets", {"name": name, "value": value}
            for uid, fp, seq, created, modified in conn.execute(
                "SELECT uid, fingerprint, sequence, created, last_modified FROM events ORDER BY uid"
            ).fetchall():
                yield "events", {
                    "uid": uid, "fingerprint": fp, "sequence": seq, "created": created, "last_modified": modified,
                }  # fmt: skip
            for meeting, data, updated in conn.execute(
                "SELECT meeting, data, updated FROM snapshots ORDER BY meeting"
            ).fetchall():
                yield "snapshots", {"meeting": meeting, "data": data, "updated": updated}
            for key, state, updated in conn.execute(
                "SELECT key, state, updated FROM mailings ORDER BY key"
            ).fetchall():
                yield "mailings", {"key": key, "state": state, "updated": updated}
            for key, state, fp, updated, notified in conn.execute(
                "SELECT key, state, fingerprint, updated, notified FROM reviews ORDER BY key"
            ).fetchall():
                yield "reviews", {
                    "key": key, "state": state, "fingerprint": fp, "updated": updated, "notified": notified,
                }  # fmt: skip
            with conn.cursor(name="cyclogram_dump") as cur:  # server-side: the outbox may not fit in memory
                cur.execute(f"SELECT {_COLUMNS} FROM {_ROWS} ORDER BY o.n")
                for r in cur:
                    row = _row(r)
                    yield "outbox", {f: getattr(row, f) for f in _OUTBOX_FIELDS}
            for r in conn.execute(
                "SELECT meeting, email, partstat, at, via, sequence, detail FROM answers ORDER BY meeting, email"
            ).fetchall():
                yield "answers", {
                    "meeting": r[0], "email": r[1], "partstat": r[2], "at": r[3], "via": r[4],
                    "sequence": r[5], "detail": r[6],
                }  # fmt: skip
            for r in conn.execute(
                "SELECT mailbox, uidvalidity, uid, outcome, detail, at FROM imap_seen ORDER BY 1, 2, 3"
            ).fetchall():
                yield "imap_seen", {
                    "mailbox": r[0], "uidvalidity": r[1], "uid": r[2], "outcome": r[3], "detail": r[4],
                    "at": r[5],
                }  # fmt: skip

    def load(self, rows: Iterable[tuple[str, dict[str, Any]]], *, replace: bool = False) -> dict[str, int]:
        """Take rows from `dump` (of any store) in one transaction; `replace` empties this store first."""
        from psycopg.types.json import Jsonb

        counts = dict.fromkeys(TABLES, 0)
        with self._tx() as conn:
            if replace:
                conn.execute(
                    "TRUNCATE secrets, events, snapshots, mailings, reviews, outbox, outbox_messages, answers, imap_seen"
                )
            for table, r in rows:
                if table == "secrets":
                    conn.execute("INSERT INTO secrets VALUES (%s, %s)", (r["name"], r["value"]))
                elif table == "events":
                    conn.execute(
                        "INSERT INTO events VALUES (%s, %s, %s, %s, %s)",
                        (
                            r["uid"],
                            r["fingerprint"],
                            r["sequence"],
                            _ts(r["created"]),
                            _ts(r["last_modified"]),
                        ),
                    )
                elif table == "snapshots":
                    conn.execute(
                        "INSERT INTO snapshots VALUES (%s, %s, %s)",
                        (r["meeting"], Jsonb(r["data"]), _ts(r["updated"])),
                    )
                elif table == "mailings":
                    conn.execute(
                        "INSERT INTO mailings VALUES (%s, %s, %s)", (r["key"], r["state"], _ts(r["updated"]))
                    )
                elif table == "reviews":
                    conn.execute(
                        "INSERT INTO reviews VALUES (%s, %s, %s, %s, %s)",
                        (
                            r["key"], r["state"], r["fingerprint"], _ts(r["updated"]),
                            _ts(r["notified"]) if r["notified"] else None,
                        ),
                    )  # fmt: skip
                elif table == "outbox":
                    # A row some deliverer had in hand: its lease is over at once, so the first instance
                    # to deliver takes it up (in doubt) instead of waiting.
                    conn.execute(
                        "INSERT INTO outbox (id, mailing, kind, meeting, recipient, revision, status, attempts, "
                        "last_error, created, updated, next_attempt, lease_until, sender) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s)",
                        (
                            r["id"], r["mailing"], r["kind"], r["meeting"], r["recipient"], r["revision"],
                            r["status"], r["attempts"], r["last_error"], _ts(r["created"]), _ts(r["updated"]),
                            _ts(r["next_attempt"]), r["sender"],
                        ),
                    )  # fmt: skip
                    conn.execute("INSERT INTO outbox_messages VALUES (%s, %s)", (r["id"], r["message"]))
                elif table == "answers":
                    conn.execute(
                        "INSERT INTO answers VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (
                            r["meeting"], r["email"], r["partstat"], _ts(r["at"]), r["via"], r["sequence"],
                            r["detail"],
                        ),
                    )  # fmt: skip
                elif table == "imap_seen":
                    conn.execute(
                        "INSERT INTO imap_seen VALUES (%s, %s, %s, %s, %s, %s)",
                        (r["mailbox"], r["uidvalidity"], r["uid"], r["outcome"], r["detail"], _ts(r["at"])),
                    )
                else:
                    raise StoreError(f"unknown table {table!r} in the state to load")
                counts[table] += 1
        return counts

    def is_empty(self) -> bool:
        return not any(self._one(f"SELECT 1 FROM {t} LIMIT 1") for t in TABLES)


_OUTBOX_FIELDS = (
    "id", "mailing", "kind", "meeting", "recipient", "revision", "status", "attempts", "last_error",
    "created", "updated", "next_attempt", "sender", "message",
)  # fmt: skip


def _reason(exc: BaseException) -> str:
    """The server's or the driver's words, first line only, never the connection string."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text
