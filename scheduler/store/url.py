"""Which store a URL names: `postgresql://...`, `sqlite:PATH`, or the state directory's state.db."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from .base import DEFAULT_LEASE, StateStore, StoreError, redact_url, state_dir
from .sqlite import SQLiteStore

__all__ = ["is_postgres", "open_url", "sqlite_path"]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path:
    """`sqlite:PATH`: the file, or `state.db` in PATH when it is a directory."""
    path = Path(url.removeprefix("sqlite:"))
    return path / "state.db" if path.is_dir() else path


def open_url(
    url: str | None, directory: str | os.PathLike[str] | None = None, *, lease: timedelta = DEFAULT_LEASE
) -> StateStore:
    """The store a URL names; without one, `state.db` in the state directory."""
    if not url:
        return SQLiteStore(state_dir(directory) / "state.db", lease=lease)
    if is_postgres(url):
        from .postgres import PostgresStore

        return PostgresStore(url, lease=lease)
    if url.startswith("sqlite:"):
        return SQLiteStore(sqlite_path(url), lease=lease)
    raise StoreError(
        f"{redact_url(url)!r} is not a state store URL: give postgresql://user:password@host:port/db "
        "or sqlite:PATH"
    )
