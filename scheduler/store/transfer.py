"""Moving state between stores: migration (SQLite to PostgreSQL and back), backup and restore."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..translation import _
from .base import TABLES, StateStore, StoreError
from .sqlite import SQLiteStore
from .url import is_postgres, open_url, sqlite_path

__all__ = ["backup", "migrate", "restore"]


@contextmanager
def _scratch_beside(target: Path) -> Iterator[Path]:
    """A temporary file in the target's folder, renamed over it only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # SQLite makes the file itself; an empty one would be refused as a truncated store
    try:
        yield tmp
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _counts(store: StateStore) -> dict[str, int]:
    counts = dict.fromkeys(TABLES, 0)
    for table, _row in store.dump():
        counts[table] += 1
    return counts


def backup(store: StateStore, target: Path) -> dict[str, int]:
    """Write the whole state into `target` as a SQLite state file (whatever the store), atomically.

    From SQLite: SQLite's online backup, consistent while the service writes. From PostgreSQL: one
    consistent snapshot of every table. The file is itself a usable store (`sqlite:FILE`).
    """
    with _scratch_beside(target) as tmp:
        if isinstance(store, SQLiteStore):
            store.check()  # a damaged store must not replace the last good backup
            store.backup(tmp)
            copy = SQLiteStore(tmp)
            counts = _counts(copy)
        else:
            copy = SQLiteStore(tmp)
            counts = copy.load(store.dump())
        copy.close()
        os.replace(tmp, target)
    return counts


def _check_backup(source: Path) -> None:
    if not source.is_file():
        raise StoreError(_("{file}: no such backup file").format(file=source))


def restore(source: Path, url: str | None, state: Path) -> dict[str, int]:
    """Replace the current state with a backup made by `backup` (or any cyclogram state file).

    SQLite: the backup, checked and brought to the current schema on a copy, takes the place of
    state.db; refused while a service delivers from it (stop it first). PostgreSQL: every table is
    emptied and filled from the backup in one transaction.
    """
    _check_backup(source)
    target = sqlite_path(url) if url and not is_postgres(url) else state / "state.db"
    with _scratch_beside(target) as tmp:
        shutil.copyfile(source, tmp)
        for suffix in ("-wal", "-shm"):  # a backup taken by copying files may come with its journal
            if source.with_name(source.name + suffix).exists():
                shutil.copyfile(source.with_name(source.name + suffix), tmp.with_name(tmp.name + suffix))
        copy = SQLiteStore(tmp)  # refuses a damaged or foreign file, migrates an older one
        counts = _counts(copy)
        if url and is_postgres(url):
            dest = open_url(url)
            try:
                dest.load(copy.dump(), replace=True)
            finally:
                dest.close()
            copy.close()
            return counts
        copy.close()
        lock = target.with_name(target.name + ".deliver.lock")
        with open(lock, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(
                    f"a cyclogram service is delivering from {target}: stop it, then restore"
                ) from None
            for suffix in ("-wal", "-shm"):
                target.with_name(target.name + suffix).unlink(missing_ok=True)
            os.replace(tmp, target)
    return counts


def migrate(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row from one store into another, which must be empty; both are left open to nobody."""
    if source_url == target_url:
        raise StoreError(_("--from and --to name the same store"))
    if not is_postgres(source_url) and not sqlite_path(source_url).is_file():
        raise StoreError(_("{file}: no such state store").format(file=sqlite_path(source_url)))
    source = open_url(source_url)
    try:
        target = open_url(target_url)
        try:
            if not target.is_empty():
                raise StoreError(
                    f"{target.description} already holds state: migrate into an empty store "
                    "(or `state restore` a backup to replace it)"
                )
            counts = target.load(source.dump())
            check = _counts(target)
            if check != counts or _counts(source) != counts:
                raise StoreError(f"the copy does not match its source: {counts} copied, {check} found")
            if target.outbox_counts() != source.outbox_counts():
                raise StoreError("the copy's outbox statuses differ from the source's")
        finally:
            target.close()
    finally:
        source.close()
    return counts
