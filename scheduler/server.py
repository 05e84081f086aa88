"""The feed server: feeds and the index page from memory, with conditional GET and gzip."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import logging
import traceback
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .errors import TemplateProblem
from .feeds import Feed, current_feeds
from .i18n import format_day, format_month, format_span
from .messages import meeting_when, when_text
from .model import DateRange, KeyEvent, MeetingStatus, MonthOnly, OnDate, Project, Recurrence
from .rsvp.pages import AnswerDesk, add_rsvp_routes
from .templating import make_environment
from .tokens import feed_secret, private_feed_path, public_feed_url, verify_token, webcal_url

if TYPE_CHECKING:
    from .clock import Clock
    from .feedcache import ItemCache
    from .store import StateStore

__all__ = [
    "FeedServer",
    "Published",
    "ServedDocument",
    "make_app",
    "publish",
    "render_index",
    "served_documents",
]

log = logging.getLogger(__name__)
CALENDAR_TYPE = "text/calendar; charset=utf-8"
# A request's head (line and headers) must be in within this; a client that trickles it is cut off.
HEAD_TIMEOUT = 10.0
KEEPALIVE_TIMEOUT = 15.0
_NOT_FOUND = b"Not found\n"


BODY_CACHE_BYTES = 64 * 1024 * 1024  # feed bodies (plain and gzip) kept ready between requests


class _Answer:
    """What a feed's responses need, made once: its headers, the ETags it matches, its bodies on demand."""

    __slots__ = ("_gz", "body", "etag", "etags", "feed", "headers", "headers_gz", "last_modified", "modified")

    def __init__(self, feed: Feed):
        self.feed = feed
        tag = feed.etag
        self.etag = f'"{tag}"'
        self.etags = {self.etag, f'"{tag}-gz"'}
        self.modified = feed.last_modified
        self.last_modified = format_datetime(feed.last_modified.astimezone(UTC), usegmt=True)
        common = {
            "Last-Modified": self.last_modified,
            "Cache-Control": "no-cache",
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        self.headers = {**common, "ETag": self.etag}
        self.headers_gz = {**common, "ETag": f'"{tag}-gz"'}
        self.body: bytes | None = None
        self._gz: bytes | None = None

    def bodies(self, gz: bool) -> bytes:
        if self.body is None:
            self.body = self.feed.data
        if not gz:
            return self.body
        if self._gz is None:
            self._gz = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gz

    @property
    def weight(self) -> int:
        return len(self.body or b"") + len(self._gz or b"") + 1024


class _Answers:
    """Answers by feed path, the recently asked ones kept within a byte budget (least recently used
    go first): memory stays bounded however many schools there are, and popular feeds stay ready."""

    def __init__(self, budget: int = BODY_CACHE_BYTES):
        self.budget = budget
        self._kept: OrderedDict[str, _Answer] = OrderedDict()
        self._weight = 0

    def get(self, feed: Feed) -> _Answer:
        answer = self._kept.get(feed.path)
        if answer is not None and answer.feed is feed:
            self._kept.move_to_end(feed.path)
            return answer
        if answer is not None:
            self._weight -= answer.weight
        answer = _Answer(feed)
        self._kept[feed.path] = answer
        self._weight += answer.weight
        return answer

    def weigh(self, answer: _Answer, before: int) -> None:
        """Account for bodies made since `before` was its weight, and trim the oldest past the budget."""
        self._weight += answer.weight - before
        while self._weight > self.budget and len(self._kept) > 1:
            _, old = self._kept.popitem(last=False)
            self._weight -= old.weight


@dataclass(frozen=True)
class Published:
    """One consistent build: what the server answers with until the next one."""

    project: Project
    feeds: dict[str, Feed]
    secret: str
    index: bytes
    built: datetime
    documents: dict[tuple[str, str], ServedDocument] = field(default_factory=dict)  # (meeting, file name)
    answers: _Answers = field(default_factory=_Answers, compare=False, repr=False)

    @cached_property
    def index_tag(self) -> str:
        return hashlib.sha256(self.index).hexdigest()[:32]


@dataclass(frozen=True)
class ServedDocument:
    """A meeting's document as `serve` hands it out at /documents/<meeting>[/<token>]/<name>."""

    path: Path
    root: Path  # the configuration folder it must stay inside
    content_type: str
    public: bool


def served_documents(project: Project, directory: Path, secret: str) -> dict[tuple[str, str], ServedDocument]:
    """Every document of every meeting that exists; a missing one is logged (validate names it)."""
    from .documents import DocumentError, content_type, documents_of, is_public, resolve

    root = directory.resolve()
    out: dict[tuple[str, str], ServedDocument] = {}
    for meeting in project.meetings:
        for _, doc in documents_of(meeting):
            try:
                path = resolve(directory, doc)
            except DocumentError as exc:
                log.error("meeting %s: document not served: %s", meeting.id, exc)
                continue
            name = Path(doc.file).name
            out.setdefault(
                (meeting.id, name), ServedDocument(path, root, content_type(name), is_public(meeting))
            )
    return out


# -- the index page ----------------------------------------------------------------------------------------


def _school_year_months(project: Project) -> list[date]:
    start = project.settings.school_year.start
    return [date(start + (m < 9), m, 1) for m in (*range(9, 13), *range(1, 9))]


def _event_rows(project: Project, event: KeyEvent, language: str) -> list[tuple[date, str, str]]:
    """(month, when, title) for each place the event shows in the year's table."""
    when = event.when
    zone = project.zone(event)
    if isinstance(when, OnDate):
        return [(when.date, format_day(when.date, language), event.title)]
    if isinstance(when, DateRange):
        if isinstance(when.start, datetime) and isinstance(when.end, datetime):
            start = when.start.replace(tzinfo=zone) if when.start.tzinfo is None else when.start
            end = when.end.replace(tzinfo=zone) if when.end.tzinfo is None else when.end
            return [(start.date(), format_span(start, end, language, zone), event.title)]
        first, last = when.start, when.end
        assert isinstance(first, date) and isinstance(last, date)
        label = (
            format_day(first, language)
            if first == last
            else (f"{format_day(first, language)} – {format_day(last, language)}")
        )
        return [(first, label, event.title)]
    if isinstance(when, MonthOnly):
        tbd = "дата уточняется" if language == "ru" else "date to be fixed"
        return [(when.first_day, f"{when_text(project, event, language)} ({tbd})", event.title)]
    assert isinstance(when, Recurrence)
    rows = []
    for day in when.occurrences():
        if when.time is not None:
            start = datetime.combine(day, when.time, tzinfo=zone)
            end = datetime.combine(day, when.end_time, tzinfo=zone) if when.end_time else None
            rows.append((day, format_span(start, end, language, zone), event.title))
        else:
            rows.append((day, format_day(day, language), event.title))
    return rows


def _public_documents(project: Project, meeting: Any) -> list[dict[str, str]]:
    from .documents import document_url, documents_of

    return [
        {"title": doc.title or Path(doc.file).name, "url": document_url(project, None, meeting, doc)}
        for _, doc in documents_of(meeting)
    ]


def index_context(project: Project, language: str) -> dict[str, Any]:
    months = _school_year_months(project)
    table: dict[tuple[int, int], list[dict[str, Any]]] = {(m.year, m.month): [] for m in months}
    entries: list[tuple[date, str, dict[str, Any]]] = []
    # The page is public: it shows what is addressed to everyone, as the public feeds do.
    for meeting in (m for m in project.meetings if m.audience.all):
        start = project.meeting_start(meeting)
        entries.append(
            (
                start.date(),
                start.isoformat(),
                {
                    "when": meeting_when(project, meeting, language),
                    "title": meeting.title,
                    "kind": "meeting",
                    "anchor": meeting.id,
                    "cancelled": meeting.status is MeetingStatus.cancelled,
                    "place": meeting.location,
                    "documents": _public_documents(project, meeting),
                },
            )
        )
    for event in (e for e in project.all_events() if e.audience.all):
        for day, label, title in _event_rows(project, event, language):
            entries.append(
                (
                    day,
                    day.isoformat(),
                    {
                        "when": label,
                        "title": title,
                        "kind": "event",
                        "anchor": f"event-{event.id}",
                        "cancelled": event.status == "cancelled",
                        "place": event.place.one_line() if event.place else "",
                    },
                )
            )
    anchors: set[str] = set()
    for day, _, entry in sorted(entries, key=lambda e: (e[0], e[1], e[2]["title"])):
        if entry["anchor"] in anchors:  # a recurring event links from its first occurrence only
            entry = {**entry, "anchor": None}
        anchors.add(entry["anchor"])
        key = (day.year, day.month)
        if key in table:
            table[key].append(entry)
    return {
        "project": project,
        "language": language,
        "months": [{"label": format_month(m, language), "entries": table[(m.year, m.month)]} for m in months],
        "feeds": [],
    }


def render_index(project: Project, feeds: dict[str, Feed], env: jinja2.Environment) -> bytes:
    """The index page in the project's language: the year's cyclogram and the public subscribe links."""
    language = project.settings.language
    ctx = index_context(project, language)
    links = []
    for path, feed in feeds.items():
        if feed.public:
            url = public_feed_url(project, path)
            links.append({"name": feed.name, "kind": feed.kind, "url": url, "webcal": webcal_url(url)})
    ctx["feeds"] = links
    try:
        return env.get_template("web/index.html").render(**ctx).encode("utf-8")
    except TemplateProblem:
        raise
    except jinja2.TemplateError as exc:  # the sandbox's refusal, a missing name: the organiser's to fix
        line = next(
            (
                f.lineno
                for f in reversed(traceback.extract_tb(exc.__traceback__))
                if f.filename.endswith(".html")
            ),
            None,
        )
        raise TemplateProblem(f"web/index.html{f':{line}' if line else ''}: {exc}") from None


# -- building ----------------------------------------------------------------------------------------------


def publish(
    project: Project,
    store: StateStore,
    now: datetime,
    *,
    env: jinja2.Environment | None = None,
    directory: Path | None = None,
    cache: ItemCache | None = None,
) -> Published:
    """Build everything the server serves, recording sequences in the store.

    `directory` is the configuration folder: the meetings' documents are served from it. `cache` keeps
    the serialised items from one build to the next, so a rebuild costs what changed.
    """
    env = env or make_environment(None)
    feeds = current_feeds(store, project, now, env=env, cache=cache)
    secret = feed_secret(store)
    docs = served_documents(project, directory, secret) if directory is not None else {}
    return Published(project, feeds, secret, render_index(project, feeds, env), now, docs)


# -- HTTP --------------------------------------------------------------------------------------------------


def _wants_gzip(request: web.Request) -> bool:
    """gzip unless the client says q=0 for it; a q-value that is not a number counts as a yes (RFC 9110
    asks for a number, but a client's typo must not cost it the page)."""
    header = request.headers.get("Accept-Encoding", "")
    known = _GZIP_ANSWERS.get(header)
    if known is None:
        known = _accepts_gzip(header)
        if len(_GZIP_ANSWERS) < 256:  # a client sends the same header every time: remember a few
            _GZIP_ANSWERS[header] = known
    return known


_GZIP_ANSWERS: dict[str, bool] = {}


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, *params = part.split(";")
        if name.strip().lower() not in ("gzip", "x-gzip"):
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value.strip()) > 0
                except ValueError:
                    return True
        return True
    return False


def _not_modified(request: web.Request, etags: set[str], modified: datetime) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or bool(tags & etags)
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        # Last-Modified went out in whole seconds: compare at that precision, or nothing is ever unchanged.
        return modified.replace(microsecond=0) <= since
    return False


def _not_found() -> web.Response:
    # One answer for an unknown path, a private feed without a token and a wrong token alike.
    return web.Response(status=404, body=_NOT_FOUND, content_type="text/plain", charset="utf-8")


def _serve_bytes(
    request: web.Request, data: bytes, gz: bytes | None, content_type: str, tag: str, modified: datetime
) -> web.Response:
    etags = {f'"{tag}"', f'"{tag}-gz"'}
    headers = {
        "Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True),
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    use_gzip = gz is not None and _wants_gzip(request)
    headers["ETag"] = f'"{tag}-gz"' if use_gzip else f'"{tag}"'
    if _not_modified(request, etags, modified):
        return web.Response(status=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    resp = web.Response(body=gz if use_gzip else data, headers=headers)
    resp.headers["Content-Type"] = content_type
    return resp


def _serve_feed(request: web.Request, pub: Published, feed: Feed) -> web.Response:
    """A feed's answer from its prepared headers: a conditional request that matches costs no body."""
    answer = pub.answers.get(feed)
    headers = request.headers
    use_gzip = _wants_gzip(request)
    inm = headers.get("If-None-Match")
    # The common case first: a client repeating the one ETag it was given.
    if inm in answer.etags or _not_modified(request, answer.etags, answer.modified):
        return web.Response(status=304, headers=answer.headers_gz if use_gzip else answer.headers)
    before = answer.weight
    body = answer.bodies(use_gzip)
    pub.answers.weigh(answer, before)
    if use_gzip:
        resp = web.Response(body=body, headers={**answer.headers_gz, "Content-Encoding": "gzip"})
    else:
        resp = web.Response(body=body, headers=answer.headers)
    resp.headers["Content-Type"] = CALENDAR_TYPE
    return resp


def make_app(
    source: Callable[[], Published | None],
    health: Callable[[], str | None] | None = None,
    organiser: Callable[[web.Request, Published], web.Response | None] | None = None,
    answers: AnswerDesk | None = None,
) -> web.Application:
    """The web application; `source` returns the current build (None while none has succeeded), `health`
    what is wrong with the service (None when nothing is).

    `organiser` answers the organiser's private paths (see organiser.py), or None for a wrong token.
    With `answers`, it also serves the answer pages of the invitations' links (/rsvp/...).
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/healthz":
            problem = "starting" if source() is None else (health() if health is not None else None)
            if problem:
                return web.Response(status=503, text=f"{problem}\n")
            return web.Response(status=200, text="ok\n")
        pub = source()
        if pub is None:
            return web.Response(status=503, text="starting\n")
        if path in ("/", "/index.html"):
            return _serve_bytes(
                request, pub.index, None, "text/html; charset=utf-8", pub.index_tag, pub.built
            )
        if path.startswith("/documents/"):
            return _document(pub, path)
        if path.startswith("/organiser/"):
            answer = organiser(request, pub) if organiser is not None else None
            return answer if answer is not None else _not_found()
        feed = _resolve(pub, path.lstrip("/"))
        if feed is None:
            return _not_found()
        return _serve_feed(request, pub, feed)

    app = web.Application()
    if answers is not None:
        add_rsvp_routes(app, source, answers)  # before the catch-all: routes match in order
    app.router.add_get("/{tail:.*}", handle, allow_head=True)
    return app


def _feeds_first(
    app_handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
    source: Callable[[], Published | None],
) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """Feed requests answered before the application's router: they are nearly all the traffic (every
    client polls every feed hourly), and the router would try every page's route first. Anything that is
    not a current feed goes to the application, which answers it as before (a 404 included)."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        pub = source()
        if pub is not None and request.method in ("GET", "HEAD") and not request.headers.get("Expect"):
            path = request.path
            if path.endswith(".ics") and not path.startswith("/organiser/"):
                feed = _resolve(pub, path.lstrip("/"))
                if feed is not None:
                    return _serve_feed(request, pub, feed)  # type: ignore[arg-type]
        return await app_handler(request)

    return handle


def _document(pub: Published, path: str) -> web.StreamResponse:
    """/documents/<meeting>/<name> of a public meeting, /documents/<meeting>/<token>/<name> of another."""
    from urllib.parse import quote

    from .tokens import document_token

    parts = path.split("/")[2:]
    if len(parts) == 2:
        doc = pub.documents.get((parts[0], parts[1]))
        if doc is None or not doc.public:
            return _not_found()
    elif len(parts) == 3:
        doc = pub.documents.get((parts[0], parts[2]))
        if doc is None or doc.public:
            return _not_found()
        expected = document_token(pub.secret, parts[0]).encode()
        if not hmac.compare_digest(expected, parts[1].encode("utf-8", "replace")):
            return _not_found()
    else:
        return _not_found()
    real = doc.path.resolve()
    # The file may have been replaced since the build (by a link out of the folder, say): check again.
    if not real.is_relative_to(doc.root) or not real.is_file():
        log.error("document %s is no longer a file inside %s; not served", doc.path, doc.root)
        return _not_found()
    name = quote(doc.path.name, safe="")
    inline = doc.content_type in ("application/pdf", "text/plain") or doc.content_type.startswith("image/")
    headers = {
        "Content-Type": doc.content_type + ("; charset=utf-8" if doc.content_type == "text/plain" else ""),
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{name}",
        "X-Content-Type-Options": "nosniff",
        # An organiser's file is not our page: it may not run scripts or read anything on this origin.
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "no-cache" if doc.public else "private, no-cache",
        "Referrer-Policy": "no-referrer",
    }
    return web.FileResponse(real, headers=headers)


def _resolve(pub: Published, rel: str) -> Feed | None:
    feed = pub.feeds.get(rel)
    if feed is not None:
        return feed if feed.public else None  # private feeds only behind their token
    parts = rel.split("/")
    if len(parts) == 3 and parts[0] in ("schools", "teams") and parts[2].endswith(".ics"):
        kind, ident, token = parts[0][:-1], parts[1], parts[2][: -len(".ics")]
        feed = pub.feeds.get(f"{parts[0]}/{ident}.ics")
        if feed is not None and verify_token(pub.secret, kind, ident, token):
            return feed
    return None


class FeedServer:
    """The HTTP server a long-running service embeds in its own loop; `update` swaps in a new model."""

    def __init__(
        self, store: StateStore, clock: Clock, config_dir: Path | None = None, state: Path | None = None
    ):
        from .feedcache import CACHE_FILE, ItemCache

        # Kept for the life of the server: a rebuild after an edit serialises only the items it changed.
        self._cache = ItemCache(state / CACHE_FILE if state is not None else None)
        self._store = store
        self._clock = clock
        self._env = make_environment(config_dir)
        self._config_dir = config_dir
        self._published: Published | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.head_timeout = HEAD_TIMEOUT
        # What the service reports as wrong (a stopped delivery); /healthz answers 503 with it.
        self.health: Callable[[], str | None] = lambda: None
        self._config_dir = config_dir
        self.app = make_app(
            lambda: self._published,
            lambda: self.health(),
            self._organiser,
            AnswerDesk(store, clock, self._env),
        )

    def _organiser(self, request: web.Request, pub: Published) -> web.Response | None:
        """The organiser's page (rendered at each request: the outbox moves) or their all-items feed."""
        from .feeds import ORGANISER_FEED
        from .organiser import organiser_context, render_organiser, resolve_organiser
        from .rsvp.attendance import answers_overview

        what = resolve_organiser(pub.secret, request.path)
        if what == "feed":
            return _serve_feed(request, pub, pub.feeds[ORGANISER_FEED])
        if what != "page":
            return None
        context = organiser_context(pub.project, self._store, self._clock.now(), self._config_dir)
        context["answers"] = answers_overview(pub.project, self._store, self._clock.now(), pub.secret)
        body = render_organiser(self._env, context)
        return web.Response(
            body=body,
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
            content_type="text/html",
            charset="utf-8",
        )

    @property
    def published(self) -> Published | None:
        return self._published

    def update(self, project: Project) -> Published:
        """Rebuild from a new model; requests see the old build or the new one, never a mix."""
        self._published = publish(
            project,
            self._store,
            self._clock.now(),
            env=self._env,
            directory=self._config_dir,
            cache=self._cache,
        )
        return self._published

    def private_path(self, kind: str, ident: str) -> str:
        if self._published is None:
            raise RuntimeError("no feeds built yet")
        return private_feed_path(self._published.secret, kind, ident)

    async def start(self, host: str = "127.0.0.1", port: int = 8080) -> int:
        """Listen; returns the port actually bound (useful with port 0)."""
        logging.getLogger("aiohttp.server").addFilter(_BAD_REQUESTS)  # once: filters are a set
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT)
        await self._runner.setup()
        handlers = self._runner.server
        assert handlers is not None
        handlers.request_handler = _feeds_first(handlers.request_handler, lambda: self._published)
        seconds = self.head_timeout
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: _HeadDeadline(handlers(), seconds), host, port, reuse_address=True
        )
        return int(self._listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def serve_forever(self) -> None:
        await asyncio.Event().wait()


class _BadRequestsInOneLine(logging.Filter):
    """aiohttp logs each malformed request at ERROR with a traceback; a client's garbage is not our error.
    One WARNING line says what was refused, so ERROR stays for what needs a person."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            first = str(exc.message).strip().splitlines()[0] if exc.message else type(exc).__name__
            record.msg, record.args, record.exc_info, record.exc_text = (
                f"refused a malformed request ({exc.code}): {first[:200]}",
                None,
                None,
                None,
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_BAD_REQUESTS = _BadRequestsInOneLine()


class _HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol: closes a connection whose request head is not complete in time.

    aiohttp has no deadline for the head itself (its keep-alive timer stops at the first byte), so a
    client sending a header byte now and then would hold a connection for ever.
    """

    def __init__(self, inner: asyncio.Protocol, seconds: float):
        self.inner = inner
        self.seconds = seconds
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""

    def _arm(self, tail: bytes = b"") -> None:
        self.tail = tail[-3:]
        self.timer = asyncio.get_running_loop().call_later(self.seconds, self._expire)

    def _expire(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.warning("closing a connection whose request head took over %g s", self.seconds)
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        seen = self.tail + data
        end = seen.rfind(b"\r\n\r\n")
        if end >= 0:
            # A head is complete; bytes after it begin the next (pipelined) request, with a new deadline.
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            rest = seen[end + 4 :]
            if rest:
                self._arm(rest)
            else:
                self.tail = b""
        elif self.timer is None:
            self._arm(seen)
        else:
            self.tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
