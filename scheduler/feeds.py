"""Subscription feeds from the model: the project's, each school's, each team's and each meeting's."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from .calendar import CalendarItem, SerialCache, calendar_items, event_states, feed_bytes
from .model import Project
from .progress import NoProgress, Progress

if TYPE_CHECKING:
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
]

# A cancelled item stays in the feeds this long after its end, so clients that already show it learn of
# the cancellation (a vanished event is silently kept by some clients), then it drops out.
CANCELLED_KEPT = timedelta(days=30)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    """One built .ics file and what a server needs to serve it."""

    path: str  # relative: project.ics, schools/<id>.ics, teams/<id>.ics, meetings/<id>.ics
    kind: str  # project | school | team | meeting | organiser
    id: str | None
    name: str
    public: bool
    data: bytes
    last_modified: datetime  # the newest LAST-MODIFIED in it: stable while the content is

    @cached_property  # asked on every request, conditional ones included: hash the bytes once
    def etag(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:32]


def _ends(project: Project, item: CalendarItem) -> date:
    comp = item.component
    end = comp.get("DTEND") or comp.get("DTSTART")
    value = end.dt
    if "RRULE" in comp:
        until = comp["RRULE"].get("UNTIL")
        if until:
            value = until[0] if isinstance(until, list) else until
    return value.date() if isinstance(value, datetime) else value


def _visible(project: Project, item: CalendarItem, now: datetime) -> bool:
    if str(item.component.get("STATUS", "")) != "CANCELLED":
        return True
    return _ends(project, item) + CANCELLED_KEPT >= now.astimezone(project.settings.tz).date()


def _feed(
    project: Project,
    path: str,
    kind: str,
    ident: str | None,
    name: str,
    public: bool,
    items: Iterable[CalendarItem],
    language: str,
    states: dict[str, EventState],
    cache: SerialCache,
) -> Feed:
    chosen = list(items)
    data = feed_bytes(
        project,
        [i.component for i in chosen],
        name=name,
        description=project.settings.name,
        language=language,
        cache=cache,
    )
    modified = max((states[i.uid].last_modified for i in chosen), default=_EPOCH).astimezone(UTC)
    return Feed(path, kind, ident, name, public, data, modified.replace(microsecond=0))


def build_feeds(
    project: Project,
    states: dict[str, EventState],
    now: datetime,
    *,
    env: jinja2.Environment | None = None,
    secret: str | None = None,
) -> dict[str, Feed]:
    """Every feed by its relative path; the same model and states give the same bytes.

    `secret` lets items link the documents of meetings that are not public (ATTACH).
    """
    by_language: dict[str, list[CalendarItem]] = {}

    def items(language: str) -> list[CalendarItem]:
        if language not in by_language:
            every = calendar_items(project, states, language, env=env, secret=secret)
            by_language[language] = [i for i in every if _visible(project, i, now)]
        return by_language[language]

    settings = project.settings
    lang = settings.language
    names = _NAMES[lang]
    out: dict[str, Feed] = {}
    cache = SerialCache()  # each item's bytes, shared by every feed that holds it

    def add(feed: Feed) -> None:
        out[feed.path] = feed

    add(
        _feed(
            project,
            "project.ics",
            "project",
            None,
            names["project"].format(title=settings.title, name=""),
            True,
            # Public: only what is addressed to everyone. An item for some teams or schools reaches
            # them through their private feeds, never through a URL anyone may hold.
            (i for i in items(lang) if i.audience.all),
            lang,
            states,
            cache,
        )
    )
    by_school: dict[str, dict[str, list[CalendarItem]]] = {}  # language -> school id -> its items

    def school_items(language: str, school_id: str) -> list[CalendarItem]:
        # One pass over the items, each handed to the schools its audience reaches (in item order),
        # instead of asking every school about every item.
        if language not in by_school:
            per: dict[str, list[CalendarItem]] = {s.id: [] for s in project.schools}
            for item in items(language):
                reached = project.schools if item.audience.all else project.audience_schools(item.audience)
                for s in reached:
                    per[s.id].append(item)
            by_school[language] = per
        return by_school[language][school_id]

    for school in project.schools:
        sl = project.language_of(school)
        add(
            _feed(
                project,
                f"schools/{school.id}.ics",
                "school",
                school.id,
                _NAMES[sl]["school"].format(title=settings.title, name=school.title),
                False,
                school_items(sl, school.id),
                sl,
                states,
                cache,
            )
        )
    for team in project.teams:
        add(
            _feed(
                project,
                f"teams/{team.id}.ics",
                "team",
                team.id,
                names["team"].format(title=settings.title, name=team.name),
                False,
                (i for i in items(lang) if project.reaches_team(i.audience, team)),
                lang,
                states,
                cache,
            )
        )
    # The organiser's own feed: every item, whoever it is for; served only behind the organiser's token.
    add(
        _feed(
            project, ORGANISER_FEED, "organiser", None,
            names["organiser"].format(title=settings.title, name=""), False, items(lang), lang, states, cache,
        )
    )  # fmt: skip
    for meeting in project.meetings:
        add(
            _feed(
                project,
                f"meetings/{meeting.id}.ics",
                "meeting",
                meeting.id,
                names["meeting"].format(title=settings.title, name=meeting.title),
                meeting.audience.all,
                (i for i in items(lang) if i.kind == "meeting" and i.item_id == meeting.id),
                lang,
                states,
                cache,
            )
        )
    return out


def current_feeds(
    store: StateStore, project: Project, now: datetime, *, env: jinja2.Environment | None = None
) -> dict[str, Feed]:
    """At the edge: record sequences in the store, then build every feed."""
    from .tokens import feed_secret

    return build_feeds(project, event_states(store, project, now), now, env=env, secret=feed_secret(store))


def write_feeds(feeds: dict[str, Feed], out: Path, progress: Progress | None = None) -> list[str]:
    """Write each feed atomically (temp file, then rename); files with the same bytes are left untouched.

    Returns the relative paths written. Old files of removed schools, teams or meetings are kept:
    a subscriber then sees the last state rather than an error.
    """
    written = []
    progress = progress or NoProgress()
    progress.start(len(feeds))
    for rel, feed in sorted(feeds.items()):
        progress.advance()
        target = out / rel
        if target.is_file() and target.read_bytes() == feed.data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(feed.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # a static web server must be able to read it
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(rel)
    progress.finish()
    return written


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
