"""Calendar components from the model: meetings, key events and action items as VEVENTs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from icalendar import Calendar, Component, Event, vCalAddress, vDuration, vRecur, vText

from .messages import meeting_when
from .model import (
    ActionItem,
    Audience,
    DateRange,
    KeyEvent,
    Meeting,
    MeetingStatus,
    MonthOnly,
    OnDate,
    Project,
    Recurrence,
)
from .templating import make_environment
from .timezones import assign_eras, vtimezone_for, zone_mark

if TYPE_CHECKING:
    from .feedcache import ItemCache
    from .store import EventState, StateStore

__all__ = [
    "PRODID",
    "CalendarItem",
    "Piece",
    "action_audience",
    "action_event",
    "calendar_items",
    "event_fingerprint",
    "event_states",
    "feed_pieces",
    "key_event",
    "meeting_event",
    "meeting_fingerprint",
    "uid_for",
    "wrap_calendar",
]

PRODID = "-//cyclogram//cyclogram calendar feeds//EN"
REFRESH = timedelta(hours=1)

_CATEGORY = {
    "meeting": {"ru": "Встреча", "en": "Meeting"},
    "event": {"ru": "Ключевое мероприятие", "en": "Key event"},
    "action": {"ru": "Поручение", "en": "Action item"},
}
_DUE = {"ru": "Срок: {}", "en": "Due: {}"}


@dataclass(frozen=True)
class CalendarItem:
    """One calendar entry with who it is addressed to, so feeds can pick theirs."""

    uid: str
    kind: str  # meeting | event | action
    item_id: str
    audience: Audience
    component: Event
    meeting: str | None = None  # the meeting it belongs to (for action items, the meeting that set them)


# -- identity ----------------------------------------------------------------------------------------------


def uid_for(project: Project, kind: str, item_id: str) -> str:
    """A UID from ids only: moving or renaming an item keeps its identity in every client."""
    if kind not in _CATEGORY:
        raise ValueError(f"unknown calendar item kind {kind!r}")
    host = project.settings.base_url.host or "cyclogram.invalid"
    return f"{kind}-{item_id}@{host}"


def _digest(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def meeting_fingerprint(project: Project, meeting: Meeting) -> str:
    """Everything a client shows of a meeting: when it changes, SEQUENCE must rise."""
    data = meeting.model_dump(
        mode="json",
        include={
            "title",
            "goal",
            "tasks",
            "agenda",
            "place",
            "online_url",
            "status",
            "start",
            "end",
            "audience",
        },
    )
    data["zone"] = project.zone(meeting).key
    data["organizer"] = project.settings.organizer.model_dump(mode="json")
    from .documents import content_type, documents_of

    attached = [(d.file, content_type(d.file)) for _, d in documents_of(meeting)]
    if attached:  # the ATTACH lines; a meeting without documents keeps the fingerprint it always had
        data["documents"] = attached
    return _digest(data)


def event_fingerprint(project: Project, event: KeyEvent) -> str:
    data = event.model_dump(mode="json")
    data["zone"] = project.zone(event).key
    return _digest(data)


def _action_fingerprint(project: Project, meeting: Meeting, action: ActionItem) -> str:
    return _digest(
        {
            "action": action.model_dump(mode="json"),
            "audience": action_audience(meeting, action).model_dump(mode="json"),
        }
    )


def _final_actions(project: Project) -> Iterable[tuple[Meeting, ActionItem]]:
    for meeting in project.meetings:
        if meeting.minutes is not None and meeting.minutes.final:
            for action in meeting.minutes.action_items:
                yield meeting, action


def event_states(store: StateStore, project: Project, now: datetime) -> dict[str, EventState]:
    """Record every item's fingerprint: SEQUENCE rises when an item changes and never falls."""
    items: list[tuple[str, str]] = []
    for meeting in project.meetings:
        items.append((uid_for(project, "meeting", meeting.id), meeting_fingerprint(project, meeting)))
    for event in project.all_events():
        fingerprint = event_fingerprint(project, event)
        items.append((uid_for(project, "event", event.id), fingerprint))
        items.extend((extra, fingerprint) for extra, _part in series_parts(project, event))
    for meeting, action in _final_actions(project):
        uid = uid_for(project, "action", f"{meeting.id}-{action.id}")
        items.append((uid, _action_fingerprint(project, meeting, action)))
    return store.event_states(items, now)


# -- components --------------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _stamp(component: Component, uid: str, state: EventState, now: datetime) -> None:
    component.add("UID", uid)
    component.add("DTSTAMP", _utc(now))
    component.add("CREATED", _utc(state.created))
    component.add("LAST-MODIFIED", _utc(state.last_modified))
    component.add("SEQUENCE", state.sequence)


def _organizer(project: Project) -> vCalAddress:
    org = project.settings.organizer
    address = vCalAddress(f"mailto:{org.email}")
    address.params["CN"] = org.name
    return address


def _render(env: jinja2.Environment | None, name: str, language: str, **context: Any) -> str:
    env = env or make_environment(None)
    text = env.get_template(f"ics/{language}/{name}.txt").render(language=language, **context)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _index_url(project: Project, anchor: str) -> str:
    return f"{str(project.settings.base_url).rstrip('/')}/#{anchor}"


def meeting_event(
    project: Project,
    meeting: Meeting,
    state: EventState,
    now: datetime,
    language: str,
    *,
    env: jinja2.Environment | None = None,
    secret: str | None = None,
) -> Event:
    """A complete VEVENT for one meeting, without METHOD or ATTENDEE (invitations add those).

    `secret` gives the links to a non-public meeting's documents (ATTACH); without it they are left out.
    """
    uid = uid_for(project, "meeting", meeting.id)
    start, end = project.meeting_start(meeting), project.meeting_end(meeting)
    ev = Event()
    _stamp(ev, uid, state, now)
    if meeting.all_day:
        # Dates only: VALUE=DATE, DTEND exclusive (the day after the last), as every client expects.
        ev.add("DTSTART", start.date())
        ev.add("DTEND", end.date())
    else:
        ev.add("DTSTART", start)
        ev.add("DTEND", end)
    ev.add("SUMMARY", meeting.title)
    ev.add(
        "DESCRIPTION",
        _render(
            env,
            "meeting",
            language,
            project=project,
            meeting=meeting,
            start=start,
            end=end,
            zone=project.zone(meeting),
            when=meeting_when(project, meeting, language),
        ),
    )
    ev.add("LOCATION", meeting.location)
    ev.add("URL", str(meeting.online_url) if meeting.online_url else _index_url(project, meeting.id))
    ev.add("ORGANIZER", _organizer(project))
    ev.add("CATEGORIES", [_CATEGORY["meeting"][language], project.settings.title])
    ev.add("STATUS", "CANCELLED" if meeting.status is MeetingStatus.cancelled else "CONFIRMED")
    ev.add("TRANSP", "OPAQUE")
    ev.add("CLASS", "PUBLIC")
    _attach_documents(ev, project, meeting, secret)
    assign_eras(ev)
    return ev


def _attach_documents(ev: Event, project: Project, meeting: Meeting, secret: str | None) -> None:
    """ATTACH;FMTTYPE=...:URL for each document of the meeting (RFC 5545 3.8.1.1), where it is served."""
    from .documents import content_type, document_url, documents_of, is_public

    if secret is None and not is_public(meeting):
        return
    for _, doc in documents_of(meeting):
        ev.add(
            "ATTACH",
            document_url(project, secret, meeting, doc),
            parameters={"FMTTYPE": content_type(doc.file)},
        )


FAR_YEAR = 2040  # a year whose rules stand for "the zone's rules from now on"


def _zone_rules(zone: ZoneInfo, day: date) -> tuple[timedelta | None, bool, bool | None]:
    """What a client's copy of the zone must know at `day`: its standard offset, whether that year keeps
    daylight saving, and, in a zone that no longer keeps it, whether `day` is in summer time. A change of
    any of these (Moscow in 2011 and 2014, many regions in 2016, a summer of a zone that has since given
    up daylight saving) is where one VTIMEZONE stops fitting a series in Outlook, which reads only the
    latest rule of each kind."""
    noon = datetime.combine(day, time(12), tzinfo=zone)
    offset, dst = noon.utcoffset(), noon.dst()
    standard = offset - dst if offset is not None and dst is not None else offset

    def keeps_dst(year: int) -> bool:  # in either hemisphere's summer
        return any(datetime(year, month, 1, tzinfo=zone).dst() for month in (1, 7))

    summer = bool(dst) if keeps_dst(day.year) and not keeps_dst(FAR_YEAR) else None
    return standard, keeps_dst(day.year), summer


def _segments(rec: Recurrence, zone: ZoneInfo) -> list[list[date]]:
    """The rule's days in runs under one set of zone rules (see `_zone_rules`); all-day series are one."""
    days = rec.rule_days()
    if rec.time is None or not days:
        return [days] if days else []
    runs: list[list[date]] = [[days[0]]]
    for prev, day in pairwise(days):
        if _zone_rules(zone, day) != _zone_rules(zone, prev):
            runs.append([])
        runs[-1].append(day)
    return runs


def series_parts(project: Project, event: KeyEvent) -> list[tuple[str, KeyEvent]]:
    """The VEVENTs a recurring key event needs beyond its own: each later run of the series under other
    zone rules, and each added date (`rdates`) the rule does not generate (Outlook drops RDATE)."""
    rec = event.when
    if not isinstance(rec, Recurrence):
        return []
    runs = _segments(rec, project.zone(event))
    days = [d for run in runs for d in run]
    extra = sorted(set(rec.rdates) - set(days) - set(rec.exclude))
    if not runs:
        extra = extra[1:]  # the first added date is the event itself
    parts = []
    for run in runs[1:]:
        later = rec.model_copy(update={"start": run[0], "until": run[-1], "count": None, "rdates": []})
        uid = uid_for(project, "event", f"{event.id}-{run[0]:%Y%m%d}")
        parts.append((uid, event.model_copy(update={"when": later})))
    for day in extra:
        if rec.time is None:
            when: Any = OnDate(date=day)
        else:
            begin = datetime.combine(day, rec.time)
            end = datetime.combine(day, rec.end_time) if rec.end_time else begin + timedelta(hours=1)
            when = DateRange(start=begin, end=end)
        uid = uid_for(project, "event", f"{event.id}-{day:%Y%m%d}")
        parts.append((uid, event.model_copy(update={"when": when})))
    return parts


def _recurrence(ev: Event, project: Project, event: KeyEvent, rec: Recurrence) -> bool:
    """One VEVENT for the series: RRULE as written, UNTIL at its last day, EXDATE.

    DTSTART is the rule's first occurrence (RFC 5545 counts DTSTART as an instance even when the rule
    would not generate it); UNTIL replaces COUNT, so every reader stops on the same day. Added dates
    (`rdates`) and later runs under other zone rules are VEVENTs of their own (see `series_parts`).
    """
    zone = project.zone(event)
    runs = _segments(rec, zone)
    days = runs[0] if runs else []
    extra = sorted(set(rec.rdates) - set(rec.rule_days()) - set(rec.exclude))
    if not days and not extra:
        return False
    excluded = sorted(set(rec.exclude) & set(days))

    def moment(day: date) -> date | datetime:
        return day if rec.time is None else datetime.combine(day, rec.time, tzinfo=zone)

    first = days[0] if days else extra.pop(0)
    if rec.time is None:
        length = timedelta(days=1)
    elif rec.end_time is not None:
        length = datetime.combine(first, rec.end_time) - datetime.combine(first, rec.time)
    else:
        length = timedelta(hours=1)
    ev.add("DTSTART", moment(first))
    ev.add("DTEND", moment(first) + length)
    if days:
        rule: dict[str, Any] = dict(rec.rule_parts())
        if rule.get("interval", 1) != 1:
            rule["wkst"] = "MO"
        # RFC 5545: with a TZID on DTSTART, UNTIL is in UTC.
        last = moment(days[-1])
        rule["until"] = _utc(last) if isinstance(last, datetime) else last
        ev.add("RRULE", vRecur(rule))
    for day in excluded:
        ev.add("EXDATE", moment(day))
    return True


def key_event(
    project: Project,
    event: KeyEvent,
    state: EventState,
    now: datetime,
    language: str,
    *,
    env: jinja2.Environment | None = None,
    uid: str | None = None,
) -> Event | None:
    """A VEVENT for one entry of the cyclogram; None for a recurrence that never occurs."""
    ev = Event()
    _stamp(ev, uid or uid_for(project, "event", event.id), state, now)
    when = event.when
    status = "CONFIRMED"
    all_day = True
    if isinstance(when, OnDate):
        ev.add("DTSTART", when.date)
        ev.add("DTEND", when.date + timedelta(days=1))
    elif isinstance(when, DateRange):
        if isinstance(when.start, datetime) and isinstance(when.end, datetime):
            zone = project.zone(event)
            ev.add("DTSTART", _aware(when.start, zone))
            ev.add("DTEND", _aware(when.end, zone))
            all_day = False
        else:
            ev.add("DTSTART", when.start)
            ev.add("DTEND", when.end + timedelta(days=1))  # DTEND of an all-day event is exclusive
    elif isinstance(when, MonthOnly):
        # The month is agreed but not the day: the whole month, tentative, not blocking anyone's time.
        ev.add("DTSTART", when.first_day)
        ev.add("DTEND", when.last_day + timedelta(days=1))
        status = "TENTATIVE"
    else:
        if not _recurrence(ev, project, event, when):
            return None
        all_day = when.time is None
    if event.status == "cancelled":
        status = "CANCELLED"
    ev.add("SUMMARY", event.title)
    description = _render(
        env,
        "event",
        language,
        project=project,
        event=event,
        source=_source(project, event),
        responsible=project.responsible_text(event.responsible),
    )
    if description:
        ev.add("DESCRIPTION", description)
    if event.place:
        ev.add("LOCATION", event.place.one_line())
    ev.add("URL", _index_url(project, f"event-{event.id}"))
    ev.add("ORGANIZER", _organizer(project))
    ev.add("CATEGORIES", [_CATEGORY["event"][language], project.settings.title])
    ev.add("STATUS", status)
    ev.add("TRANSP", "TRANSPARENT" if all_day else "OPAQUE")
    ev.add("CLASS", "PUBLIC")
    assign_eras(ev)
    return ev


def _aware(moment: datetime, zone: Any) -> datetime:
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def _source(project: Project, event: KeyEvent) -> Meeting | None:
    if event.source is None:
        return None
    try:
        return project.meeting(event.source)
    except KeyError:
        return None


def action_audience(meeting: Meeting, action: ActionItem) -> Audience:
    """Who sees an action item: the school or team answering for it, else the meeting's audience."""
    r = action.responsible
    if r.school or r.team:
        return Audience(schools=[r.school] if r.school else [], teams=[r.team] if r.team else [])
    return meeting.audience


def action_event(
    project: Project,
    meeting: Meeting,
    action: ActionItem,
    state: EventState,
    now: datetime,
    language: str,
    *,
    env: jinja2.Environment | None = None,
) -> Event:
    """An action item as an all-day VEVENT on its due date.

    A VEVENT rather than a VTODO: Google Calendar and Outlook drop VTODOs from subscribed feeds and
    Apple Calendar files them under Reminders only for CalDAV, not for webcal subscriptions, so an
    all-day, non-blocking event is the one form every client shows on the due day.
    """
    ev = Event()
    _stamp(ev, uid_for(project, "action", f"{meeting.id}-{action.id}"), state, now)
    ev.add("DTSTART", action.due)
    ev.add("DTEND", action.due + timedelta(days=1))
    ev.add("SUMMARY", _DUE[language].format(action.title))
    ev.add(
        "DESCRIPTION",
        _render(
            env,
            "action",
            language,
            project=project,
            meeting=meeting,
            action=action,
            responsible=project.responsible_text(action.responsible),
        ),
    )
    ev.add("URL", _index_url(project, meeting.id))
    ev.add("ORGANIZER", _organizer(project))
    ev.add("CATEGORIES", [_CATEGORY["action"][language], project.settings.title])
    ev.add("STATUS", "CONFIRMED")
    ev.add("TRANSP", "TRANSPARENT")
    ev.add("CLASS", "PUBLIC")
    return ev


def _item_sources(
    project: Project,
    states: dict[str, EventState],
    language: str,
    now: datetime | None,
    env: jinja2.Environment,
    secret: str | None,
) -> Iterable[tuple[str, str, str, Audience, str | None, Callable[[], Any], Callable[[], Event | None]]]:
    """Each item as (uid, kind, id, audience, meeting, what decides its bytes, how to build it).

    "What decides its bytes" is everything the item's own builder reads besides the project's settings,
    the templates and the code (which `ItemCache` keys on for every item): its model, its state, its zone.
    """

    def state_of(uid: str) -> str:
        st = states[uid]
        return f"{st.created.isoformat()} {st.last_modified.isoformat()} {st.sequence}"

    at = now.isoformat() if now is not None else None
    for meeting in project.meetings:
        uid = uid_for(project, "meeting", meeting.id)
        st = states[uid]

        def meeting_ident(meeting: Meeting = meeting, uid: str = uid) -> list[str | None]:
            # The secret counts only through the documents' links (ATTACH), and then only as its digest.
            docs = secret is not None and bool(_documents(meeting))
            hidden = hashlib.sha256(secret.encode()).hexdigest() if docs and secret is not None else None
            return [
                meeting.model_dump_json(),
                zone_mark(project.zone(meeting).key),
                state_of(uid),
                at,
                hidden,
            ]

        yield (
            uid, "meeting", meeting.id, meeting.audience, meeting.id, meeting_ident,
            lambda meeting=meeting, st=st: meeting_event(
                project, meeting, st, now or st.last_modified, language, env=env, secret=secret
            ),
        )  # fmt: skip
    for event in project.all_events():
        uid = uid_for(project, "event", event.id)
        source = _source(project, event)

        def event_ident(part: KeyEvent, uid: str, source: Meeting | None = source) -> list[str | None]:
            return [
                part.model_dump_json(),
                zone_mark(project.zone(part).key),
                state_of(uid),
                at,
                project.responsible_text(part.responsible),
                source.model_dump_json() if source is not None else None,
            ]

        for one, part in [(uid, event), *series_parts(project, event)]:
            st = states[one]
            yield (
                one, "event", event.id, event.audience, event.source,
                lambda part=part, one=one: event_ident(part, one),
                lambda part=part, st=st, one=one: key_event(
                    project, part, st, now or st.last_modified, language, env=env, uid=one
                ),
            )  # fmt: skip
    for meeting, action in _final_actions(project):
        item_id = f"{meeting.id}-{action.id}"
        uid = uid_for(project, "action", item_id)
        st = states[uid]
        audience = action_audience(meeting, action)

        def action_ident(
            meeting: Meeting = meeting, action: ActionItem = action, uid: str = uid
        ) -> list[str | None]:
            return [
                meeting.model_dump_json(),
                action.model_dump_json(),
                project.responsible_text(action.responsible),
                state_of(uid),
                at,
            ]

        yield (
            uid, "action", item_id, audience, meeting.id, action_ident,
            lambda meeting=meeting, action=action, st=st: action_event(
                project, meeting, action, st, now or st.last_modified, language, env=env
            ),
        )  # fmt: skip


def _documents(meeting: Meeting) -> list[Any]:
    from .documents import documents_of

    return documents_of(meeting)


def calendar_items(
    project: Project,
    states: dict[str, EventState],
    language: str,
    *,
    now: datetime | None = None,
    env: jinja2.Environment | None = None,
    secret: str | None = None,
) -> list[CalendarItem]:
    """Every meeting, key event and action item; DTSTAMP is each item's LAST-MODIFIED unless `now` is given.

    Feeds use LAST-MODIFIED so that an unchanged model builds byte-identical files.
    """
    env = env or make_environment(None)
    items: list[CalendarItem] = []
    for uid, kind, item_id, audience, meeting, _ident, build in _item_sources(
        project, states, language, now, env, secret
    ):
        comp = build()
        if comp is not None:
            items.append(CalendarItem(uid, kind, item_id, audience, comp, meeting))
    return items


@dataclass(frozen=True, slots=True)
class Piece:
    """One item as a feed uses it: its serialised VEVENT, the zones it needs, and whom it is for."""

    uid: str
    kind: str
    item_id: str
    audience: Audience
    meeting: str | None
    data: bytes
    digest: bytes  # sha256 of `data`
    spans: Spans
    cancelled_end: date | None  # the last day of a cancelled item (it leaves the feeds a while after)


def _last_day(comp: Component) -> date:
    end = comp.get("DTEND") or comp.get("DTSTART")
    value = end.dt
    if "RRULE" in comp:
        until = comp["RRULE"].get("UNTIL")
        if until:
            value = until[0] if isinstance(until, list) else until
    return value.date() if isinstance(value, datetime) else value


def feed_pieces(
    project: Project,
    states: dict[str, EventState],
    language: str,
    *,
    env: jinja2.Environment | None = None,
    secret: str | None = None,
    cache: ItemCache | None = None,
) -> list[Piece]:
    """What `calendar_items` gives, serialised: from `cache` where an item's inputs are unchanged."""
    from .feedcache import ItemCache, item_key

    env = env or make_environment(None)
    cache = cache if cache is not None else ItemCache(None)
    context = cache.context(project, env, language)
    pieces: list[Piece] = []
    for uid, kind, item_id, audience, meeting, ident, build in _item_sources(
        project, states, language, None, env, secret
    ):
        key = item_key(context, kind, ident()) if context is not None else None
        hit = cache.get(key) if key is not None else None
        if hit is None:
            comp = build()
            if comp is None:
                data, spans, cancelled = b"", {}, None
            else:
                data = comp.to_ical()
                spans = _tz_spans([comp])
                cancelled = _last_day(comp) if str(comp.get("STATUS", "")) == "CANCELLED" else None
            hit = cache.put(key, data, spans, cancelled)
        if hit.data:
            pieces.append(
                Piece(uid, kind, item_id, audience, meeting, hit.data, hit.digest, hit.spans, hit.cancelled)
            )
    return pieces


# -- the calendar ------------------------------------------------------------------------------------------


Spans = dict[str, tuple[datetime, datetime]]


def _tz_spans(components: Sequence[Component], cache: dict[int, Spans] | None = None) -> Spans:
    """Per TZID (as `assign_eras` wrote it), the earliest and latest local moments the components use.

    `cache` keeps each component's own spans, for a caller that wraps the same components many times.
    """
    if cache is not None:
        merged: Spans = {}
        for comp in components:
            key = id(comp)
            if key not in cache:
                cache[key] = _tz_spans([comp])
            for tzid, (lo, hi) in cache[key].items():
                old = merged.get(tzid)
                merged[tzid] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        return merged
    spans: Spans = {}

    def note(value: Any, tzid: str | None = None) -> None:
        moments = value if isinstance(value, list) else [value]
        for m in moments:
            dt = getattr(m, "dt", m)
            dts = getattr(m, "dts", None)
            params = getattr(m, "params", None)
            for one in [d.dt for d in dts] if dts else [dt]:
                if isinstance(one, datetime) and one.tzinfo is not None:
                    key = tzid or (params.get("TZID") if params else None) or getattr(one.tzinfo, "key", None)
                    if key and key != "UTC":
                        naive = one.replace(tzinfo=None)
                        lo, hi = spans.get(key, (naive, naive))
                        spans[key] = (min(lo, naive), max(hi, naive))

    for comp in components:
        for sub in comp.walk():
            for name in ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE"):
                if name in sub:
                    note(sub[name])
            if "RRULE" in sub:
                until = sub["RRULE"].get("UNTIL")
                start = sub.get("DTSTART")
                if until and start is not None and isinstance(start.dt, datetime) and start.dt.tzinfo:
                    last = until[0] if isinstance(until, list) else until
                    if isinstance(last, datetime):
                        note(last.astimezone(start.dt.tzinfo), start.params.get("TZID"))
    return spans


@dataclass
class SerialCache:
    """Serialised pieces shared by the feeds of one build: most items sit in hundreds of feeds (what is
    for everyone is in every school's), so each is folded into bytes once, not once per feed."""

    components: dict[int, bytes] = field(default_factory=dict)
    spans: dict[int, Spans] = field(default_factory=dict)
    zones: dict[tuple[str, datetime, datetime], bytes] = field(default_factory=dict)

    def component(self, comp: Component) -> bytes:
        key = id(comp)
        if key not in self.components:
            self.components[key] = comp.to_ical()
        return self.components[key]

    def zone(self, tzid: str, lo: datetime, hi: datetime) -> bytes:
        key = (tzid, lo, hi)
        if key not in self.zones:
            self.zones[key] = vtimezone_for(tzid, lo, hi).to_ical()
        return self.zones[key]


def feed_bytes(
    project: Project,
    components: Sequence[Component],
    *,
    name: str,
    description: str | None,
    language: str,
    cache: SerialCache,
) -> bytes:
    """The same bytes as `wrap_calendar(..., method=None).to_ical()`, assembled from cached pieces."""
    shell = wrap_calendar(project, [], method=None, name=name, description=description, language=language)
    head = shell.to_ical()
    end = head.rindex(b"END:VCALENDAR")
    zones = [
        cache.zone(tzid, lo, hi) for tzid, (lo, hi) in sorted(_tz_spans(components, cache.spans).items())
    ]
    return b"".join([head[:end], *zones, *(cache.component(c) for c in components), head[end:]])


def wrap_calendar(
    project: Project,
    components: Iterable[Component],
    *,
    method: str | None,
    name: str,
    description: str | None,
    language: str,
) -> Calendar:
    """A VCALENDAR with the VTIMEZONEs the components need; feeds (no method) also get refresh hints."""
    comps = list(components)
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    if method is not None:
        cal.add("METHOD", method)
    else:
        # Subscription hints: a name and zone for clients that show them, how often to poll.
        # TEXT values (RFC 5545 3.3.11): icalendar escapes `,` `;` `\` and line breaks only for the
        # properties it knows as TEXT, not for NAME (RFC 7986) or the X-WR- ones, so say so explicitly.
        cal.add("NAME", vText(name))
        cal.add("X-WR-CALNAME", vText(name))
        if description:
            cal.add("DESCRIPTION", vText(description))
            cal.add("X-WR-CALDESC", vText(description))
        cal.add("X-WR-TIMEZONE", project.settings.timezone)
        cal.add("REFRESH-INTERVAL", REFRESH, parameters={"VALUE": "DURATION"})
        cal.add("X-PUBLISHED-TTL", vDuration(REFRESH))
    for tzid, (lo, hi) in sorted(_tz_spans(comps).items()):
        cal.add_component(vtimezone_for(tzid, lo, hi))
    for comp in comps:
        cal.add_component(comp)
    return cal
