"""Where cyclogram keeps what it must remember between runs: the interface and its stores."""

from .base import (
    PARTSTATS,
    STATE_ENV,
    STATUSES,
    Answer,
    EventState,
    NewMessage,
    OutboxRow,
    ReviewState,
    StateStore,
    state_dir,
)
from .sqlite import SQLiteStore, open_store

__all__ = [
    "PARTSTATS",
    "STATE_ENV",
    "STATUSES",
    "Answer",
    "EventState",
    "NewMessage",
    "OutboxRow",
    "ReviewState",
    "SQLiteStore",
    "StateStore",
    "open_store",
    "state_dir",
]
