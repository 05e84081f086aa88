"""The iMIP calendar part of an invitation: the feed's VEVENT addressed to one attendee (RFC 6047)."""

from __future__ import annotations

from datetime import datetime

import jinja2
from icalendar import vCalAddress

from .calendar import meeting_event, wrap_calendar
from .model import Meeting, MeetingStatus, Project, Recipient
from .state import EventState

__all__ = ["METHODS", "imip_calendar"]

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
    if method not in METHODS:
        raise ValueError(f"unsupported iTIP method {method!r}")
    if method == "CANCEL" and meeting.status != MeetingStatus.cancelled:
        raise ValueError("a CANCEL needs the meeting marked cancelled (its STATUS must say so)")
    event = meeting_event(project, meeting, state, now, recipient.language, env=env)
    attendee = vCalAddress(f"mailto:{recipient.email}")
    attendee.params["CN"] = recipient.name
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = "NEEDS-ACTION"
    # RFC 5546: a CANCEL expects no reply, so only a REQUEST asks for one.
    attendee.params["RSVP"] = "TRUE" if method == "REQUEST" else "FALSE"
    event.add("ATTENDEE", attendee)
    cal = wrap_calendar(
        project,
        [event],
        method=method,
        name=project.settings.title,
        description=None,
        language=recipient.language,
    )
    return cal.to_ical()
