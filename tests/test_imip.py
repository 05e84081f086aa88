"""The iMIP part read back by three independent iCalendar readers, fields compared."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import icalendar
import pytest
import vobject
from ical.calendar_stream import IcsCalendarStream

from scheduler.mailings import compose, queue
from scheduler.model import MeetingStatus
from scheduler.store import SQLiteStore

NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
SEED = "heads-2020-09"
START_UTC = datetime(2020, 9, 25, 7, 0, tzinfo=UTC)


def _calendar_part(raw: bytes) -> tuple[str, str]:
    msg = message_from_bytes(raw, policy=policy.default)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    return part.get_param("method"), part.get_content()


def _check(text: str, method: str, recipient: str, sequence: int, status: str) -> None:
    cal = icalendar.Calendar.from_ical(text)
    assert str(cal["METHOD"]) == method
    (ev,) = cal.walk("VEVENT")
    assert str(ev["UID"]) == "meeting-heads-2020-09@cyclogram.example.org"
    assert int(ev["SEQUENCE"]) == sequence
    assert ev.decoded("DTSTART").astimezone(UTC) == START_UTC
    att = ev["ATTENDEE"]
    assert str(att).lower() == f"mailto:{recipient}"
    assert att.params["RSVP"] == ("TRUE" if method == "REQUEST" else "FALSE")
    assert att.params["PARTSTAT"] == "NEEDS-ACTION" and att.params["ROLE"] == "REQ-PARTICIPANT"
    assert att.params["CN"]
    assert str(ev["ORGANIZER"]).lower() == "mailto:gcro@example.org"
    assert str(ev["STATUS"]) == status

    strict = IcsCalendarStream.calendar_from_ics(text)
    (sev,) = strict.events
    assert sev.uid == "meeting-heads-2020-09@cyclogram.example.org"
    assert sev.sequence == sequence
    assert sev.dtstart.astimezone(UTC) == START_UTC
    assert [a.uri.lower() for a in sev.attendees] == [f"mailto:{recipient}"]
    assert sev.organizer.uri.lower() == "mailto:gcro@example.org"

    v = vobject.readOne(text)
    assert v.method.value == method
    assert v.vevent.uid.value == "meeting-heads-2020-09@cyclogram.example.org"
    assert int(v.vevent.sequence.value) == sequence
    assert v.vevent.dtstart.value.astimezone(UTC) == START_UTC
    assert v.vevent.attendee.value.lower() == f"mailto:{recipient}"


@pytest.mark.parametrize("kind", ["invitation", "agenda"])
def test_request_read_by_three_readers(example, tmp_path, kind):
    store = SQLiteStore(tmp_path / "s.db")
    for nm in compose(example, kind, meeting=SEED, store=store, now=NOW):
        method, text = _calendar_part(nm.message)
        assert method == "REQUEST"
        _check(text, "REQUEST", nm.recipient.lower(), 0, "CONFIRMED")


def test_sequence_rises_on_update_and_cancel(example, tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    queue(store, example, compose(example, "invitation", meeting=SEED, store=store, now=NOW), now=NOW)
    moved = example.project.meeting(SEED).model_copy(
        update={"start": datetime(2020, 9, 25, 11, 0), "end": datetime(2020, 9, 25, 13, 0)}
    )
    loaded = type(example)(example.directory, example.project.model_copy(update={"meetings": [moved]}),
                           example.meeting_files)  # fmt: skip
    updates = compose(loaded, "update", meeting=SEED, store=store, now=NOW)
    assert updates and all(u.revision == 1 for u in updates)
    cal = icalendar.Calendar.from_ical(_calendar_part(updates[0].message)[1])
    (ev,) = cal.walk("VEVENT")
    assert int(ev["SEQUENCE"]) == 1
    assert ev.decoded("DTSTART").astimezone(UTC) == datetime(2020, 9, 25, 8, 0, tzinfo=UTC)
    text = message_from_bytes(updates[0].message, policy=policy.default).get_body(("plain",)).get_content()
    assert "10:00–12:00" in text and "11:00–13:00" in text
    queue(store, loaded, updates, now=NOW)
    assert compose(loaded, "update", meeting=SEED, store=store, now=NOW) == []  # told already

    cancelled = moved.model_copy(update={"status": MeetingStatus.cancelled})
    loaded2 = type(example)(example.directory, example.project.model_copy(update={"meetings": [cancelled]}),
                            example.meeting_files)  # fmt: skip
    for nm in compose(loaded2, "cancellation", meeting=SEED, store=store, now=NOW):
        method, text = _calendar_part(nm.message)
        assert method == "CANCEL"
        cal = icalendar.Calendar.from_ical(text)
        (ev,) = cal.walk("VEVENT")
        assert int(ev["SEQUENCE"]) == 2 and str(ev["STATUS"]) == "CANCELLED"
        assert str(cal["METHOD"]) == "CANCEL"
