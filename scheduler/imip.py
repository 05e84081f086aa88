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
    line = fold(Contentline.from_parts("ATTENDEE", attendee.params, attendee)).encode("utf-8") + b"\r\n"
    end = template.rindex(b"END:VEVENT\r\n")
    return b"".join((template[:end], line, template[end:]))


def fold(line: str, limit: int = 75) -> str:
    """A content line folded as icalendar's `Contentline.to_ical` folds it (RFC 5545 3.1: under 75 octets a
    line, never inside a character; a `\\` or `^` escape is not split from what it escapes), computed from
    code points instead of encoding each character: the ATTENDEE line is folded once per recipient."""
    if len(line) * 4 < limit:
        return line  # even all 4-byte characters fit
    pieces: list[str] = []
    start = 0  # where the current piece begins
    count = 0  # its UTF-8 octets
    for i, char in enumerate(line):
        code = ord(char)
        size = 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        if 0xD800 <= code < 0xE000:
            raise UnicodeEncodeError("utf-8", line, i, i + 1, "surrogates not allowed")
        if i > start and count + size >= limit:
            if i - start > 1 and line[i - 1] in "\\^":
                pieces.append(line[start : i - 1])
                start = i - 1
                count = 1  # the escape character, ASCII
            else:
                pieces.append(line[start:i])
                start = i
                count = 0
        count += size
    pieces.append(line[start:])
    return "\r\n ".join(pieces)
