"""The state store's interface: what every store keeps, and the rows it hands out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ..errors import CyclogramError
from ..translation import _

__all__ = [
    "DATABASE_ENV",
    "DEFAULT_LEASE",
    "LEASE_ENV",
    "PARTSTATS",
    "STATE_ENV",
    "STATUSES",
    "TABLES",
    "Answer",
    "EventState",
    "NewMessage",
    "OutboxRow",
    "ReviewState",
    "StateStore",
    "StoreError",
    "lease_from_env",
    "redact_url",
    "state_dir",
]

STATE_ENV = "CYCLOGRAM_STATE"
DATABASE_ENV = "CYCLOGRAM_DATABASE_URL"
LEASE_ENV = "CYCLOGRAM_OUTBOX_LEASE_SECONDS"
STATUSES = ("queued", "sending", "sent", "failed")
PARTSTATS = ("ACCEPTED", "DECLINED", "TENTATIVE")  # the answers a person can give (RFC 5545 PARTSTAT)
# Longer than one SMTP transaction can take (connect and send time out after 30 s each by default), so a
# row is taken from its deliverer only when that deliverer is gone.
DEFAULT_LEASE = timedelta(minutes=5)
# What a store holds, in the order `dump` yields it and `load` takes it (migration, backup, restore).
TABLES = ("secrets", "events", "snapshots", "mailings", "reviews", "outbox", "answers", "imap_seen")


class StoreError(CyclogramError):
    """The state store cannot be used: unreadable, truncated, vanished, or its server is unreachable."""


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def lease_from_env(environ: dict[str, str] | None = None) -> timedelta:
    """How long a claimed row stays its deliverer's: $CYCLOGRAM_OUTBOX_LEASE_SECONDS, else five minutes."""
    value = (environ if environ is not None else os.environ).get(LEASE_ENV, "").strip()
    if not value:
        return DEFAULT_LEASE
    try:
        seconds = int(value)
    except ValueError:
        raise StoreError(
            _("{name} must be a whole number of seconds, not {value!r}").format(name=LEASE_ENV, value=value)
        ) from None
    if seconds <= 0:
        raise StoreError(
            _("{name} must be a positive number of seconds, not {value}").format(
                name=LEASE_ENV, value=seconds
            )
        )
    return timedelta(seconds=seconds)


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where state lives: explicit, else $CYCLOGRAM_STATE, else ./var."""
    return Path(explicit or os.environ.get(STATE_ENV) or "var")


@dataclass(frozen=True)
class EventState:
    """What the calendar needs to remember of one event between builds."""

    uid: str
    sequence: int
    created: datetime
    last_modified: datetime


@dataclass(frozen=True)
class NewMessage:
    """A rendered message to queue; `id` is unique per (mailing, recipient, revision)."""

    id: str
    mailing: str
    kind: str
    meeting: str | None
    recipient: str
    revision: int
    message: bytes
    sender: str


@dataclass(frozen=True)
class OutboxRow:
    id: str
    mailing: str
    kind: str
    meeting: str | None
    recipient: str
    revision: int
    status: str
    attempts: int
    last_error: str | None
    created: datetime
    updated: datetime
    next_attempt: datetime
    message: bytes
    sender: str
    in_doubt: bool = False  # taken over from a deliverer whose lease expired: it may have been sent


@dataclass(frozen=True)
class Answer:
    """A person's answer to a meeting's invitation: one per (meeting, address), the latest given."""

    meeting: str
    email: str  # lower case: a person is their address, whichever case a client writes it in
    partstat: str  # one of PARTSTATS
    at: datetime  # when the person answered (the reply's DTSTAMP, or the moment the link was posted)
    via: str  # "link" or "imap"
    sequence: int | None = None  # the SEQUENCE the reply answered (imap only)
    detail: str | None = None  # where it came from: the IMAP folder and UID


@dataclass(frozen=True)
class ReviewState:
    """Where one held mailing stands: drafted, approved (of this content), held, or withdrawn by an edit.

    `fingerprint` is of the rendered content the state refers to (the approved content, for `approved`);
    `notified` is when the organiser's digest last listed the draft.
    """

    key: str
    state: str  # draft | approved | held | withdrawn
    fingerprint: str
    updated: datetime
    notified: datetime | None = None


class StateStore(Protocol):
    """Everything cyclogram keeps between runs: SQLite and PostgreSQL implement it and pass the same tests."""

    description: str  # where the state is, for messages (a path, or a URL without its password)

    # secrets
    def secret(self, name: str, make: Callable[[], str]) -> str: ...
    def set_secret(self, name: str, value: str) -> None: ...

    # calendar sequences
    def event_state(self, uid: str, fingerprint: str, now: datetime) -> EventState: ...
    def event_states(self, items: Sequence[tuple[str, str]], now: datetime) -> dict[str, EventState]: ...
    def peek_event_state(self, uid: str) -> EventState | None: ...

    # meeting snapshots (what the schools were last told)
    def snapshot(self, meeting: str) -> dict[str, Any] | None: ...
    def put_snapshot(self, meeting: str, data: dict[str, Any], now: datetime) -> None: ...

    # mailings (sent / missed), by mailing key
    def mark_mailing(self, key: str, state: str, now: datetime) -> None: ...
    def mailing_states(self) -> dict[str, str]: ...

    # mailing composition: a transaction holding the mailing's lock, so that several instances firing the
    # same job compose it once; True if the lock was free, False if this waited for another instance
    def mailing_lock(self, key: str) -> AbstractContextManager[bool]: ...

    # the configuration each running instance applies (fingerprints), so a stale one is noticed
    def note_instance(
        self, instance: str, fingerprint: str, now: datetime
    ) -> dict[str, tuple[str, datetime]]: ...

    # review of held mailings, by mailing key
    def review(self, key: str) -> ReviewState | None: ...
    def reviews(self) -> dict[str, ReviewState]: ...
    def set_review(self, key: str, state: str, fingerprint: str, now: datetime) -> None: ...
    def mark_notified(self, keys: Iterable[str], now: datetime) -> None: ...

    # outbox
    def enqueue(self, messages: Iterable[NewMessage], now: datetime) -> int: ...
    # rows whose deliverer is gone back to the queue; how many (each may have been sent: "in doubt")
    def recover(self, now: datetime) -> int: ...
    def claim(self, now: datetime, limit: int) -> list[OutboxRow]: ...
    def mark_sent(self, row_id: str, now: datetime, reply: str) -> None: ...
    def mark_retry(self, row_id: str, now: datetime, error: str, next_attempt: datetime) -> None: ...
    def mark_failed(self, row_id: str, now: datetime, error: str) -> None: ...
    def requeue_failed(self, now: datetime, ids: Iterable[str] | None = None) -> int: ...
    def outbox(self, status: str | None = None, mailing: str | None = None) -> list[OutboxRow]: ...
    def outbox_counts(self) -> dict[str, int]: ...
    def has(self, row_id: str) -> OutboxRow | None: ...
    def next_due(self) -> datetime | None: ...

    # SQLite: one deliverer at a time (a file lock), since `recover` takes every row in `sending`.
    # PostgreSQL: always True; rows are leased one by one and only expired leases are recovered.
    def delivery_lease(self) -> AbstractContextManager[bool]: ...

    # everything held, table by table (see TABLES), as plain values; and loading it in one transaction
    def dump(self) -> Iterator[tuple[str, dict[str, Any]]]: ...
    def load(
        self, rows: Iterable[tuple[str, dict[str, Any]]], *, replace: bool = False
    ) -> dict[str, int]: ...
    def is_empty(self) -> bool: ...

    # answers to invitations (by link or from a calendar client's iTIP REPLY)
    def sent_to(self, meeting: str, recipient: str) -> list[OutboxRow]: ...
    def record_answer(self, answer: Answer) -> bool: ...
    def answers(self, meeting: str | None = None) -> list[Answer]: ...
    def imap_seen(self, mailbox: str, uidvalidity: int) -> dict[int, str]: ...
    def mark_imap_seen(
        self, mailbox: str, uidvalidity: int, uid: int, outcome: str, detail: str, now: datetime
    ) -> None: ...

    def close(self) -> None: ...
