"""The roster of a meeting: each school's people, what each answered, when and by which path."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from ..model import Meeting, Project
from ..store import PARTSTATS, Answer, StateStore

__all__ = ["COUNT_KEYS", "Roster", "RosterEntry", "answers_overview", "csv_safe", "not_answered", "roster"]

COUNT_KEYS = (*PARTSTATS, "NEEDS-ACTION")


@dataclass(frozen=True)
class RosterEntry:
    """One person under one school; a person who represents two schools has an entry under each."""

    school: str
    school_title: str
    email: str
    name: str
    partstat: str  # ACCEPTED, DECLINED, TENTATIVE or NEEDS-ACTION
    at: datetime | None
    via: str | None  # link or imap

    def as_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "school": self.school,
            "school_title": self.school_title,
            "partstat": self.partstat,
            "at": self.at.astimezone(UTC).isoformat() if self.at else None,
            "via": self.via,
        }


@dataclass(frozen=True)
class Roster:
    meeting: str
    title: str
    entries: list[RosterEntry]

    @property
    def counts(self) -> dict[str, int]:
        """Answers per person: one who represents two schools counts once."""
        by_person = {e.email.lower(): e.partstat for e in self.entries}
        counts = dict.fromkeys(COUNT_KEYS, 0)
        for partstat in by_person.values():
            counts[partstat] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "meeting": self.meeting,
            "title": self.title,
            "counts": self.counts,
            "attendees": [e.as_json() for e in self.entries],
        }

    def as_table(self, zone: tzinfo) -> str:
        """For the terminal: a line per school and person, then the counts (each person once)."""
        rows = [("school", "person", "answer", "when", "via")]
        for e in self.entries:
            when = e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if e.at else ""
            rows.append((e.school, f"{e.name} <{e.email}>", e.partstat, when, e.via or ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"{self.meeting}: {self.title}"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        counts = self.counts
        lines.append(", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({sum(counts.values())} people)")
        return "\n".join(lines)

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["school", "school_title", "name", "email", "partstat", "at", "via"])
        for e in self.entries:
            row = e.as_json()
            writer.writerow(
                csv_safe(str(row[k] or ""))
                for k in ("school", "school_title", "name", "email", "partstat", "at", "via")
            )
        return out.getvalue()


def csv_safe(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ TAB or CR would make it a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _people(project: Project, meeting: Meeting) -> list[tuple[str, str, str, str]]:
    """(school id, school title, email, name) for everyone the meeting's mail goes to, under each school."""
    mailed = {r.email.lower(): r for r in project.recipients(meeting.audience)}
    placed: set[str] = set()
    out: list[tuple[str, str, str, str]] = []
    for school in project.audience_schools(meeting.audience):
        seen_here: set[str] = set()
        for person in (school.head, *[c for c in school.contacts if c.notify]):
            key = person.email.lower()
            if key in mailed and key not in seen_here:
                seen_here.add(key)
                placed.add(key)
                out.append((school.id, school.title, person.email, person.name))
    for key, r in mailed.items():  # anyone the mail reaches by another role
        if key not in placed:
            try:
                title = project.school(r.school).title
            except KeyError:
                title = r.school
            out.append((r.school, title, r.email, r.name))
    return out


def roster(project: Project, store: StateStore, meeting: Meeting) -> Roster:
    """Who was invited, under every school they represent, with the latest answer each gave."""
    answers: dict[str, Answer] = {a.email.lower(): a for a in store.answers(meeting.id)}
    entries = []
    for school, title, email, name in _people(project, meeting):
        a = answers.get(email.lower())
        partstat, at, via = (a.partstat, a.at, a.via) if a else ("NEEDS-ACTION", None, None)
        entries.append(RosterEntry(school, title, email, name, partstat, at, via))
    return Roster(meeting.id, meeting.title, entries)


def not_answered(store: StateStore, meeting: str, emails: list[str]) -> set[str]:
    """The addresses (lower case) among `emails` with no answer recorded for the meeting."""
    answered = {a.email.lower() for a in store.answers(meeting)}
    return {e.lower() for e in emails} - answered


def answers_overview(project: Project, store: StateStore, now: datetime, secret: str) -> list[dict[str, Any]]:
    """For the organiser's page: each meeting not yet over, its counts and its private roster page."""
    from ..i18n import format_span
    from .links import roster_path

    language = project.settings.language
    out = []
    for meeting in project.meetings:
        if project.meeting_end(meeting) <= now:
            continue
        result = roster(project, store, meeting)
        out.append(
            {
                "id": meeting.id,
                "title": meeting.title,
                "when": format_span(
                    project.meeting_start(meeting),
                    project.meeting_end(meeting),
                    language,
                    project.zone(meeting),
                ),
                "cancelled": meeting.status.value == "cancelled",
                "counts": result.counts,
                "roster": roster_path(secret, meeting.id),
            }
        )
    return out
