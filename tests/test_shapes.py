"""Plans of every shape: each validates, builds feeds that every reader and Outlook read alike, and mails."""

from __future__ import annotations

import email
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.changes import Change
from scheduler.config import LoadedConfig, load_config
from scheduler.feeds import current_feeds
from scheduler.mailings import compose
from scheduler.plan import build_plan
from scheduler.store import SQLiteStore
from scheduler.synth import DST_ZONES, FEATURES, RUSSIAN_ZONES, Shape, SynthSpec, synth_files, write_config
from scheduler.transport import PermanentError, SMTPSettings, SMTPTransport
from scheduler.validation import validate_all
from tests.conftest import EXAMPLE
from tests.readers import all_readers_agree, outlook_check
from tests.smtp_server import Recorder, SMTPServer

# --- what every configuration must survive ----------------------------------------------------------------


def _calendar_part(message: bytes) -> bytes | None:
    msg = email.message_from_bytes(message, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            return part.get_payload(decode=True)
    return None


def exercise(loaded: LoadedConfig, *, readers_on: int = 2) -> dict[str, Any]:
    """Build every feed and compose every mailing of every meeting; check what readers and Outlook see.

    Every reader on the project feed and on `readers_on` other feeds (and on one invitation per
    meeting); the Outlook rule on every feed and every calendar part. Returns what was built, for the
    caller's own checks.
    """
    project = loaded.project
    now = datetime.combine(project.settings.school_year.first_day, datetime.min.time(), tzinfo=UTC)
    now -= timedelta(days=30)
    store = SQLiteStore(":memory:")
    try:
        feeds = current_feeds(store, project, now)
        assert "project.ics" in feeds
        read = ["project.ics", *sorted(p for p in feeds if p != "project.ics")[:readers_on]]
        for path, feed in feeds.items():
            outlook_check(feed.data)
            if path in read:
                all_readers_agree(feed.data)
        mail: dict[str, list[bytes]] = {}
        for meeting in project.meetings:
            kinds = (
                ["cancellation"] if meeting.status == "cancelled" else ["invitation", "agenda", "reminder"]
            )
            if meeting.minutes and meeting.minutes.final:
                kinds.append("summary")
            for kind in kinds:
                messages = compose(loaded, kind, meeting=meeting.id, store=store, now=now)
                assert len(messages) == len(project.recipients(meeting.audience)), (meeting.id, kind)
                mail.setdefault(kind, []).extend(m.message for m in messages)
                if kind in ("invitation", "cancellation") and messages:
                    part = _calendar_part(messages[0].message)
                    assert part is not None
                    outlook_check(part)
                    all_readers_agree(part)
            if meeting.status != "cancelled":
                moved = [Change("place", "A", "B"), Change("start", now.isoformat(), None)]
                update = compose(loaded, "update", meeting=meeting.id, store=store, now=now, changes=moved)
                mail.setdefault("update", []).extend(m.message for m in update)
        for entry in build_plan(project, now):
            if entry.kind in ("action_reminder", "event_reminder"):
                messages = compose(loaded, entry.kind, entry=entry, store=store, now=now)
                mail.setdefault(entry.kind, []).extend(m.message for m in messages)
        for messages in mail.values():
            for data in messages:
                parsed = email.message_from_bytes(data, policy=policy.default)
                assert parsed["Subject"] and parsed["To"] and not parsed.defects
        return {"feeds": feeds, "mail": mail}
    finally:
        store.close()


def _write(tmp: Path, spec: SynthSpec) -> LoadedConfig:
    write_config(tmp, synth_files(spec), force=True)
    return validate_all(tmp)


# --- the property ------------------------------------------------------------------------------------------

# Years weighted to the eras that broke clients: Moscow's UTC+4 (2011-2014) and the regional changes of 2016.
years = st.one_of(st.sampled_from([2010, 2011, 2012, 2013, 2014, 2016, 2020]), st.integers(2010, 2030))
zones = st.sampled_from(RUSSIAN_ZONES + DST_ZONES)
features = st.sets(st.sampled_from(sorted(set(FEATURES) - {"no-minutes", "draft-minutes"}))).map(frozenset)
minutes = st.sampled_from([frozenset(), frozenset({"no-minutes"}), frozenset({"draft-minutes"})])


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    year=years,
    zone=zones,
    school_zones=st.lists(zones, min_size=1, max_size=3).map(tuple),
    chosen=features,
    stage=minutes,
    seed=st.integers(0, 2**16),
    schools=st.integers(1, 6),
    teams=st.integers(0, 2),
    meetings=st.integers(1, 4),
    events=st.integers(0, 8),
    english=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_any_shape_validates_builds_and_mails(
    tmp_path_factory, year, zone, school_zones, chosen, stage, seed, schools, teams, meetings, events, english
):
    shape = Shape(features=chosen | stage, zone=zone, school_zones=school_zones)
    spec = SynthSpec(
        schools=schools, teams=teams, meetings=meetings, events=events, seed=seed, year=year,
        english_share=english, shape=shape,
    )  # fmt: skip
    loaded = _write(tmp_path_factory.mktemp("shape"), spec)
    exercise(loaded, readers_on=1)


@pytest.mark.parametrize(
    ("zone", "year"),
    [
        ("Europe/Moscow", 2010),  # summer time still kept; given up in March 2011
        ("Europe/Moscow", 2013),  # UTC+4 all year
        ("Asia/Yekaterinburg", 2014),  # back by an hour on 26 October 2014
        ("Europe/Kaliningrad", 2016),
        ("Asia/Kamchatka", 2010),
        ("Asia/Tehran", 2014),  # daylight saving kept then, given up since
        ("Europe/Berlin", 2024),
        ("Australia/Sydney", 2020),  # summer time across the new year
    ],
)
def test_every_feature_at_once_in_eras_of_the_zone(tmp_path, zone, year):
    shape = Shape.parse("all", zone)
    loaded = _write(
        tmp_path, SynthSpec(schools=6, teams=2, meetings=6, events=12, seed=year, year=year, shape=shape)
    )
    exercise(loaded, readers_on=3)


def test_the_example_is_one_case_among_many():
    exercise(validate_all(EXAMPLE), readers_on=10)


def test_a_year_before_any_minutes(tmp_path):
    shape = Shape.parse("no-minutes")
    loaded = _write(tmp_path, SynthSpec(schools=4, teams=1, meetings=3, events=5, seed=1, shape=shape))
    assert not any(m.minutes for m in loaded.project.meetings)
    built = exercise(loaded)
    assert "summary" not in built["mail"] and "action_reminder" not in built["mail"]


# --- each shape, read back --------------------------------------------------------------------------------


def _rows(ics: bytes) -> dict[str, list[tuple[str | None, str, str]]]:
    rows: dict[str, list[tuple[str | None, str, str]]] = {}
    for uid, rid, start, end in all_readers_agree(ics)["icalendar"]:
        rows.setdefault(uid, []).append((rid, start, end))
    return rows


def _project_feed(loaded: LoadedConfig, path: str = "project.ics") -> bytes:
    store = SQLiteStore(":memory:")
    try:
        return current_feeds(store, loaded.project, datetime(2020, 8, 1, tzinfo=UTC))[path].data
    finally:
        store.close()


def _mail(loaded: LoadedConfig, kind: str, meeting: str, recipient: str) -> email.message.EmailMessage:
    store = SQLiteStore(":memory:")
    try:
        messages = compose(loaded, kind, meeting=meeting, store=store, now=datetime(2020, 9, 1, tzinfo=UTC))
    finally:
        store.close()
    found = next(m for m in messages if m.recipient == recipient)
    # A UTF-8 mailbox makes the header raw UTF-8 (RFC 6532): read the message as the text it is.
    return email.message_from_string(found.message.decode("utf-8"), policy=policy.default)  # type: ignore[return-value]


def _text(msg: email.message.EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


SEMINAR = "meetings/2021-01-28-network-seminar.yaml"


def test_an_all_day_meeting_is_dates_in_feeds_and_imip_and_mail_has_no_hours(config_copy, edit):
    edit(SEMINAR, "start: 2021-01-28 15:00", "start: 2021-01-28")
    edit(SEMINAR, "end: 2021-01-28 16:30", "end: 2021-01-29")
    loaded = load_config(config_copy)
    rows = _rows(_project_feed(loaded, "schools/school-1.ics"))
    uid = "meeting-network-seminar-2021-01@cyclogram.example.org"
    assert rows[uid] == [(None, "2021-01-28", "2021-01-30")]  # DTEND exclusive: two whole days
    vevent = icalendar.Calendar.from_ical(_project_feed(loaded, "schools/school-1.ics")).walk("VEVENT")
    seminar = next(v for v in vevent if str(v["UID"]) == uid)
    assert seminar["DTSTART"].params.get("VALUE") == "DATE"
    msg = _mail(loaded, "invitation", "network-seminar-2021-01", "head@school1.example.org")
    part = _calendar_part(msg.as_bytes())
    assert part is not None and _rows(part)[uid] == [(None, "2021-01-28", "2021-01-30")]
    text = _text(msg).replace("\u202f", " ")  # Babel writes a narrow no-break space before «г.»
    assert "Когда: 28 января 2021 г. – 29 января 2021 г." in text
    assert "00:00" not in text


def test_an_online_meeting_is_located_by_its_link(config_copy, edit):
    edit(SEMINAR, 'place:\n  name: "Средняя школа № 1"\n  address: "ул. Примерная, д. 1"\n', "")
    loaded = load_config(config_copy)
    cal = icalendar.Calendar.from_ical(_project_feed(loaded, "schools/school-1.ics"))
    seminar = next(v for v in cal.walk("VEVENT") if "network-seminar-2021-01" in str(v["UID"]))
    assert str(seminar["LOCATION"]) == "https://meet.example.org/network-seminar"
    text = _text(_mail(loaded, "invitation", "network-seminar-2021-01", "head@school1.example.org"))
    assert "Подключение: https://meet.example.org/network-seminar" in text
    assert "Где:" not in text


def test_a_meeting_past_midnight_reads_the_same_everywhere(config_copy, edit):
    edit(SEMINAR, "start: 2021-01-28 15:00", "start: 2021-01-28 20:00")
    edit(SEMINAR, "end: 2021-01-28 16:30", "end: 2021-01-29 02:00")
    edit(SEMINAR, 'start: "15:00"', 'start: "19:30"')
    edit(SEMINAR, 'end: "16:00"', 'end: "00:30"')
    edit(SEMINAR, 'start: "16:00"', 'start: "01:00"')
    edit(SEMINAR, 'end: "16:30"', 'end: "02:00"')
    loaded = load_config(config_copy)
    rows = _rows(_project_feed(loaded, "schools/school-1.ics"))
    assert rows["meeting-network-seminar-2021-01@cyclogram.example.org"] == [
        (None, "2021-01-28T17:00:00Z", "2021-01-28T23:00:00Z")
    ]
    text = _text(_mail(loaded, "agenda", "network-seminar-2021-01", "head@school1.example.org"))
    assert "19:30–00:30" in text and "01:00–02:00" in text


def test_a_school_in_another_zone_is_told_its_local_time(config_copy, edit):
    edit("participants.yaml", "    language: en ", "    timezone: Europe/Kaliningrad\n    language: en ")
    edit(
        "participants.yaml",
        '    short_name: "СШ № 2"\n',
        '    short_name: "СШ № 2"\n    timezone: Asia/Vladivostok\n',
    )
    loaded = load_config(config_copy)
    en = _text(_mail(loaded, "invitation", "heads-2020-09", "head@school37.example.org"))
    assert "10:00–12:00 MSK (09:00–11:00 your time)" in en
    ru = _text(_mail(loaded, "invitation", "heads-2020-09", "head@school2.example.org"))
    assert "10:00–12:00 МСК (17:00–19:00 по местному времени)" in ru
    moscow = _text(_mail(loaded, "invitation", "heads-2020-09", "head@school1.example.org"))
    assert "по местному времени" not in moscow and "10:00–12:00 (МСК)" in moscow


RECURRENCES = {
    "monthly-10th": ("{freq: monthly, by_month_day: 10, start: 2020-09-01, until: 2020-12-31}",
                     ["2020-09-10", "2020-10-10", "2020-11-10", "2020-12-10"]),
    "fortnight": ("{freq: weekly, interval: 2, by_day: TH, start: 2020-09-01, count: 4}",
                  ["2020-09-03", "2020-09-17", "2020-10-01", "2020-10-15"]),
    "last-thursday": ("{freq: monthly, by_day: last thursday, start: 2020-09-01, until: 2020-11-30,"
                      " exclude: [2020-10-29], rdates: [2020-11-05]}",
                      ["2020-09-24", "2020-11-05", "2020-11-26"]),
    "timed-series-over-dst": ("{freq: monthly, by_day: -1FR, start: 2020-09-01, count: 3, time: '10:00',"
                              " end_time: '11:00', exclude: [2020-10-30], rdates: [2020-12-04]}",
                              ["2020-09-25T07:00:00Z", "2020-11-27T07:00:00Z", "2020-12-04T07:00:00Z"]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RECURRENCES))
def test_recurrences_read_the_same_in_every_reader(config_copy, edit, name):
    when, expected = RECURRENCES[name]
    edit("cyclogram.yaml", "when: {date: 2020-12-10}", f"when: {when}")
    loaded = load_config(config_copy)
    data = _project_feed(loaded, "schools/school-2.ics")
    rows = _rows(data)
    series = rows["event-digital-workshop@cyclogram.example.org"]
    # the series' occurrences, and each added date as an event of its own (Outlook drops RDATE)
    starts = [start for rid, start, _ in series if rid is not None]
    starts += [rows[uid][0][1] for uid in rows if uid.startswith("event-digital-workshop-")]
    assert sorted(starts) == expected
    assert not any("RDATE" in v for v in icalendar.Calendar.from_ical(data).walk("VEVENT"))
    outlook_check(data)


def test_a_range_of_months_is_one_tentative_block(config_copy, edit):
    edit("cyclogram.yaml", "when: {month: 2021-02}", "when: {month: 2020-10, end_month: 2020-11}")
    data = _project_feed(load_config(config_copy))
    assert _rows(data)["event-interim-reports@cyclogram.example.org"] == [(None, "2020-10-01", "2020-12-01")]


# --- Cyrillic mailboxes: SMTPUTF8 where the server offers it ------------------------------------------------


class _UTF8Server(SMTPServer):
    def __init__(self, handler: Recorder, *, smtputf8: bool):
        super().__init__(handler)
        self.smtputf8 = smtputf8

    def _factory(self):  # type: ignore[override]
        return lambda: SMTP(self.handler, hostname="localhost", enable_SMTPUTF8=self.smtputf8)


async def test_a_cyrillic_mailbox_goes_with_smtputf8_or_fails_with_a_reason(config_copy, edit):
    edit("participants.yaml", "email: head@school2.example.org", "email: завуч@пример.рф")
    loaded = load_config(config_copy)
    msg = _mail(loaded, "invitation", "heads-2020-09", "завуч@пример.рф")
    assert msg["To"].addresses[0].addr_spec == "завуч@пример.рф"
    store = SQLiteStore(":memory:")
    now = datetime(2020, 9, 1, tzinfo=UTC)
    data = next(m.message for m in compose(loaded, "invitation", meeting="heads-2020-09", store=store, now=now)
                if m.recipient == "завуч@пример.рф")  # fmt: skip
    store.close()
    for offered in (True, False):
        rec = Recorder()
        with _UTF8Server(rec, smtputf8=offered) as server:
            conn = await SMTPTransport(SMTPSettings("127.0.0.1", server.port)).connect()
            try:
                if offered:
                    await conn.send("gcro@example.org", "завуч@пример.рф", data, "k")
                else:
                    with pytest.raises(PermanentError, match="SMTPUTF8"):
                        await conn.send("gcro@example.org", "завуч@пример.рф", data, "k")
                    # the next recipient, with an ASCII address, still goes through the same session
                    await conn.send("gcro@example.org", "head@school1.example.org", data, "k2")
            finally:
                await conn.close()
        if offered:
            assert rec.accepted[0].recipients == ["завуч@пример.рф"]
            back = email.message_from_string(rec.accepted[0].data.decode("utf-8"), policy=policy.default)
            assert back["To"].addresses[0].addr_spec == "завуч@пример.рф"
        else:
            assert [a.recipients for a in rec.accepted] == [["head@school1.example.org"]]


def test_shape_names_are_checked():
    from scheduler.errors import CyclogramError

    with pytest.raises(CyclogramError, match="unknown shape"):
        Shape.parse("rrule,lunar")
    assert Shape.parse("all").has("night") and not Shape.parse("all").has("no-minutes")
    assert date(2020, 9, 1)  # the default shape is the example's: see test_synth for its bytes


def test_a_meeting_moved_to_whole_days_is_announced_by_its_days(config_copy, edit):
    from scheduler.changes import describe_changes, meeting_snapshot

    before = meeting_snapshot(load_config(config_copy).project, load_config(config_copy).project.meeting(
        "network-seminar-2021-01"))  # fmt: skip
    edit(SEMINAR, "start: 2021-01-28 15:00", "start: 2021-01-28")
    edit(SEMINAR, "end: 2021-01-28 16:30", "end: 2021-01-29")
    loaded = load_config(config_copy)
    changes = describe_changes(
        before, meeting_snapshot(loaded.project, loaded.project.meeting("network-seminar-2021-01"))
    )
    store = SQLiteStore(":memory:")
    try:
        messages = compose(
            loaded, "update", meeting="network-seminar-2021-01", store=store,
            now=datetime(2021, 1, 10, tzinfo=UTC), changes=changes,
        )  # fmt: skip
    finally:
        store.close()
    text = _text(email.message_from_bytes(messages[0].message, policy=policy.default)).replace("\u202f", " ")
    assert "28 января 2021 г., 15:00–16:30 (МСК)" in text
    assert "28 января 2021 г. – 29 января 2021 г." in text
    assert "00:00" not in text


def test_a_key_event_reminder_gives_the_schools_local_time_too(config_copy, edit):
    edit(
        "participants.yaml",
        '    short_name: "СШ № 2"\n',
        '    short_name: "СШ № 2"\n    timezone: Asia/Vladivostok\n',
    )
    loaded = load_config(config_copy)
    now = datetime(2020, 11, 1, tzinfo=UTC)
    entry = next(e for e in build_plan(loaded.project, now) if e.event == "network-seminar")
    store = SQLiteStore(":memory:")
    try:
        messages = {
            m.recipient: m for m in compose(loaded, "event_reminder", entry=entry, store=store, now=now)
        }
    finally:
        store.close()

    def text(address: str) -> str:
        return _text(email.message_from_bytes(messages[address].message, policy=policy.default))

    assert "14:00–16:00 МСК (21:00–23:00 по местному времени)" in text("head@school2.example.org")
    assert "14:00–16:00 (МСК)" in text("head@school1.example.org")
