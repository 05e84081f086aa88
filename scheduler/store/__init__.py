"""Where cyclogram keeps what it must remember between runs: the interface and its stores."""

from .base import (
    DATABASE_ENV,
    DEFAULT_LEASE,
    LEASE_ENV,
    PARTSTATS,
    STATE_ENV,
    STATUSES,
    TABLES,
    Answer,
    EventState,
    NewMessage,
    OutboxRow,
    ReviewState,
    StateStore,
    StoreError,
    lease_from_env,
    redact_url,
    state_dir,
)
from .sqlite import SQLiteStore, open_store
from .url import is_postgres, open_url, sqlite_path

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
    "SQLiteStore",
    "StateStore",
    "StoreError",
    "is_postgres",
    "lease_from_env",
    "open_store",
    "open_url",
    "redact_url",
    "sqlite_path",
    "state_dir",
]
