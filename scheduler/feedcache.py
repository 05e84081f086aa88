"""Serialised calendar items kept beside the state between builds, keyed by everything that decides their bytes."""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_bytes

if TYPE_CHECKING:
    import jinja2

    from .model import Project

__all__ = ["CACHE_FILE", "KEEP_BUILDS", "Entry", "ItemCache", "item_key"]

log = logging.getLogger(__name__)

CACHE_FILE = "feed-cache.bin"  # in the state folder, next to state.db
KEEP_BUILDS = 4  # an entry no build has used in this many builds is dropped
MAX_BYTES = 512 * 1024 * 1024  # past this, the entries used longest ago go first
_MAGIC = b"cyclogram feed cache 1\n"
_HEAD = struct.Struct("<QQ")  # generation, length of the index
_TEMPLATES = ("meeting", "event", "action")

Spans = dict[str, tuple[datetime, datetime]]


@dataclass(frozen=True, slots=True)
class Entry:
    """One item's VEVENT bytes (empty: the item has no occurrence) and what a feed needs to know of it."""

    data: bytes
    digest: bytes  # sha256 of data: the feeds' ETags and the written files' check are made of these
    spans: Spans  # per TZID, the earliest and latest local moments it uses (for the VTIMEZONEs)
    cancelled: date | None  # a cancelled item's last day


@cache
def _code() -> bytes:
    """What the serialised bytes depend on besides the data: this package's code, the libraries that
    write and format, the shipped templates. A new release rebuilds every item."""
    import babel
    import icalendar
    import jinja2
    import pydantic

    from .templating import default_templates_dir

    h = hashlib.sha256(_MAGIC)
    versions = (sys.version, icalendar.__version__, babel.__version__, jinja2.__version__, pydantic.VERSION)
    h.update(repr(versions).encode())
    here = Path(__file__).parent
    for path in sorted([*here.glob("*.py"), *(default_templates_dir() / "ics").rglob("*.txt")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.digest()


def item_key(context: bytes, kind: str, ident: Sequence[str | None]) -> bytes:
    """The key of one item: the build's context and the item's own inputs (texts: models as JSON)."""
    h = hashlib.sha256(context)
    h.update(kind.encode())
    for part in ident:
        # Each part with its length: no two different lists of parts hash the same stream.
        data = b"\xff" if part is None else part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.digest()


class ItemCache:
    """Items' bytes by key, loaded from `path` (a file in the state folder; None: this process only).

    A build calls `begin`, then `get`/`put` for each item, then `save`. The file is replaced whole (a
    temporary file, then a rename), so concurrent builds and a crash leave a complete file, the last
    writer's; one that cannot be read is ignored (with a warning) and written anew.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[bytes, list[Any]] = {}  # key -> [generation last used, Entry]
        self._gen = 0
        self._dirty = False
        self.hits = 0
        self.misses = 0
        if path is not None:
            self._load(path)

    # -- keys --------------------------------------------------------------------------------------------
    def context(self, project: Project, env: jinja2.Environment, language: str) -> bytes | None:
        """What every item of a build depends on: settings, language, templates, code. None when the
        organiser overrides a calendar template: it may read any part of the project, so no key short of
        the whole project would be safe, and items are then built afresh."""
        from .templating import default_templates_dir

        shipped = default_templates_dir().resolve()
        h = hashlib.sha256(_code())
        h.update(language.encode() + b"\0")
        h.update(project.settings.model_dump_json().encode())
        for name in _TEMPLATES:
            assert env.loader is not None
            source, filename, _ = env.loader.get_source(env, f"ics/{language}/{name}.txt")
            if filename is None or not Path(filename).resolve().is_relative_to(shipped):
                return None
            h.update(source.encode())
        return h.digest()

    # -- entries -----------------------------------------------------------------------------------------
    def begin(self) -> None:
        """A new build: what it does not use ages by one."""
        self._gen += 1
        self.hits = self.misses = 0

    def get(self, key: bytes) -> Entry | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        found[0] = self._gen
        return found[1]

    def put(self, key: bytes | None, data: bytes, spans: Spans, cancelled: date | None) -> Entry:
        entry = Entry(data, hashlib.sha256(data).digest(), spans, cancelled)
        if key is not None:
            self._entries[key] = [self._gen, entry]
            self._dirty = True
        return entry

    def zone(self, tzid: str, lo: datetime, hi: datetime) -> bytes:
        """A VTIMEZONE's bytes, cached like the items (computing one scans the zone's history)."""
        from .timezones import vtimezone_for, zone_mark

        key = hashlib.sha256(
            _code() + f"zone\0{zone_mark(tzid.partition(' ')[0])}\0{tzid}\0{lo}\0{hi}".encode()
        ).digest()
        found = self.get(key)
        if found is None:
            found = self.put(key, vtimezone_for(tzid, lo, hi).to_ical(), {}, None)
        return found.data

    def __len__(self) -> int:
        return len(self._entries)

    # -- the file ----------------------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("feed cache %s not read (%s); items are built afresh", path, exc)
            return
        try:
            self._gen, self._entries = _decode(raw)
        except (ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError) as exc:
            log.warning("feed cache %s is damaged (%s); it is rebuilt", path, exc)
            self._gen, self._entries = 0, {}
            self._dirty = True

    def save(self) -> None:
        """Drop what recent builds have not used, and write the file if anything changed."""
        oldest = self._gen - KEEP_BUILDS
        stale = [k for k, (gen, _) in self._entries.items() if gen <= oldest]
        for key in stale:
            del self._entries[key]
        total = sum(len(e.data) for _, e in self._entries.values())
        if total > MAX_BYTES:
            for key, (_, entry) in sorted(self._entries.items(), key=lambda kv: kv[1][0]):
                if total <= MAX_BYTES:
                    break
                total -= len(entry.data)
                del self._entries[key]
                stale.append(key)
        if self.path is None or not (self._dirty or stale):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(self.path, _encode(self._gen, self._entries), mode=0o600)
            self._dirty = False
        except OSError as exc:  # a full or read-only disk costs the next build time, not this one its feeds
            log.warning("feed cache %s not written: %s", self.path, exc)


def _encode(gen: int, entries: dict[bytes, list[Any]]) -> bytes:
    index = []
    blobs = []
    offset = 0
    for key, (used, e) in entries.items():
        spans = {tzid: [lo.isoformat(), hi.isoformat()] for tzid, (lo, hi) in e.spans.items()}
        cancelled = e.cancelled.isoformat() if e.cancelled else None
        index.append([key.hex(), used, offset, len(e.data), e.digest.hex(), spans, cancelled])
        blobs.append(e.data)
        offset += len(e.data)
    text = json.dumps(index, separators=(",", ":")).encode()
    body = b"".join([_MAGIC, _HEAD.pack(gen, len(text)), text, *blobs])
    return body + hashlib.sha256(body).digest()


def _decode(raw: bytes) -> tuple[int, dict[bytes, list[Any]]]:
    if not raw.startswith(_MAGIC):
        raise ValueError("not a feed cache of this version")
    body, check = raw[:-32], raw[-32:]
    if hashlib.sha256(body).digest() != check:
        raise ValueError("checksum mismatch")
    start = len(_MAGIC)
    gen, size = _HEAD.unpack_from(body, start)
    start += _HEAD.size
    index = json.loads(body[start : start + size])
    blob = memoryview(body)[start + size :]
    entries: dict[bytes, list[Any]] = {}
    for key, used, offset, length, digest, spans, cancelled in index:
        if offset + length > len(blob):
            raise ValueError("entry past the end")
        data = bytes(blob[offset : offset + length])
        parsed = {
            t: (datetime.fromisoformat(lo), datetime.fromisoformat(hi)) for t, (lo, hi) in spans.items()
        }
        day = date.fromisoformat(cancelled) if cancelled else None
        entries[bytes.fromhex(key)] = [int(used), Entry(data, bytes.fromhex(digest), parsed, day)]
    return int(gen), entries
