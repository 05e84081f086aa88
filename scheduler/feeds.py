"""Subscription feeds from the model: the project's, each school's, each team's and each meeting's."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from icalendar import vText
from icalendar.parser import Contentline

from .atomic import write_bytes
from .calendar import Piece, event_states, feed_pieces, wrap_calendar
from .model import Project
from .progress import NoProgress, Progress

if TYPE_CHECKING:
    from .feedcache import ItemCache
    from .store import EventState, StateStore

__all__ = [
    "CANCELLED_KEPT",
    "ORGANISER_FEED",
    "Feed",
    "build_feeds",
    "current_feeds",
    "prune_revoked",
    "url_layout",
    "write_feeds",
    "write_record",
]

log = logging.getLogger(__name__)

# A cancelled item stays in the feeds this long after its end, so clients that already show it learn of
# the cancellation (a vanished event is silently kept by some clients), then it drops out.
CANCELLED_KEPT = timedelta(days=30)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STAND_IN = "cyclogram-feed-name-stand-in"
ORGANISER_FEED = "organiser/all.ics"  # private: keep organiser/ off a public static server

_NAMES = {
    "ru": {
        "project": "{title}",
        "school": "{title}: {name}",
        "team": "{title}: {name}",
        "meeting": "{name}",
        "organiser": "{title}: все события",
    },
    "en": {
        "project": "{title}",
        "school": "{title}: {name}",
        "team": "{title}: {name}",
        "meeting": "{name}",
        "organiser": "{title}: everything",
    },
}


@dataclass(frozen=True)
class Feed:
    """One built .ics file and what a server needs to serve it.

    The bytes are kept as the pieces they are made of (the calendar's head, its VTIMEZONEs, each item's
    VEVENT, the end), shared by every feed that holds the same item: a thousand school feeds cost a
    thousand lists, not a thousand copies of what is for everyone.
    """

    path: str  # relative: project.ics, schools/<id>.ics, teams/<id>.ics, meetings/<id>.ics
    kind: str  # project | school | team | meeting | organiser
    id: str | None
    name: str
    public: bool
    chunks: tuple[bytes, ...]
    last_modified: datetime  # the newest LAST-MODIFIED in it: stable while the content is
    digest: str  # of the pieces' digests: the same bytes give the same digest, other bytes another

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def size(self) -> int:
        return sum(map(len, self.chunks))

    @property
    def etag(self) -> str:
        return self.digest[:32]


def _visible(project: Project, piece: Piece, today: date) -> bool:
    return piece.cancelled_end is None or piece.cancelled_end + CANCELLED_KEPT >= today


@functools.lru_cache(maxsize=4096)
def _name_lines(name: str) -> bytes:
    """A feed's NAME and X-WR-CALNAME lines, folded; kept between the rebuilds of a long-running service."""
    value = vText(name)
    return b"".join(
        Contentline.from_parts(key, value.params, value).to_ical() + b"\r\n"
        for key in ("NAME", "X-WR-CALNAME")
    )


def _hand_out(
    pieces: list[Piece], keys: list[str], named: str, through: str, members: dict[str, Any]
) -> dict[str, list[Piece]]:
    """Each piece not for everyone, in order, to every key its audience names (`named`: "schools" or
    "teams") or reaches through the other kind (`through`, mapped to keys by `members`); one pass over the
    pieces instead of asking every feed about every piece."""
    per: dict[str, list[Piece]] = {key: [] for key in keys}
    for piece in pieces:
        audience = piece.audience
        if audience.all:
            continue
        wanted = set(getattr(audience, named))
        for other in getattr(audience, through):
            wanted.update(members.get(other, ()))
        for key in wanted:
            if key in per:
                per[key].append(piece)
    return per


class _Assembler:
    """Feeds from pieces: each piece's digest is known, each VTIMEZONE and head made once per build."""

    def __init__(self, project: Project, states: dict[str, EventState], cache: ItemCache):
        self.project = project
        self.states = states
        self.cache = cache
        self.zones: dict[tuple[str, datetime, datetime], tuple[bytes, bytes]] = {}
        self.shells: dict[str, tuple[bytes, bytes] | None] = {}

    def head(self, name: str, language: str) -> bytes:
        """The calendar without items: `wrap_calendar`'s bytes, made once per language with a stand-in
        name, then with each feed's own NAME lines in place (each content line is folded on its own)."""
        project = self.project
        if language not in self.shells:
            shell = wrap_calendar(
                project, [], method=None, name=_STAND_IN, description=project.settings.name, language=language
            ).to_ical()
            lines = f"NAME:{_STAND_IN}\r\nX-WR-CALNAME:{_STAND_IN}\r\n".encode()
            before, found, after = shell.partition(lines)
            self.shells[language] = (before, after) if found else None
        parts = self.shells[language]
        if parts is None:  # not the layout expected: the general way
            return wrap_calendar(
                project, [], method=None, name=name, description=project.settings.name, language=language
            ).to_ical()
        return b"".join([parts[0], _name_lines(name), parts[1]])

    def zone(self, tzid: str, lo: datetime, hi: datetime) -> tuple[bytes, bytes]:
        key = (tzid, lo, hi)
        if key not in self.zones:
            data = self.cache.zone(tzid, lo, hi)
            self.zones[key] = (data, hashlib.sha256(data).digest())
        return self.zones[key]

    def group(self, pieces: list[Piece]) -> _Group:
        spans: dict[str, tuple[datetime, datetime]] = {}
        for piece in pieces:
            for tzid, (lo, hi) in piece.spans.items():
                old = spans.get(tzid)
                spans[tzid] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        states = self.states
        modified = max((states[p.uid].last_modified for p in pieces), default=_EPOCH)
        return _Group(
            tuple(p.data for p in pieces), b"".join(p.digest for p in pieces), spans, modified.astimezone(UTC)
        )

    def feed(
        self,
        path: str,
        kind: str,
        ident: str | None,
        name: str,
        public: bool,
        groups: list[_Group],
        language: str,
    ) -> Feed:
        """One feed of the groups' items, in order; a group shared by many feeds is summed up once."""
        head = self.head(name, language)
        end = head.rindex(b"END:VCALENDAR")
        spans = dict(groups[0].spans) if groups else {}
        for g in groups[1:]:
            for tzid, (lo, hi) in g.spans.items():
                old = spans.get(tzid)
                spans[tzid] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        zones = [self.zone(tzid, lo, hi) for tzid, (lo, hi) in sorted(spans.items())]
        chunks: tuple[bytes, ...] = (head[:end], *(z for z, _ in zones))
        h = hashlib.sha256(head)
        for _, digest in zones:
            h.update(digest)
        for g in groups:
            chunks += g.chunks
            h.update(g.digests)
        chunks += (head[end:],)
        modified = max((g.modified for g in groups), default=_EPOCH)
        return Feed(path, kind, ident, name, public, chunks, modified.replace(microsecond=0), h.hexdigest())


@dataclass(frozen=True, slots=True)
class _Group:
    """Items that go into feeds together, summed up: their bytes, digests, zones and newest change."""

    chunks: tuple[bytes, ...]
    digests: bytes
    spans: dict[str, tuple[datetime, datetime]]
    modified: datetime


def build_feeds(
    project: Project,
    states: dict[str, EventState],
    now: datetime,
    *,
    env: jinja2.Environment | None = None,
    secret: str | None = None,
    cache: ItemCache | None = None,
) -> dict[str, Feed]:
    """Every feed by its relative path; the same model and states give the same bytes.

    `secret` lets items link the documents of meetings that are not public (ATTACH). `cache` keeps the
    serialised items between builds (see feedcache.py); without one, every item is built.
    """
    from .feedcache import ItemCache

    cache = cache if cache is not None else ItemCache(None)
    cache.begin()
    today = now.astimezone(project.settings.tz).date()
    by_language: dict[str, list[Piece]] = {}

    def items(language: str) -> list[Piece]:
        if language not in by_language:
            every = feed_pieces(project, states, language, env=env, secret=secret, cache=cache)
            by_language[language] = [i for i in every if _visible(project, i, today)]
        return by_language[language]

    settings = project.settings
    lang = settings.language
    names = _NAMES[lang]
    out: dict[str, Feed] = {}
    make = _Assembler(project, states, cache)

    def add(feed: Feed) -> None:
        out[feed.path] = feed

    # Public: only what is addressed to everyone. An item for some teams or schools reaches them through
    # their private feeds, never through a URL anyone may hold.
    title = settings.title
    everyone: dict[str, _Group] = {}  # language -> what is for everyone, shared by every feed

    def for_everyone(language: str) -> _Group:
        if language not in everyone:
            everyone[language] = make.group([i for i in items(language) if i.audience.all])
        return everyone[language]

    name = names["project"].format(title=title, name="")
    add(make.feed("project.ics", "project", None, name, True, [for_everyone(lang)], lang))
    by_school: dict[str, dict[str, list[Piece]]] = {}  # language -> school id -> its own items
    team_schools = {t.id: t.schools for t in project.teams}

    def school_items(language: str, school_id: str) -> list[Piece]:
        # One pass over the items, each handed to the schools its audience names (in item order),
        # instead of asking every school about every item; what is for everyone is shared, not handed.
        if language not in by_school:
            by_school[language] = _hand_out(
                items(language), [s.id for s in project.schools], "schools", "teams", team_schools
            )
        return by_school[language][school_id]

    # A school's and a team's feed: what is for everyone, then what is for them.
    for school in project.schools:
        sl = project.language_of(school)
        name = _NAMES[sl]["school"].format(title=title, name=school.title)
        own = make.group(school_items(sl, school.id))
        path = f"schools/{school.id}.ics"
        add(make.feed(path, "school", school.id, name, False, [for_everyone(sl), own], sl))
    # A team's own items: those naming the team or one of its schools, in item order, found in one pass.
    school_teams: dict[str, list[str]] = {}
    for team in project.teams:
        for sid in team.schools:
            school_teams.setdefault(sid, []).append(team.id)
    per_team = _hand_out(items(lang), [t.id for t in project.teams], "teams", "schools", school_teams)
    for team in project.teams:
        name = names["team"].format(title=title, name=team.name)
        groups = [for_everyone(lang), make.group(per_team[team.id])]
        add(make.feed(f"teams/{team.id}.ics", "team", team.id, name, False, groups, lang))
    # The organiser's own feed: every item, whoever it is for; served only behind the organiser's token.
    name = names["organiser"].format(title=title, name="")
    add(make.feed(ORGANISER_FEED, "organiser", None, name, False, [make.group(items(lang))], lang))
    by_meeting: dict[str, list[Piece]] = {}
    for i in items(lang):
        if i.kind == "meeting":
            by_meeting.setdefault(i.item_id, []).append(i)
    for meeting in project.meetings:
        name = names["meeting"].format(title=title, name=meeting.title)
        own = make.group(by_meeting.get(meeting.id, []))
        public = meeting.audience.all
        add(make.feed(f"meetings/{meeting.id}.ics", "meeting", meeting.id, name, public, [own], lang))
    return out


def current_feeds(
    store: StateStore,
    project: Project,
    now: datetime,
    *,
    env: jinja2.Environment | None = None,
    cache: ItemCache | None = None,
) -> dict[str, Feed]:
    """At the edge: record sequences in the store, then build every feed (and keep `cache`'s file)."""
    from .tokens import feed_secret

    states = event_states(store, project, now)
    feeds = build_feeds(project, states, now, env=env, secret=feed_secret(store), cache=cache)
    if cache is not None:
        cache.save()
    return feeds


_IOV_MAX = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024)


def _write_chunks(fd: int, chunks: tuple[bytes, ...]) -> None:
    """The pieces one after another, without joining them into one copy first."""
    views = [memoryview(c) for c in chunks if c]
    while views:
        batch = views[:_IOV_MAX]
        done = os.writev(fd, batch)
        # A short write (a signal, a full pipe) leaves the rest: skip what went out, go on from there.
        while done and views:
            if done >= len(views[0]):
                done -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][done:]
                done = 0


def _record_of(record: Path | None) -> dict[str, list[Any]]:
    if record is None:
        return {}
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("record of written feeds %s unreadable (%s); every feed is compared afresh", record, exc)
        return {}
    return data if isinstance(data, dict) else {}


def write_feeds(
    feeds: dict[str, Feed], out: Path, progress: Progress | None = None, *, record: Path | None = None
) -> list[str]:
    """Write each feed atomically (temp file, then rename); files with the same bytes are left untouched.

    With `record` (a file in the state folder), what was written is noted there, digest, size and
    modification time: a feed whose digest is unchanged and whose file still has that size and time is
    left alone without reading it. Without it, or if the file was touched since, the bytes are compared.
    Returns the relative paths written. Old files of removed schools, teams or meetings are kept:
    a subscriber then sees the last state rather than an error.
    """
    written = []
    progress = progress or NoProgress()
    progress.start(len(feeds))
    known = _record_of(record)
    noted: dict[str, list[Any]] = {}
    made: set[Path] = set()
    for rel, feed in sorted(feeds.items()):
        progress.advance()
        target = out / rel
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        except NotADirectoryError:
            st = None
        if st is not None:
            seen = [feed.digest, st.st_size, st.st_mtime_ns]
            if known.get(rel) == seen:
                noted[rel] = seen
                continue
            if st.st_size == feed.size and target.read_bytes() == feed.data:
                noted[rel] = seen
                continue
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            try:
                _write_chunks(fd, feed.chunks)
                # No fsync: the rename keeps readers from a half file, and after a crash the record's
                # size and time no longer match the file, so the next build writes it again.
                os.fchmod(fd, 0o644)  # a static web server must be able to read it
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        st = os.stat(target)
        noted[rel] = [feed.digest, st.st_size, st.st_mtime_ns]
        written.append(rel)
    progress.finish()
    if record is not None and noted != known:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(record, json.dumps(noted, separators=(",", ":")).encode(), mode=0o600)
        except OSError as exc:
            log.warning("record of written feeds %s not kept: %s", record, exc)
    return written


def write_record(state: Path, out: Path) -> Path:
    """Where `write_feeds` notes what it wrote into `out`: in the state folder, one file per output folder
    (the paths of the URL layout hold the tokens, so this never goes beside the feeds)."""
    tag = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    return state / "feed-written" / f"{tag}.json"


def url_layout(feeds: dict[str, Feed], secret: str) -> dict[str, Feed]:
    """The feeds by the paths of their URLs, for a static server (nginx, a CDN, object storage): public
    ones where they are, each school's and team's under its token (schools/<id>/<token>.ics). A feed
    with neither (a meeting for some schools only) is not laid out: no URL reaches it."""
    from .tokens import PRIVATE_KINDS, private_feed_path

    laid: dict[str, Feed] = {}
    for rel, feed in feeds.items():
        if feed.public:
            laid[rel] = feed
        elif feed.kind in PRIVATE_KINDS and feed.id is not None:
            laid[private_feed_path(secret, feed.kind, feed.id).lstrip("/")] = feed
    return laid


_TOKEN_NAME = re.compile(r"[A-Za-z0-9_-]{32}\.ics")


def prune_revoked(laid: dict[str, Feed], out: Path) -> list[str]:
    """Remove token files of the URL layout that are no longer current (after `feeds rotate-secret`, or a
    school removed): a static server would otherwise keep serving revoked URLs. Only files named as
    tokens inside schools/<id>/ and teams/<id>/ are touched. Returns the relative paths removed."""
    removed = []
    for kind in ("schools", "teams"):
        for path in sorted((out / kind).glob("*/*.ics")):
            rel = path.relative_to(out).as_posix()
            if _TOKEN_NAME.fullmatch(path.name) and rel not in laid:
                path.unlink()
                removed.append(rel)
    return removed
