"""The year's timeline of mailings: a pure function of the project and the current instant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .model import (
    Audience,
    DateRange,
    KeyEvent,
    MailingRule,
    Meeting,
    MeetingStatus,
    OnDate,
    Project,
    Recipient,
    Recurrence,
    Responsible,
)

__all__ = ["PlanEntry", "build_plan", "entry_recipients", "mailing_key", "select"]

SCHEDULED_MEETING_KINDS = ("invitation", "rsvp_reminder", "agenda", "reminder")
ALL_DAY_HOUR = 9


@dataclass(frozen=True)
class PlanEntry:
    """One mailing of the year: when it goes out, about what, to how many."""

    at: datetime  # aware, in the project's zone
    kind: str
    meeting: str | None
    event: str | None
    item: str | None  # action item id, or the event occurrence date (ISO)
    recipients: int
    key: str  # identity of the mailing: the outbox deduplicates on (key, recipient, revision)
    deadline: datetime | None  # after this the mailing is pointless (the meeting has begun)
    state: str  # upcoming | due | past | waiting | sent | missed

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "meeting": self.meeting,
            "event": self.event,
            "item": self.item,
            "recipients": self.recipients,
            "key": self.key,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "state": self.state,
        }


def mailing_key(
    kind: str, meeting: str | None = None, event: str | None = None, item: str | None = None
) -> str:
    """The stable identity of one mailing, independent of its time (a moved meeting keeps its keys)."""
    if meeting is not None:
        return "/".join(x for x in (meeting, kind, item) if x)
    return "/".join(x for x in ("event", event or "", kind, item) if x)


def _at(day: date, at: time | None, fallback: time, zone: Any) -> datetime:
    return datetime.combine(day, at or fallback, tzinfo=zone)


def _rule_time(rule: MailingRule, anchor: datetime, before: bool) -> datetime:
    days = (rule.days_before if before else rule.days_after) or 0
    day = anchor.date() - timedelta(days=days) if before else anchor.date() + timedelta(days=days)
    return _at(day, rule.at, anchor.timetz().replace(tzinfo=None), anchor.tzinfo)


def _meeting_entries(project: Project, meeting: Meeting) -> list[PlanEntry]:
    if meeting.status is MeetingStatus.cancelled:
        return []
    policy = project.policy(meeting)
    start, end = project.meeting_start(meeting), project.meeting_end(meeting)
    # A rule without `at` goes out at the meeting's hour; an all-day meeting has none: the working
    # morning of its first day (and, for the summary, of the day after its last) stands in for it.
    lead = start.replace(hour=ALL_DAY_HOUR) if meeting.all_day else start
    tail = end.replace(hour=ALL_DAY_HOUR) - timedelta(days=1) if meeting.all_day else end
    count = len(project.recipients(meeting.audience))
    out: list[PlanEntry] = []
    for kind in SCHEDULED_MEETING_KINDS:
        rule: MailingRule = getattr(policy, kind)
        if not rule.enabled:
            continue
        at = min(_rule_time(rule, lead, before=True), start)
        out.append(
            PlanEntry(
                at, kind, meeting.id, None, None, count, mailing_key(kind, meeting.id), start, "upcoming"
            )
        )
    rule = policy.summary
    if rule.enabled:
        # never before the end; for an all-day meeting, not at the midnight after it either
        at = max(
            _rule_time(rule, tail, before=False), end.replace(hour=ALL_DAY_HOUR) if meeting.all_day else end
        )
        ready = meeting.minutes is not None and meeting.minutes.final
        out.append(
            PlanEntry(
                at,
                "summary",
                meeting.id,
                None,
                None,
                count,
                mailing_key("summary", meeting.id),
                None,
                "upcoming" if ready else "waiting",
            )
        )
    rule = policy.action_reminder
    if rule.enabled and meeting.minutes is not None and meeting.minutes.final:
        for action in meeting.minutes.action_items:
            recipients = len(_responsible_recipients(project, action.responsible))
            if not recipients:
                continue
            due = datetime.combine(action.due, time(0), tzinfo=project.zone(meeting))
            at = _rule_time(rule, due.replace(hour=9), before=True)
            out.append(
                PlanEntry(
                    at,
                    "action_reminder",
                    meeting.id,
                    None,
                    action.id,
                    recipients,
                    mailing_key("action_reminder", meeting.id, item=action.id),
                    due + timedelta(days=1),
                    "upcoming",
                )
            )
    return out


def _responsible_recipients(project: Project, responsible: Responsible) -> list[Recipient]:
    if responsible.school or responsible.team:
        aud = Audience(
            schools=[responsible.school] if responsible.school else [],
            teams=[responsible.team] if responsible.team else [],
        )
        return project.recipients(aud)
    return []


def event_occurrences(project: Project, event: KeyEvent) -> list[datetime]:
    """Aware starts of each dated occurrence (month-only events have none yet)."""
    zone = project.zone(event)
    when = event.when
    if isinstance(when, OnDate):
        return [datetime.combine(when.date, time(0), tzinfo=zone)]
    if isinstance(when, DateRange):
        start = when.start
        if isinstance(start, datetime):
            return [start.replace(tzinfo=zone) if start.tzinfo is None else start.astimezone(zone)]
        return [datetime.combine(start, time(0), tzinfo=zone)]
    if isinstance(when, Recurrence):
        return [datetime.combine(d, when.time or time(0), tzinfo=zone) for d in when.occurrences()]
    return []


def _event_entries(project: Project) -> list[PlanEntry]:
    rule = project.settings.mailings.event_reminder
    if not rule.enabled:
        return []
    out = []
    for event in project.all_events():
        if event.status == "cancelled":
            continue
        count = len(project.recipients(event.audience))
        for start in event_occurrences(project, event):
            anchor = start if start.time() != time(0) else start.replace(hour=9)
            at = _rule_time(rule, anchor, before=True)
            item = start.date().isoformat()
            out.append(
                PlanEntry(
                    at,
                    "event_reminder",
                    None,
                    event.id,
                    item,
                    count,
                    mailing_key("event_reminder", event=event.id, item=item),
                    start,
                    "upcoming",
                )
            )
    return out


def build_plan(project: Project, now: datetime, done: Mapping[str, str] | None = None) -> list[PlanEntry]:
    """Every scheduled mailing of the year, in time order, each marked against `now`.

    `done` maps mailing keys to what the outbox knows ("sent" or "missed"); without it, entries
    are only "past" or "upcoming" (or "waiting" for minutes that are not final yet).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = project.zone()
    entries: list[PlanEntry] = []
    for meeting in project.meetings:
        entries.extend(_meeting_entries(project, meeting))
    entries.extend(_event_entries(project))
    done = done or {}
    out = []
    for e in entries:
        state = e.state
        if e.key in done:
            state = done[e.key]
        elif state != "waiting" and e.at <= now:
            state = "past"
        out.append(replace(e, at=e.at.astimezone(zone), state=state))
    out.sort(key=lambda e: (e.at.astimezone(UTC), e.kind, e.key))
    return out


def select(entries: list[PlanEntry], start: date | None = None, end: date | None = None) -> list[PlanEntry]:
    """Entries whose local date lies in [start, end]."""
    return [
        e for e in entries if (start is None or e.at.date() >= start) and (end is None or e.at.date() <= end)
    ]


def entry_recipients(project: Project, entry: PlanEntry) -> list[Recipient]:
    """The mailboxes a plan entry goes to."""
    if entry.meeting is not None:
        meeting = project.meeting(entry.meeting)
        if entry.kind == "action_reminder" and meeting.minutes:
            for action in meeting.minutes.action_items:
                if action.id == entry.item:
                    return _responsible_recipients(project, action.responsible)
            return []
        return project.recipients(meeting.audience)
    for event in project.all_events():
        if event.id == entry.event:
            return project.recipients(event.audience)
    return []
