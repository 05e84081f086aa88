"""Render one mail for one recipient: the template context, the three templates, headers and MIME layout."""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2

from . import mime
from .changes import Change
from .errors import TemplateProblem
from .i18n import format_day, format_month, format_span, zone_label
from .model import (
    ActionItem,
    DateRange,
    KeyEvent,
    Meeting,
    MonthOnly,
    OnDate,
    Project,
    Recipient,
    Recurrence,
)
from .salutation import greeting, shorten
from .templating import mail_template_names

__all__ = [
    "IMIP_METHODS",
    "HeaderInjectionError",
    "Rendered",
    "build_message",
    "check_header",
    "event_context",
    "finish_rendered",
    "mail_context",
    "meeting_context",
    "meeting_when",
    "message_id_for",
    "personal_context",
    "recipient_greeting",
    "render_templates",
    "shared_context",
]

# Kinds that carry a calendar object, and the iTIP method each one uses.
IMIP_METHODS = {"invitation": "REQUEST", "agenda": "REQUEST", "update": "REQUEST", "cancellation": "CANCEL"}


class HeaderInjectionError(mime.HeaderValueError):
    """A value bound for a mail header holds a line break or another control character (it would forge
    headers, or be cut or refused by servers)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


# --- context ----------------------------------------------------------------------------------------------


def _hhmm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value else None


_LOCAL = {"ru": "по местному времени", "en": "your time"}


def format_clock(moment: datetime, language: str) -> str:
    """10:00: both languages write hours the same way (24-hour, two digits)."""
    del language
    return moment.strftime("%H:%M")


def meeting_when(project: Project, meeting: Meeting, language: str, local: ZoneInfo | None = None) -> str:
    """When a meeting happens, in the reader's words: its days, or its hours in its own zone, then
    the reader's local hours where the reader lives in another zone («10:00 МСК (09:00 по местному
    времени)»)."""
    if meeting.all_day:
        first, last = meeting.start, meeting.end
        if first == last:
            return format_day(first, language)
        return f"{format_day(first, language)} – {format_day(last, language)}"
    zone = project.zone(meeting)
    return span_with_local(
        project.meeting_start(meeting), project.meeting_end(meeting), language, zone, local
    )


def span_with_local(
    start: datetime, end: datetime | None, language: str, zone: ZoneInfo, local: ZoneInfo | None = None
) -> str:
    """The day and hours in `zone` with its label; then the hours in `local`, where they differ."""
    start = start.astimezone(zone)
    end = (end or start).astimezone(zone)
    same_day = end.date() == start.date()
    text = f"{format_day(start, language)}, {format_clock(start, language)}"
    if end != start:
        text += (
            f"–{format_clock(end, language)}"
            if same_day
            else (f" – {format_day(end, language)}, {format_clock(end, language)}")
        )
    label = zone_label(start, language)
    if local is None or local.key == zone.key or start.astimezone(local).utcoffset() == start.utcoffset():
        return f"{text} ({label})" if label else text
    there, there_end = start.astimezone(local), end.astimezone(local)
    hours = format_clock(there, language)
    if there_end != there:
        hours += (
            f"–{format_clock(there_end, language)}"
            if there_end.date() == there.date()
            else (f" – {format_day(there_end, language)}, {format_clock(there_end, language)}")
        )
    if there.date() != start.date():
        hours = f"{format_day(there, language)}, {hours}"
    return f"{text} {label} ({hours} {_LOCAL.get(language, _LOCAL['en'])})"


def meeting_context(
    project: Project, meeting: Meeting, local: ZoneInfo | None = None, language: str | None = None
) -> dict[str, Any]:
    """A meeting as plain values for templates; datetimes are aware, in the meeting's zone.

    `local` is the reader's zone when it differs from the meeting's: `when` then gives both times.
    """
    return {
        "id": meeting.id,
        "title": meeting.title,
        "short_title": meeting.short_title or shorten(meeting.title),
        "goal": meeting.goal,
        "tasks": list(meeting.tasks),
        "planned_results": list(meeting.planned_results),
        "products": list(meeting.products),
        "agenda": [
            {
                "title": item.title,
                "start": _hhmm(item.start),
                "end": _hhmm(item.end),
                "speakers": [{"name": s.name, "role": s.role} for s in item.speakers],
            }
            for item in meeting.agenda
        ],
        "start": project.meeting_start(meeting),
        "end": project.meeting_end(meeting),
        "all_day": meeting.all_day,
        "when": meeting_when(project, meeting, language or project.settings.language, local),
        "timezone": str(project.zone(meeting)),
        "place": {
            "name": meeting.place.name,
            "address": meeting.place.address,
            "text": meeting.place.one_line(),
        }
        if meeting.place
        else None,
        "location": meeting.location,
        "online_url": str(meeting.online_url) if meeting.online_url else None,
        "status": meeting.status.value,
        "cancelled": meeting.status.value == "cancelled",
    }


def when_text(
    project: Project,
    event: KeyEvent,
    language: str,
    occurrence: datetime | None = None,
    local: ZoneInfo | None = None,
) -> str:
    """When a key event happens, in the reader's words (a day, a span, a month, or a series); hours also
    in the reader's `local` zone where it differs."""
    zone = project.zone(event)
    w = event.when
    if isinstance(w, OnDate):
        return format_day(w.date, language)
    if isinstance(w, DateRange):
        if isinstance(w.start, datetime) and isinstance(w.end, datetime):
            start = w.start if w.start.tzinfo else w.start.replace(tzinfo=zone)
            end = w.end if w.end.tzinfo else w.end.replace(tzinfo=zone)
            return span_with_local(start, end, language, zone, local)
        if w.start == w.end:
            return format_day(w.start, language)
        return f"{format_day(w.start, language)} – {format_day(w.end, language)}"
    if isinstance(w, MonthOnly):
        if w.end_month and w.end_month != w.month:
            return f"{format_month(w.first_day, language)} – {format_month(w.last_day, language)}"
        return format_month(w.first_day, language)
    assert isinstance(w, Recurrence)
    if occurrence is not None:
        if w.time is None:
            return format_day(occurrence, language)
        end = datetime.combine(occurrence.date(), w.end_time, tzinfo=zone) if w.end_time else None
        return span_with_local(occurrence, end, language, zone, local)
    return f"{format_day(event.first_day, language)} – {format_day(event.last_day, language)}"


def event_context(
    project: Project,
    event: KeyEvent,
    language: str,
    occurrence: datetime | None = None,
    local: ZoneInfo | None = None,
) -> dict[str, Any]:
    return {
        "id": event.id,
        "title": event.title,
        "short_title": shorten(event.title),
        "description": event.description,
        "when": when_text(project, event, language, occurrence, local),
        "place": event.place.one_line() if event.place else None,
        "responsible": project.responsible_text(event.responsible) or None,
        "product": event.product,
    }


def _action_context(project: Project, action: ActionItem) -> dict[str, Any]:
    return {
        "id": action.id,
        "title": action.title,
        "short_title": shorten(action.title),
        "responsible": project.responsible_text(action.responsible) or None,
        "due": action.due,
        "product": action.product,
    }


def _minutes_context(project: Project, meeting: Meeting, language: str) -> dict[str, Any] | None:
    minutes = meeting.minutes
    if minutes is None:
        return None
    return {
        "final": minutes.final,
        "decisions": list(minutes.decisions),
        "approved_events": [event_context(project, e, language) for e in minutes.approved_events],
        "products": list(minutes.products),
        "action_items": [_action_context(project, a) for a in minutes.action_items],
        "notes": minutes.notes,
    }


def _iso_span(start: Any, end: Any, language: str, zone: Any) -> str | None:
    """Snapshot times are ISO strings with an offset; show them in the meeting's named zone (МСК)."""
    if not start:
        return None
    s = datetime.fromisoformat(start)
    e = datetime.fromisoformat(end) if end else None
    midnight = datetime.min.time()
    if e is not None and s.time() == e.time() == midnight and e > s:
        # An all-day meeting (midnight to midnight): its days, without hours.
        last = (e - timedelta(days=1)).date()
        if last == s.date():
            return format_day(s, language)
        return f"{format_day(s, language)} – {format_day(last, language)}"
    return format_span(s, e, language, zone if isinstance(zone, ZoneInfo) else None)


def changes_context(
    changes: list[Change], language: str, current: tuple[datetime, datetime] | None = None
) -> list[dict[str, Any]]:
    """Changes in the reader's words: start and end make one "time" line; the agenda says what came and went.

    `current` is the meeting's (start, end) now: the half of the pair that did not change is taken from it.
    """
    by_field = {c.field: c for c in changes}
    now_start = current[0].isoformat() if current else None
    now_end = current[1].isoformat() if current else None
    zone = current[0].tzinfo if current else None
    out: list[dict[str, Any]] = []
    for c in changes:
        if c.field in ("start", "end"):
            if any(x["field"] == "time" for x in out):
                continue
            start, end = by_field.get("start"), by_field.get("end")
            out.append(
                {
                    "field": "time",
                    "old": _iso_span(
                        start.old if start else now_start, end.old if end else now_end, language, zone
                    ),
                    "new": _iso_span(
                        start.new if start else now_start, end.new if end else now_end, language, zone
                    ),
                    "added": [],
                    "removed": [],
                }
            )
        elif c.field == "agenda":
            old_titles = [i.get("title") for i in c.old or []]
            new_titles = [i.get("title") for i in c.new or []]
            out.append(
                {
                    "field": "agenda",
                    "old": None,
                    "new": None,
                    "added": [t for t in new_titles if t not in old_titles],
                    "removed": [t for t in old_titles if t not in new_titles],
                }
            )
        else:
            out.append({"field": c.field, "old": c.old, "new": c.new, "added": [], "removed": []})
    return out


def recipient_greeting(recipient: Recipient) -> str:
    """The letter's first line for this reader, from the contact's name parts when configured."""
    person = recipient.person
    if person is None:
        return greeting(recipient.name, recipient.language)
    return greeting(
        person.name,
        recipient.language,
        first_name=person.first_name,
        patronymic=person.patronymic,
        last_name=person.last_name,
        gender=person.gender,
        title=person.title,
        salutation=person.salutation,
    )


def personal_context(
    project: Project,
    recipient: Recipient,
    *,
    feed_url: str | None = None,
    feed_urls: Mapping[str, str] | None = None,
    rsvp: dict[str, str] | None = None,
) -> tuple[dict[str, Any], ZoneInfo | None]:
    """The part of `mail_context` that is the recipient's own (splice.PERSONAL), and the reader's zone
    where it is not the project's (mail then gives both times)."""
    schools_ctx = []
    local: ZoneInfo | None = None
    for i, school_id in enumerate(recipient.schools or (recipient.school,)):
        url = feed_urls.get(school_id) if feed_urls is not None else (feed_url if i == 0 else None)
        try:
            school = project.school(school_id)
            if i == 0 and school.timezone:
                local = ZoneInfo(school.timezone)
            schools_ctx.append({"id": school.id, "name": school.name, "title": school.title, "feed_url": url})
        except KeyError:
            schools_ctx.append({"id": school_id, "name": school_id, "title": school_id, "feed_url": url})
    school_ctx = {k: v for k, v in schools_ctx[0].items() if k != "feed_url"}
    if feed_urls is not None:
        feed_url = schools_ctx[0]["feed_url"]
    personal = {
        "recipient": {
            "name": recipient.name,
            "email": recipient.email,
            "greeting": recipient_greeting(recipient),
        },
        "school": school_ctx,
        "schools": schools_ctx,
        "feed_url": feed_url,
        "rsvp": rsvp,
    }
    return personal, local


def shared_context(
    project: Project,
    kind: str,
    language: str,
    local: ZoneInfo | None,
    *,
    meeting: Meeting | None = None,
    action: ActionItem | None = None,
    event: KeyEvent | None = None,
    occurrence: datetime | None = None,
    changes: list[Change] | None = None,
    documents: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The part of `mail_context` that every reader of one language in one zone shares."""
    settings = project.settings
    return {
        "kind": kind,
        "lang": language,
        "project": {"name": settings.name, "title": settings.title, "base_url": str(settings.base_url)},
        "organizer": {"name": settings.organizer.name, "email": settings.organizer.email},
        "meeting": meeting_context(project, meeting, local, language) if meeting else None,
        "minutes": _minutes_context(project, meeting, language) if meeting else None,
        "changes": changes_context(
            changes or [],
            language,
            (project.meeting_start(meeting), project.meeting_end(meeting)) if meeting else None,
        ),
        "action": _action_context(project, action) if action else None,
        "event": event_context(project, event, language, occurrence, local) if event else None,
        "documents": list(documents),  # the meeting's files: attached, or linked (see documents.py)
    }


def mail_context(
    project: Project,
    kind: str,
    recipient: Recipient,
    *,
    meeting: Meeting | None = None,
    action: ActionItem | None = None,
    event: KeyEvent | None = None,
    occurrence: datetime | None = None,
    changes: list[Change] | None = None,
    feed_url: str | None = None,
    feed_urls: Mapping[str, str] | None = None,
    rsvp: dict[str, str] | None = None,
    documents: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Everything a mail template may use. Every key is always present (StrictUndefined finds typos).

    `schools` lists every school the recipient answers for in this mailing, each with its private feed URL
    (from `feed_urls`, by school id); `school` and `feed_url` are the first of them, for templates that
    speak of one school. `rsvp` holds the person's answer links by answer word (yes, no, maybe) and `page`.
    """
    personal, local = personal_context(project, recipient, feed_url=feed_url, feed_urls=feed_urls, rsvp=rsvp)
    shared = shared_context(
        project, kind, recipient.language, local, meeting=meeting, action=action, event=event,
        occurrence=occurrence, changes=changes, documents=documents,
    )  # fmt: skip
    return {**shared, **personal}


# --- rendering --------------------------------------------------------------------------------------------


def _template_line(exc: BaseException) -> tuple[str | None, int | None]:
    """Jinja rewrites tracebacks so that template frames carry the template's file and line."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith((".txt", ".html")):
            return frame.filename, frame.lineno
    return None, None


def render_templates(env: jinja2.Environment, name: str, language: str, context: dict[str, Any]) -> Rendered:
    """Subject, text and HTML of one kind (or a rule's own template name) in one language."""
    out = []
    for template_name in mail_template_names(name, language):
        try:
            out.append(env.get_template(template_name).render(context))
        except jinja2.TemplateNotFound as exc:
            raise TemplateProblem(f"template {exc.name!r} does not exist") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(f"{exc.filename or template_name}:{exc.lineno}: {exc.message}") from None
        except jinja2.UndefinedError as exc:
            file, line = _template_line(exc)
            where = f"{file}:{line}" if file else template_name
            raise TemplateProblem(f"{where}: {exc.message}") from None
        except TemplateProblem:
            raise
        except jinja2.TemplateError as exc:  # e.g. the sandbox refusing an attribute: located, no traceback
            file, line = _template_line(exc)
            where = f"{file}:{line}" if file else template_name
            raise TemplateProblem(f"{where}: {exc}") from None
    return finish_rendered(out)


def finish_rendered(out: Sequence[str]) -> Rendered:
    """The rendered subject, text and HTML templates as a letter's parts (see `render_templates`)."""
    # A subject template is one line; a line break in it can only come from data, so refuse, don't mend.
    subject = check_header("Subject", out[0].strip())
    return Rendered(subject=subject, text=out[1].rstrip() + "\n", html=out[2])


# --- headers and MIME -------------------------------------------------------------------------------------


def check_header(name: str, value: str) -> str:
    """Refuse any line break in a header value: it would let data add headers of its own. Any other
    control character (NUL, U+0085, U+2028...) is refused too: it must never reach a header raw."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(
            f"refusing to send: the {name} header would contain a line break: {value!r}"
        )
    try:
        return mime.refuse_controls(name, value)
    except mime.HeaderValueError as exc:
        raise HeaderInjectionError(str(exc)) from None


def message_id_for(mailing: str, recipient: str, revision: int, domain: str) -> str:
    """The same (mailing, recipient, revision) always gets the same Message-ID; clients then drop a copy."""
    digest = hashlib.sha256(f"{mailing}\0{recipient.lower()}\0{revision}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _domain(email: str) -> str:
    domain = email.rpartition("@")[2] or "localhost"
    # Message-ID and List-Id are ASCII headers: an internationalised domain goes in as punycode.
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


@lru_cache(maxsize=64)  # one date and one zone for every message of a mailing
def _date_header(date: datetime, zone: ZoneInfo) -> bytes:
    return f"Date: {format_datetime(date.astimezone(zone))}\r\n".encode("ascii")


@lru_cache(maxsize=64)
def _host(base_url: str, organizer: str) -> str:
    return urlsplit(base_url).hostname or _domain(organizer)


def build_message(
    project: Project,
    recipient: Recipient,
    rendered: Rendered,
    *,
    kind: str,
    mailing: str,
    revision: int,
    date: datetime,
    calendar: bytes | None = None,
    method: str | None = None,
    attachments: Sequence[mime.Part] = (),
) -> bytes:
    """One message to one head (never Bcc), with headers that keep auto-replies and filters sane.

    `attachments` (mime.attachment parts: the meeting's documents) follow the text and the invitation.
    """
    settings = project.settings
    organizer = settings.organizer
    check_header("From", organizer.name)
    check_header("To", recipient.name)
    check_header("Subject", rendered.subject)
    message_id = message_id_for(mailing, recipient.email, revision, _domain(organizer.email))
    host = _host(str(settings.base_url), organizer.email)
    list_name = check_header("List-Id", settings.title)
    head = [
        # UTF-8 only for a UTF-8 mailbox (RFC 6532), which is sent with SMTPUTF8 or not at all.
        f"From: {mime.address(organizer.name, organizer.email, header_name='From')}\r\n".encode(),
        f"To: {mime.address(recipient.name, recipient.email)}\r\n".encode(),
        f"Reply-To: {settings.reply_to}\r\n".encode() if settings.reply_to else b"",
        mime.header("Subject", rendered.subject),
        _date_header(date, project.zone()),
        f"Message-ID: {message_id}\r\n".encode("ascii"),
        # RFC 3834: responders must not answer auto-generated mail; Exchange reads X-Auto-Response-Suppress,
        # older vacation programs only Precedence. List-Id gives filters a stable handle for the project's mail.
        b"Auto-Submitted: auto-generated\r\n",
        b"X-Auto-Response-Suppress: OOF, AutoReply\r\n",
        b"Precedence: bulk\r\n",
        mime.header("List-Id", list_name).removesuffix(b"\r\n")
        + f"\r\n <cyclogram.{host}>\r\n".encode("ascii"),
        f"X-Cyclogram-Mailing: {check_header('X-Cyclogram-Mailing', mailing)}\r\n".encode(),
        f"X-Cyclogram-Kind: {kind}\r\n".encode("ascii"),
        b"MIME-Version: 1.0\r\n",
    ]
    alternatives = [
        mime.part(
            'text/plain; charset="utf-8"', rendered.text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        ),
        mime.part(
            'text/html; charset="utf-8"', rendered.html.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        ),
    ]
    if calendar is None:
        body = mime.multipart("alternative", alternatives, message_id)
        if attachments:
            body = mime.multipart("mixed", [body, *attachments], message_id)
        return b"".join(head) + body.data
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported iTIP method {method!r}")
    # The iMIP layout that Google Calendar, Thunderbird and the CalConnect guide use:
    #   multipart/mixed
    #     multipart/alternative: text/plain, text/html, text/calendar; method=...  (last = preferred)
    #     application/ics; name=invite.ics (attachment)
    # Outlook only looks for iMIP data in the first child of multipart/mixed ([MS-OXCICAL] 2.2.168),
    # Gmail and Apple Mail read the text/calendar alternative, and clients that ignore alternatives
    # (some webmails, Thunderbird without Lightning) still offer the attached file for import.
    alternatives.append(mime.part(f'text/calendar; charset="utf-8"; method={method}', calendar))
    attachment = mime.part(
        'application/ics; name="invite.ics"', calendar, disposition='attachment; filename="invite.ics"'
    )
    body = mime.multipart(
        "mixed",
        [mime.multipart("alternative", alternatives, message_id), attachment, *attachments],
        message_id,
    )
    return b"".join(head) + body.data
