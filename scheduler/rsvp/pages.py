"""The answer pages of `serve`: a GET shows the meeting and one button, only the button's POST records."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from ..i18n import format_span
from ..model import Meeting, MeetingStatus, Project, Recipient
from ..store import Answer, StateStore
from .attendance import roster
from .links import (
    ANSWERS,
    PARTSTAT_OF,
    WORD_OF,
    answer_path,
    person_key,
    roster_token,
    split_token,
    verify_answer_token,
)

if TYPE_CHECKING:
    from ..clock import Clock

__all__ = ["AnswerDesk", "add_rsvp_routes"]

log = logging.getLogger("cyclogram.rsvp")

WORDS = {
    "ru": {
        "title": "ответ на приглашение",
        "for_person": "Ответ от имени:",
        "yes": "Приду",
        "no": "Не приду",
        "maybe": "Возможно",
        "confirm": "Подтвердить ответ",
        "recorded": "Ответ записан:",
        "your_answer": "Ваш ответ:",
        "no_answer": "Вы ещё не ответили.",
        "change": "Изменить ответ:",
        "answer": "Или ответьте иначе:",
        "cancelled": "Встреча отменена: ответ не нужен.",
        "ended": "Встреча уже прошла: ответ больше не принимается.",
        "link": "по ссылке",
        "imap": "из календаря",
    },
    "en": {
        "title": "your answer",
        "for_person": "Answering as:",
        "yes": "Yes",
        "no": "No",
        "maybe": "Maybe",
        "confirm": "Confirm your answer",
        "recorded": "Answer recorded:",
        "your_answer": "Your answer:",
        "no_answer": "You have not answered yet.",
        "change": "Change your answer:",
        "answer": "Or answer differently:",
        "cancelled": "The meeting is cancelled: no answer is needed.",
        "ended": "The meeting is over: answers are no longer taken.",
        "link": "by link",
        "imap": "from the calendar",
    },
}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The token is in the URL: never hand it to another site, never show the page in a frame.
    # (same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the page's own POST.)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass
class AnswerDesk:
    """What the answer pages need beside the published build: where answers go, and the time."""

    store: StateStore
    clock: Clock
    env: jinja2.Environment


@dataclass(frozen=True)
class _Visit:
    project: Project
    meeting: Meeting
    person: Recipient
    token: str
    secret: str


def _find(pub: Any, meeting_id: str, token: str) -> _Visit | None:
    """The meeting and the person a token belongs to, or None for anything wrong (all alike: a 404)."""
    if pub is None:
        return None
    project: Project = pub.project
    try:
        meeting = project.meeting(meeting_id)
    except KeyError:
        return None
    key, _ = split_token(token)
    person = next((r for r in project.recipients(meeting.audience) if person_key(r.email) == key), None)
    if person is None or not verify_answer_token(pub.secret, meeting.id, person.email, token):
        return None
    return _Visit(project, meeting, person, token, pub.secret)


def _not_found() -> web.Response:
    return web.Response(status=404, body=b"Not found\n", content_type="text/plain", charset="utf-8")


def _schools_text(project: Project, person: Recipient) -> str:
    ids = list(getattr(person, "schools", None) or [person.school])
    titles = []
    for school_id in ids:
        try:
            titles.append(project.school(school_id).title)
        except KeyError:
            titles.append(school_id)
    return ", ".join(titles)


def _closed(visit: _Visit, now: datetime, words: dict[str, str]) -> str | None:
    if visit.meeting.status is MeetingStatus.cancelled:
        return words["cancelled"]
    if visit.project.meeting_end(visit.meeting) <= now:
        return words["ended"]
    return None


def _page(
    desk: AnswerDesk, visit: _Visit, chosen: str | None, recorded: bool, status: int = 200
) -> web.Response:
    project, meeting, person = visit.project, visit.meeting, visit.person
    lang = person.language if person.language in WORDS else "ru"
    words = WORDS[lang]
    now = desk.clock.now()
    answer = next((a for a in desk.store.answers(meeting.id) if a.email == person.email.lower()), None)
    current = None
    if answer is not None:
        zone = project.zone(meeting)
        current = {
            "partstat": answer.partstat,
            "label": words[WORD_OF[answer.partstat]],
            "at": format_span(answer.at.astimezone(zone), None, lang, zone),
            "via": words.get(answer.via, answer.via),
        }

    def option(word: str) -> dict[str, str]:
        return {
            "word": word,
            "label": words[word],
            "action": answer_path(visit.secret, meeting.id, person.email, word),
        }

    current_word = WORD_OF.get(answer.partstat) if answer else None
    others = [option(w) for w in ANSWERS if w != chosen and w != current_word]
    context = {
        "lang": lang,
        "t": words,
        "project_title": project.settings.title,
        "meeting": {
            "title": meeting.title,
            "when": format_span(
                project.meeting_start(meeting), project.meeting_end(meeting), lang, project.zone(meeting)
            ),
            "place": meeting.place.one_line(),
        },
        "person": {"name": person.name, "schools": _schools_text(project, person)},
        "current": current,
        "recorded": recorded,
        "chosen": option(chosen) if chosen and chosen != current_word else None,
        "others": others,
        "closed": _closed(visit, now, words),
    }
    body = desk.env.get_template("web/rsvp.html").render(context).encode("utf-8")
    resp = web.Response(status=status, body=body, headers=_HEADERS)
    resp.headers["Content-Type"] = "text/html; charset=utf-8"
    return resp


_ROSTER_WORDS = {
    "ru": {
        "title": "Кто придёт",
        "school": "Школа",
        "person": "Кто",
        "answer": "Ответ",
        "when": "Когда",
        "via": "Как",
        "ACCEPTED": "придёт",
        "DECLINED": "не придёт",
        "TENTATIVE": "возможно",
        "NEEDS-ACTION": "нет ответа",
        "link": "по ссылке",
        "imap": "из календаря",
        "people": "человек",
    },
    "en": {
        "title": "Who comes",
        "school": "School",
        "person": "Person",
        "answer": "Answer",
        "when": "When",
        "via": "Via",
        "ACCEPTED": "yes",
        "DECLINED": "no",
        "TENTATIVE": "maybe",
        "NEEDS-ACTION": "no answer",
        "link": "by link",
        "imap": "from the calendar",
        "people": "people",
    },
}


def _roster_page(desk: AnswerDesk, project: Project, meeting: Meeting) -> web.Response:
    """The organiser's view: the counts, then every school and person with their answer."""
    lang = project.settings.language if project.settings.language in _ROSTER_WORDS else "ru"
    words = _ROSTER_WORDS[lang]
    zone = project.zone(meeting)
    result = roster(project, desk.store, meeting)
    rows = [
        {
            "school": e.school_title,
            "name": e.name,
            "email": e.email,
            "partstat": e.partstat,
            "answer": words[e.partstat],
            "at": e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if e.at else "",
            "via": words.get(e.via or "", ""),
        }
        for e in result.entries
    ]
    context = {
        "lang": lang,
        "t": words,
        "project_title": project.settings.title,
        "meeting": {
            "title": meeting.title,
            "when": format_span(project.meeting_start(meeting), project.meeting_end(meeting), lang, zone),
        },
        "counts": [{"key": k, "label": words[k], "n": n} for k, n in result.counts.items()],
        "total": sum(result.counts.values()),
        "rows": rows,
    }
    body = desk.env.get_template("web/attendance.html").render(context).encode("utf-8")
    resp = web.Response(body=body, headers=_HEADERS)
    resp.headers["Content-Type"] = "text/html; charset=utf-8"
    return resp


def _cross_site(request: web.Request, project: Project) -> bool:
    """A form posted from another site: its Origin names that site (browsers send Origin on POST)."""
    if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False  # not a browser's cross-site form: those always carry Origin
    if origin == "null":
        return True
    mine = {f"{request.scheme}://{request.host}"}
    base = urlsplit(str(project.settings.base_url))
    mine.add(f"{base.scheme}://{base.netloc}")
    return origin.rstrip("/") not in mine


def add_rsvp_routes(app: web.Application, source: Callable[[], Any], desk: AnswerDesk) -> None:
    """/rsvp/<meeting>/<token> (what was recorded) and /rsvp/<meeting>/<token>/<answer> (GET: confirm, POST: record)."""

    async def status(request: web.Request) -> web.StreamResponse:
        visit = _find(source(), request.match_info["meeting"], request.match_info["token"])
        if visit is None:
            return _not_found()
        return _page(desk, visit, None, recorded=request.query.get("recorded") == "1")

    async def confirm(request: web.Request) -> web.StreamResponse:
        word = request.match_info["answer"]
        visit = _find(source(), request.match_info["meeting"], request.match_info["token"])
        if visit is None or word not in ANSWERS:
            return _not_found()
        return _page(desk, visit, word, recorded=False)

    async def record(request: web.Request) -> web.StreamResponse:
        word = request.match_info["answer"]
        visit = _find(source(), request.match_info["meeting"], request.match_info["token"])
        if visit is None or word not in ANSWERS:
            return _not_found()
        if _cross_site(request, visit.project):
            return web.Response(status=403, text="Forbidden: a cross-site form\n")
        now = desk.clock.now()
        if _closed(visit, now, WORDS["en"]) is not None:
            return _page(desk, visit, None, recorded=False, status=409)
        answer = Answer(visit.meeting.id, visit.person.email.lower(), PARTSTAT_OF[word], now, "link")
        desk.store.record_answer(answer)
        log.info("action=answer via=link meeting=%s partstat=%s", visit.meeting.id, answer.partstat)
        # Post/Redirect/Get: reloading the page that follows never posts again.
        location = answer_path(visit.secret, visit.meeting.id, visit.person.email) + "?recorded=1"
        raise web.HTTPSeeOther(location, headers=_HEADERS)

    async def attendance(request: web.Request) -> web.StreamResponse:
        pub = source()
        token = request.match_info["token"]
        try:
            meeting = pub.project.meeting(request.match_info["meeting"]) if pub is not None else None
        except KeyError:
            meeting = None
        expected = roster_token(pub.secret, meeting.id).encode() if meeting is not None else b"-"
        if meeting is None or not hmac.compare_digest(expected, token.encode("utf-8", "replace")):
            return _not_found()
        return _roster_page(desk, pub.project, meeting)

    app.router.add_get("/attendance/{meeting}/{token}", attendance, allow_head=True)
    app.router.add_get("/rsvp/{meeting}/{token}", status, allow_head=True)
    app.router.add_get("/rsvp/{meeting}/{token}/{answer}", confirm, allow_head=True)
    app.router.add_post("/rsvp/{meeting}/{token}/{answer}", record)
