"""The state store's interface: what every store keeps, and the rows it hands out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "STATE_ENV",
    "STATUSES",
    "EventState",
    "NewMessage",
    "OutboxRow",
    "ReviewState",
    "StateStore",
    "state_dir",
]

STATE_ENV = "CYCLOGRAM_STATE"
STATUSES = ("queued", "sending", "sent", "failed")


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
    """Everything cyclogram keeps between runs. SQLite implements it; PostgreSQL can, with the same tests."""

    # secrets
    def secret(self, name: str, make: Callable[[], str]) -> str: ...
    def set_secret(self, name: str, value: str) -> None: ...

    # calendar sequences
    def event_state(self, uid: str, fingerprint: str, now: datetime) -> EventState: ...
    def peek_event_state(self, uid: str) -> EventState | None: ...

    # meeting snapshots (what the schools were last told)
    def snapshot(self, meeting: str) -> dict[str, Any] | None: ...
    def put_snapshot(self, meeting: str, data: dict[str, Any], now: datetime) -> None: ...

    # mailings (sent / missed), by mailing key
    def mark_mailing(self, key: str, state: str, now: datetime) -> None: ...
    def mailing_states(self) -> dict[str, str]: ...

    # review of held mailings, by mailing key
    def review(self, key: str) -> ReviewState | None: ...
    def reviews(self) -> dict[str, ReviewState]: ...
    def set_review(self, key: str, state: str, fingerprint: str, now: datetime) -> None: ...
    def mark_notified(self, keys: Iterable[str], now: datetime) -> None: ...

    # outbox
    def enqueue(self, messages: Iterable[NewMessage], now: datetime) -> int: ...
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

    # one deliverer at a time: `recover` would otherwise take rows another process is still sending
    def delivery_lease(self) -> AbstractContextManager[bool]: ...

    def close(self) -> None: ...
