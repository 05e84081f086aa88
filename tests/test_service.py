"""The service on a fake clock: the year, a restart, an edit, a cancellation, minutes, a broken edit."""

from __future__ import annotations

import asyncio
import email
import logging
import mailbox
from collections import Counter
from datetime import UTC, date, datetime
from email import policy
from pathlib import Path

import icalendar
import pytest

from scheduler.clock import FixedClock
from scheduler.feeds import current_feeds
from scheduler.plan import build_plan
from scheduler.service import Service
from scheduler.simulate import simulate
from scheduler.store import SQLiteStore
from scheduler.transport import MaildirTransport

SEED = "meetings/2020-09-25-heads.yaml"
MSK = "+03:00"


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "var" / "state.db")
    yield s
    s.close()


def rehearse(config: Path, store: SQLiteStore, maildir: Path, start: date, end: date):
    return asyncio.run(simulate(config, store, MaildirTransport(maildir), start, end))


def messages(maildir: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(maildir, factory=None, create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.iterkeys()]


def calendar_part(msg: email.message.EmailMessage) -> icalendar.Calendar:
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            raw = part.get_payload(decode=True)
            assert raw.count(b"\r\n") == raw.count(b"\n")  # RFC 5545: CRLF line ends, in mail too
            return icalendar.Calendar.from_ical(raw)
    raise AssertionError("no calendar part")


def text_part(msg: email.message.EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + MSK)


# --- the year ----------------------------------------------------------------------------------------------


def test_the_whole_year_goes_out_each_mailing_once_at_its_time(config_copy, store, tmp_path):
    maildir = tmp_path / "mail"
    result = rehearse(config_copy, store, maildir, date(2020, 9, 1), date(2021, 8, 31))

    from scheduler.config import load_config

    project = load_config(config_copy).project
    planned = [e for e in build_plan(project, datetime(2020, 9, 1, tzinfo=UTC)) if e.state == "upcoming"]
    queued = [a for a in result.actions if a.what == "queued"]
    assert [a.key for a in queued] == [e.key for e in planned]  # every planned mailing, in order
    assert [a.at for a in queued] == [e.at for e in planned]  # each exactly at its time
    assert result.failed == 0

    got = messages(maildir)
    assert len(got) == result.delivered == sum(e.recipients for e in planned)
    ids = Counter(m["Message-ID"] for m in got)
    assert max(ids.values()) == 1
    per_mailing = Counter((m["X-Cyclogram-Mailing"], m["To"].addresses[0].addr_spec) for m in got)
    assert max(per_mailing.values()) == 1  # nobody gets one mailing twice
    sent_at = {e.key: e.at for e in planned}
    for m in got:
        assert m["Date"].datetime == sent_at[m["X-Cyclogram-Mailing"]]
    waiting = {a.key for a in result.actions if a.what == "waiting"}
    assert waiting == {"network-seminar-2021-01/summary", "summing-up-2021-05/summary"}


def test_a_restart_catches_up_once_and_reports_what_is_too_late(config_copy, store, tmp_path):
    maildir = tmp_path / "mail"
    rehearse(config_copy, store, maildir, date(2020, 9, 1), date(2020, 9, 23))  # invitation, agenda
    # Down from 23 Sept; back on 24 Sept at 15:00: the 09:00 reminder is 6 h late, inside the window.
    clock = FixedClock(at("2020-09-24T15:00"))
    service = Service(config_copy, store, clock)
    service.load()
    actions = service.due(catching_up=True)
    assert [(a.what, a.key) for a in actions] == [("queued", "heads-2020-09/reminder")]
    assert "6 hours late" in actions[0].detail  # durations as people say them
    assert service.due(catching_up=True) == []  # a second restart adds nothing

    rows = store.outbox()
    assert len(rows) == 18 and len({(r.mailing, r.recipient) for r in rows}) == 18


def test_a_mailing_missed_past_its_meeting_is_reported_not_sent(config_copy, store):
    clock = FixedClock(at("2020-09-25T10:30"))  # the meeting has begun; nothing was sent before
    service = Service(config_copy, store, clock)
    service.load()
    actions = {a.key: a for a in service.due(catching_up=True)}
    for kind in ("invitation", "agenda", "reminder"):
        assert actions[f"heads-2020-09/{kind}"].what == "missed"
        assert "meeting has begun" in actions[f"heads-2020-09/{kind}"].detail
    assert store.outbox() == []
    assert store.mailing_states()["heads-2020-09/invitation"] == "missed"


def test_catch_up_window_is_the_policys(config_copy, store, edit):
    edit("project.yaml", "catch_up_hours: 24", "catch_up_hours: 2")
    service = Service(config_copy, store, FixedClock(at("2020-09-24T15:00")))
    service.load()
    states = {a.key: a.what for a in service.due(catching_up=True)}
    assert states["heads-2020-09/reminder"] == "missed"
    assert states["heads-2020-09/invitation"] == "missed"


# --- edits -----------------------------------------------------------------------------------------------


def _invited(config: Path, store: SQLiteStore, maildir: Path) -> None:
    rehearse(config, store, maildir, date(2020, 9, 1), date(2020, 9, 12))
    assert len(messages(maildir)) == 6


def test_moving_the_seed_meeting_updates_exactly_the_invited(config_copy, store, edit, tmp_path):
    maildir = tmp_path / "mail"
    _invited(config_copy, store, maildir)
    invitation = calendar_part(messages(maildir)[0]).walk("VEVENT")[0]

    edit(SEED, "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
    edit(SEED, "end: 2020-09-25 12:00", "end: 2020-09-25 13:00")
    clock = FixedClock(at("2020-09-14T12:00"))
    service = Service(config_copy, store, clock)
    service.load()
    actions = service.react_to_changes()
    assert [(a.what, a.meeting, a.recipients) for a in actions] == [("update", "heads-2020-09", 6)]
    assert service.react_to_changes() == []  # told once

    from scheduler.delivery import deliver

    asyncio.run(deliver(store, MaildirTransport(maildir), clock, wait_retries=False))
    updates = [m for m in messages(maildir) if m["X-Cyclogram-Kind"] == "update"]
    invited = {
        m["To"].addresses[0].addr_spec for m in messages(maildir) if m["X-Cyclogram-Kind"] == "invitation"
    }
    assert {m["To"].addresses[0].addr_spec for m in updates} == invited
    school_37 = next(m for m in updates if "school37" in str(m["To"]))
    russian = next(m for m in updates if "school2" in str(m["To"]))
    for msg in (school_37, russian):
        body = text_part(msg)
        assert "10:00" in body and "11:00" in body  # what it was and what it is now
    event = calendar_part(russian).walk("VEVENT")[0]
    assert event["UID"] == invitation["UID"]
    assert int(event["SEQUENCE"]) > int(invitation["SEQUENCE"])
    assert event.decoded("DTSTART").astimezone(UTC) == datetime(2020, 9, 25, 8, 0, tzinfo=UTC)

    feed = icalendar.Calendar.from_ical(
        current_feeds(store, service.project, clock.now())["project.ics"].data
    )
    in_feed = next(e for e in feed.walk("VEVENT") if e["UID"] == invitation["UID"])
    assert in_feed.decoded("DTSTART").astimezone(UTC) == datetime(2020, 9, 25, 8, 0, tzinfo=UTC)
    assert int(in_feed["SEQUENCE"]) == int(event["SEQUENCE"])

    # The reminder still to come moved with the meeting (same local time of day: the policy's 09:00).
    reminder = next(e for e in service.plan() if e.key == "heads-2020-09/reminder")
    assert reminder.state == "upcoming"


def test_an_edit_before_anyone_was_told_sends_nothing(config_copy, store, edit):
    edit(SEED, "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
    service = Service(config_copy, store, FixedClock(at("2020-09-01T12:00")))
    service.load()
    assert service.react_to_changes() == []
    assert store.outbox() == []


def test_cancelling_cancels_in_every_calendar(config_copy, store, edit, tmp_path):
    maildir = tmp_path / "mail"
    _invited(config_copy, store, maildir)
    edit(SEED, "audience: all", "audience: all\nstatus: cancelled")
    clock = FixedClock(at("2020-09-15T12:00"))
    service = Service(config_copy, store, clock)
    service.load()
    actions = service.react_to_changes()
    assert [(a.what, a.recipients) for a in actions] == [("cancellation", 6)]

    from scheduler.delivery import deliver

    asyncio.run(deliver(store, MaildirTransport(maildir), clock, wait_retries=False))
    cancels = [m for m in messages(maildir) if m["X-Cyclogram-Kind"] == "cancellation"]
    assert len(cancels) == 6
    cal = calendar_part(cancels[0])
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(cal.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    # No agenda or reminder about a cancelled meeting.
    assert not [e for e in service.plan() if e.meeting == "heads-2020-09" and e.state == "upcoming"]
    feed = icalendar.Calendar.from_ical(
        current_feeds(store, service.project, clock.now())["project.ics"].data
    )
    seed = [e for e in feed.walk("VEVENT") if "heads-2020-09" in str(e["UID"])]
    assert seed and str(seed[0]["STATUS"]) == "CANCELLED"


MINUTES = """
minutes:
  final: true
  attendance: [school-1, lyceum-86]
  decisions:
    - "Итоги года подведены."
  approved_events:
    - id: next-year-start
      title: "Установочная встреча 2021-2022"
      when: {date: 2021-08-27}
      audience: all
  action_items:
    - id: report-lyceum
      title: "Сдать итоговый отчёт"
      responsible: {school: lyceum-86}
      due: 2021-06-15
  products:
    - "Сборник материалов проекта"
"""


def test_final_minutes_become_a_summary_and_feed_items(config_copy, store, tmp_path):
    path = config_copy / "meetings" / "2021-05-27-summing-up.yaml"
    path.write_text(path.read_text(encoding="utf-8") + MINUTES, encoding="utf-8")
    maildir = tmp_path / "mail"
    result = rehearse(config_copy, store, maildir, date(2021, 5, 27), date(2021, 8, 31))
    keys = [a.key for a in result.actions if a.what == "queued"]
    assert "summing-up-2021-05/summary" in keys
    assert "summing-up-2021-05/action_reminder/report-lyceum" in keys
    assert "event/next-year-start/event_reminder/2021-08-27" in keys
    summaries = [m for m in messages(maildir) if m["X-Cyclogram-Kind"] == "summary"]
    assert len(summaries) == 6
    assert "Итоги года подведены." in text_part(summaries[0])

    from scheduler.config import load_config

    project = load_config(config_copy).project
    feeds = current_feeds(store, project, at("2021-05-28T12:00"))
    lyceum = icalendar.Calendar.from_ical(feeds["schools/lyceum-86.ics"].data)
    school2 = icalendar.Calendar.from_ical(feeds["schools/school-2.ics"].data)
    assert any("Сдать итоговый отчёт" in str(e["SUMMARY"]) for e in lyceum.walk("VEVENT"))
    assert not any("Сдать итоговый отчёт" in str(e["SUMMARY"]) for e in school2.walk("VEVENT"))
    assert any("2021-2022" in str(e["SUMMARY"]) for e in school2.walk("VEVENT"))


def test_a_broken_edit_is_reported_and_the_last_good_model_kept(config_copy, store, edit, caplog):
    service = Service(config_copy, store, FixedClock(at("2020-09-01T12:00")))
    good = service.load().project
    edit(SEED, "end: 2020-09-25 12:00", "end: 2020-09-25 08:00")
    with caplog.at_level(logging.ERROR, logger="cyclogram.service"):
        assert service.reload() is False
    assert service.project is good
    assert "end is not after start" in caplog.text and "keeping the last good configuration" in caplog.text
    edit(SEED, "end: 2020-09-25 08:00", "end: 2020-09-25 12:30")
    assert service.reload() is True
    assert service.project.meeting("heads-2020-09").end.minute == 30


def test_minutes_made_final_late_send_the_summary_at_once(config_copy, store):
    clock = FixedClock(at("2021-06-10T12:00"))
    service = Service(config_copy, store, clock)
    service.load()
    service.due(catching_up=True)
    assert "summing-up-2021-05/summary" not in store.mailing_states()  # waiting for its minutes
    path = config_copy / "meetings" / "2021-05-27-summing-up.yaml"
    path.write_text(path.read_text(encoding="utf-8") + MINUTES, encoding="utf-8")
    assert service.reload()
    queued = [a for a in service.due() if a.what == "queued"]
    assert [a.key for a in queued] == ["summing-up-2021-05/summary"]
    assert "late" in queued[0].detail
