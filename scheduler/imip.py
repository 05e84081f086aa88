"""The iMIP calendar part of an invitation: the feed's VEVENT addressed to one attendee (RFC 6047)."""

from __future__ import annotations

from datetime import datetime

import jinja2
from icalendar import vCalAddress
from icalendar.parser import Contentline

from .calendar import meeting_event, wrap_calendar
from .model import Meeting, MeetingStatus, Project, Recipient
from .store import EventState

__all__ = ["METHODS", "address_to", "fold", "imip_calendar", "imip_template"]

METHODS = ("REQUEST", "CANCEL")


def imip_calendar(
    project: Project,
    meeting: Meeting,
    recipient: Recipient,
    *,
    method: str,
    state: EventState,
    now: datetime,
    env: jinja2.Environment | None = None,
) -> bytes:
    """A VCALENDAR with METHOD and one VEVENT for `recipient`, with the same UID and SEQUENCE as the feeds.

    The event itself comes from the feeds' builder, so a head who both subscribes and accepts the
    invitation sees one event, updated in place by whichever copy is newer.
    """
    template = imip_template(
        project, meeting, method=method, state=state, now=now, language=recipient.language, env=env
    )
    return address_to(template, recipient, method)


def imip_template(
    project: Project,
    meeting: Meeting,
    *,
    method: str,
    state: EventState,
    now: datetime,
    language: str,
    env: jinja2.Environment | None = None,
    secret: str | None = None,
) -> bytes:
    """The calendar of one mailing in one language, before it is addressed (see `address_to`)."""
    if method not in METHODS:
        raise ValueError(f"unsupported iTIP method {method!r}")
    if method == "CANCEL" and meeting.status != MeetingStatus.cancelled:
        raise ValueError("a CANCEL needs the meeting marked cancelled (its STATUS must say so)")
    event = meeting_event(project, meeting, state, now, language, env=env, secret=secret)
    cal = wrap_calendar(
        project,
        [event],
        method=method,
        name=project.settings.title,
        description=None,
        language=language,
    )
    return cal.to_ical()


def address_to(template: bytes, recipient: Recipient, method: str) -> bytes:
    """The template with `recipient` as its one ATTENDEE.

    Only this line differs between the copies of a mailing, so a mailing to a thousand heads builds
    and folds the calendar once per language, not once per head.
    """
    attendee = vCalAddress(f"mailto:{recipient.email}")
    attendee.params["CN"] = recipient.name
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = "NEEDS-ACTION"
    # RFC 5546: a CANCEL expects no reply, so only a REQUEST asks for one.
    attendee.params["RSVP"] = "TRUE" if method == "REQUEST" else "FALSE"
    line = fold(Contentline.from_parts("ATTENDEE", attendee.params, attendee)) + b"\r\n"
    end = template.rindex(b"END:VEVENT\r\n")
    return b"".join((template[:end], line, template[end:]))


def fold(line: str, limit: int = 75) -> bytes:
    """A content line in UTF-8, folded as icalendar's `Contentline.to_ical` folds it (RFC 5545 3.1: each
    line under `limit` octets, never cut inside a character, and a `\\` or `^` escape not split from what
    it escapes), by octet arithmetic on the encoded line instead of a loop over its characters: the
    ATTENDEE line is folded once per recipient."""
    data = line.encode("utf-8")
    room = limit - 1  # a line holds at most limit - 1 octets
    if len(data) <= room:
        return data
    pieces = []
    start = 0
    while len(data) - start > room:
        end = start + room
        while data[end] & 0xC0 == 0x80:  # inside a character: cut before it
            end -= 1
        if data[end - 1] in b"\\^":  # an escape goes to the next line with what it escapes
            end -= 1
        pieces.append(data[start:end])
        start = end
    pieces.append(data[start:])
    return b"\r\n ".join(pieces)
