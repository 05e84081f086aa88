"""Where cyclogram keeps what it must remember between runs: the interface and its stores."""

from .base import STATE_ENV, STATUSES, EventState, NewMessage, OutboxRow, ReviewState, StateStore, state_dir
from .sqlite import SQLiteStore, open_store

__all__ = [
    "STATE_ENV",
    "STATUSES",
    "EventState",
    "NewMessage",
    "OutboxRow",
    "ReviewState",
    "SQLiteStore",
    "StateStore",
    "open_store",
    "state_dir",
]
