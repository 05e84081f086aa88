"""VTIMEZONEs read the Outlook way (latest blocks, RDATE ignored) and the RFC way give zoneinfo's offsets."""

from __future__ import annotations

import functools
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import vobject
from dateutil.rrule import rrulestr
from dateutil.tz import tzical
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Component, Event, Timezone

from scheduler.calendar import (
    SerialCache,
    _tz_spans,
    feed_bytes,
    key_event,
    meeting_event,
    wrap_calendar,
)
from scheduler.config import LoadedConfig, load_config
from scheduler.i18n import format_span, zone_label
from scheduler.imip import imip_template
from scheduler.model import DateRange, Project
from scheduler.store import SQLiteStore
from scheduler.timezones import _parse_tzid, assign_eras, era_of, transitions, vtimezone, vtimezone_for
from tests.readers import (
    all_readers_agree,
    available_readers,
    missing_readers,
    outlook_check,
    outlook_offset,
    read_with,
    require_every_reader,
)


def _rdate_repeats_dtstart(block: Component) -> bool:
    """An RDATE only repeats the onset (for readers that take onsets from RDATE alone): no other dates."""
    return [d.dt for d in block["RDATE"].dts] == [block["DTSTART"].dt]


def _moments(zone: str, days: list[date], hours: tuple[int, ...] = (0, 10, 23)) -> list[datetime]:
    return [datetime(d.year, d.month, d.day, h) for d in days for h in hours]


def _year_days(year: int) -> list[date]:
    return [date(year, 9, 1) + timedelta(days=i) for i in range(0, 365, 3)]


@pytest.mark.parametrize(
    ("zone", "first", "last"),
    [
        ("Europe/Moscow", date(2020, 9, 1), date(2021, 8, 31)),
        ("Europe/Berlin", date(2020, 9, 1), date(2021, 8, 31)),
        ("America/New_York", date(2020, 9, 1), date(2021, 8, 31)),
        ("Australia/Sydney", date(2020, 9, 1), date(2021, 8, 31)),
        ("Asia/Yekaterinburg", date(2020, 9, 1), date(2021, 8, 31)),
    ],
)
def test_outlook_reader_gets_zoneinfo_offset_at_every_event(zone: str, first: date, last: date) -> None:
    tz = vtimezone(zone, first, last)
    zi = ZoneInfo(zone)
    for local in _moments(zone, _year_days(first.year)):
        # skip the ambiguous and missing hours of a DST change: no calendar puts a meeting there
        if (
            local.replace(tzinfo=zi).utcoffset()
            != (local + timedelta(hours=1)).replace(tzinfo=zi).utcoffset()
        ):
            continue
        assert outlook_offset(tz, local) == local.replace(tzinfo=zi).utcoffset(), (zone, local)


def test_moscow_is_one_standard_block_at_plus_three() -> None:
    tz = vtimezone("Europe/Moscow", date(2020, 9, 1), date(2021, 8, 31))
    blocks = tz.subcomponents
    assert [b.name for b in blocks] == ["STANDARD"]
    assert blocks[0]["TZOFFSETTO"].td == timedelta(hours=3)
    assert _rdate_repeats_dtstart(blocks[0])


def test_icalendar_default_would_mislead_outlook() -> None:
    """The reason for this module: icalendar's own VTIMEZONE gives Outlook +4 for Moscow in 2020."""
    default = Timezone.from_tzid("Europe/Moscow")
    assert outlook_offset(default, datetime(2020, 9, 25, 10)) != timedelta(hours=3)


def test_berlin_has_yearly_rules_on_both_sides() -> None:
    tz = vtimezone("Europe/Berlin", date(2020, 9, 1), date(2021, 8, 31))
    rules = {b.name: b["RRULE"].to_ical().decode() for b in tz.subcomponents}
    assert "BYMONTH=3" in rules["DAYLIGHT"] and "BYDAY=-1SU" in rules["DAYLIGHT"]
    assert "BYMONTH=10" in rules["STANDARD"] and "BYDAY=-1SU" in rules["STANDARD"]
    assert outlook_offset(tz, datetime(2021, 1, 15, 10)) == timedelta(hours=1)
    assert outlook_offset(tz, datetime(2021, 7, 15, 10)) == timedelta(hours=2)


def _wrap(tz: Timezone) -> str:
    cal = Calendar()
    cal.add("PRODID", "-//test//EN")
    cal.add("VERSION", "2.0")
    cal.add_component(tz)
    return cal.to_ical().decode()


@pytest.mark.parametrize(
    ("zone", "first", "last", "probes"),
    [
        # 2012 in Moscow was +4: readers that apply the whole component must still get it right
        (
            "Europe/Moscow",
            date(2012, 3, 1),
            date(2021, 8, 31),
            [datetime(2012, 5, 10, 10), datetime(2013, 1, 10, 10), datetime(2020, 9, 25, 10)],
        ),
        (
            "Europe/Moscow",
            date(2010, 1, 1),
            date(2021, 8, 31),
            [
                datetime(2010, 1, 10, 10),
                datetime(2010, 7, 10, 10),
                datetime(2011, 7, 1, 10),
                datetime(2021, 1, 1),
            ],
        ),
        (
            "Europe/Berlin",
            date(2020, 9, 1),
            date(2021, 8, 31),
            [datetime(2020, 9, 25, 10), datetime(2020, 12, 1, 10), datetime(2021, 4, 1, 10)],
        ),
        (
            "America/New_York",
            date(2005, 1, 1),
            date(2021, 8, 31),
            [
                datetime(2005, 3, 20, 10),
                datetime(2006, 4, 10, 10),
                datetime(2007, 3, 20, 10),
                datetime(2020, 11, 2),
            ],
        ),
    ],
)
def test_rfc_readers_get_history_right(zone: str, first: date, last: date, probes: list[datetime]) -> None:
    tz = vtimezone(zone, first, last)
    zi = ZoneInfo(zone)
    text = _wrap(tz)
    readers = {
        "icalendar": Calendar.from_ical(text).walk("VTIMEZONE")[0].to_tz(lookup_tzid=False),
        "vobject": vobject.readOne(text).vtimezone.gettzinfo(),
        "dateutil": tzical(io.StringIO(text)).get(zone),
    }
    for name, reader in readers.items():
        for local in probes:
            assert local.replace(tzinfo=reader).utcoffset() == local.replace(tzinfo=zi).utcoffset(), (
                name,
                local,
            )


def test_outlook_gets_latest_rules_even_with_history() -> None:
    tz = vtimezone("Europe/Moscow", date(2012, 3, 1), date(2021, 8, 31))
    assert outlook_offset(tz, datetime(2020, 9, 25, 10)) == timedelta(hours=3)
    assert all(b.name == "STANDARD" and _rdate_repeats_dtstart(b) for b in tz.subcomponents)


def test_zone_without_changes_and_transition_scan() -> None:
    tz = vtimezone("Asia/Kolkata", date(2020, 9, 1), date(2021, 8, 31))
    assert [b["TZOFFSETTO"].td for b in tz.subcomponents] == [timedelta(hours=5, minutes=30)]
    moscow = transitions("Europe/Moscow", 2021)
    assert moscow[-1].at == datetime.fromisoformat("2014-10-25T22:00:00+00:00")
    assert moscow[-1].offset_to == timedelta(hours=3)


def test_every_reader_is_installed_on_ci() -> None:
    """scripts/bootstrap --system installs libical and ical.js; CI must not quietly read with fewer."""
    if not require_every_reader():
        pytest.skip("not on CI")
    assert not missing_readers()


# -- every era of every zone, through the calendar builder, read by every reader and by Outlook's rule ----

ERA_ZONES = [
    "Europe/Moscow",
    "Europe/Kaliningrad",
    "Europe/Samara",
    "Europe/Volgograd",
    "Europe/Astrakhan",
    "Europe/Saratov",
    "Europe/Ulyanovsk",
    "Europe/Kirov",
    "Europe/Simferopol",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Barnaul",
    "Asia/Tomsk",
    "Asia/Novosibirsk",
    "Asia/Chita",
    "Asia/Magadan",
    "Asia/Sakhalin",
    "Asia/Srednekolymsk",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Asia/Kolkata",
]


def _clear(zone: ZoneInfo, local: datetime) -> bool:
    aware = local.replace(tzinfo=zone)
    return aware.utcoffset() == aware.replace(fold=1).utcoffset()


def _items(zone_name: str, step: int = 131) -> tuple[list[Event], dict[str, str]]:
    """Hour-long items from 2010 to 2030 at 10:00, 00:30 and 23:30 local time, none in a skipped or
    repeated hour; with the UTC start each should have."""
    zone = ZoneInfo(zone_name)
    items, truth = [], {}
    day = datetime(2010, 1, 4)
    while day.year <= 2030:
        for hour, minute in ((10, 0), (23, 30)):
            local = day.replace(hour=hour, minute=minute)
            if not (_clear(zone, local) and _clear(zone, local + timedelta(hours=1))):
                continue
            start = local.replace(tzinfo=zone)
            ev = Event()
            uid = f"{zone_name}-{local:%Y%m%dT%H%M}@test"
            ev.add("UID", uid)
            ev.add("DTSTAMP", datetime(2020, 1, 1, tzinfo=UTC))
            ev.add("DTSTART", start)
            ev.add("DTEND", start + timedelta(hours=1))
            assign_eras(ev)
            items.append(ev)
            truth[uid] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        day += timedelta(days=step)
    return items, truth


@pytest.mark.parametrize("zone_name", ERA_ZONES)
def test_one_feed_over_twenty_years_reads_right_everywhere(example: LoadedConfig, zone_name: str) -> None:
    """One calendar holding 2010-2030 of a zone: each reader gives the real instant and Outlook's rule
    the real offset at every item, whatever era of the zone it falls in."""
    items, truth = _items(zone_name)
    data = wrap_calendar(
        _example_project(), items, method=None, name="n", description=None, language="ru"
    ).to_ical()
    rows = all_readers_agree(data)["icalendar"]
    wrong = [(uid, start, truth[uid]) for uid, _, start, _ in rows if start != truth[uid]]
    assert not wrong, wrong[:5]
    assert outlook_check(data) == 2 * len(items)


def test_moscow_2013_gets_a_tzid_of_its_era() -> None:
    assert era_of("Europe/Moscow", datetime(2013, 5, 10, 10)).tzid == "Europe/Moscow to 2014-10-26"
    assert era_of("Europe/Moscow", datetime(2020, 9, 25, 10)).tzid == "Europe/Moscow"
    # Winter 2010 was +3 as today: today's rules read it right, so it needs no TZID of its own.
    assert era_of("Europe/Moscow", datetime(2010, 1, 10, 10)).tzid == "Europe/Moscow"
    assert era_of("Europe/Berlin", datetime(2012, 7, 1, 10)).tzid == "Europe/Berlin"
    tz = vtimezone_for("Europe/Moscow to 2014-10-26", datetime(2013, 5, 10, 10), datetime(2013, 5, 10, 12))
    assert [b["TZOFFSETTO"].td for b in tz.subcomponents][-1] == timedelta(hours=4)
    assert outlook_offset(tz, datetime(2013, 5, 10, 10)) == timedelta(hours=4)


def test_feed_with_2013_and_2020_items_reads_right_in_outlook(example: LoadedConfig, tmp_path: Path) -> None:
    """One feed with a 2013 key event (Moscow at UTC+4) and a 2020 meeting (UTC+3): issue 9, item 2."""
    project = example.project
    old = project.all_events()[1].model_copy(
        update={"when": DateRange(start=datetime(2013, 11, 19, 14), end=datetime(2013, 11, 19, 16))}
    )
    now = datetime(2020, 9, 15, 7, tzinfo=UTC)
    state = SQLiteStore(tmp_path / "s.db").event_state("u", "f", now)
    items = [
        key_event(project, old, state, now, "ru"),
        meeting_event(project, project.meeting("heads-2020-09"), state, now, "ru"),
    ]
    for data in (
        feed_bytes(project, items, name="n", description=None, language="ru", cache=SerialCache()),
        wrap_calendar(project, items, method=None, name="n", description=None, language="ru").to_ical(),
    ):
        assert outlook_check(data) == 4
        rows = all_readers_agree(data)["icalendar"]
        assert sorted(r[2] for r in rows) == ["2013-11-19T10:00:00Z", "2020-09-25T07:00:00Z"]


def test_invitation_to_a_2013_meeting_reads_right_in_outlook(example: LoadedConfig, tmp_path: Path) -> None:
    project = example.project
    meeting = project.meeting("heads-2020-09").model_copy(
        update={"start": datetime(2013, 9, 25, 10), "end": datetime(2013, 9, 25, 12)}
    )
    now = datetime(2013, 9, 1, 7, tzinfo=UTC)
    state = SQLiteStore(tmp_path / "s.db").event_state("u", "f", now)
    data = imip_template(project, meeting, method="REQUEST", state=state, now=now, language="ru")
    assert outlook_check(data) == 2
    rows = all_readers_agree(data)["icalendar"]
    assert [r[2] for r in rows] == ["2013-09-25T06:00:00Z"]


def test_weekly_series_across_the_2014_change_reads_right() -> None:
    """A series from 2014 into 2015: RFC readers place every occurrence right; Outlook, which applies one
    rule to a whole series, reads the occurrences of the era the series ends in right."""
    zone = ZoneInfo("Europe/Moscow")
    ev = Event()
    ev.add("UID", "series@test")
    ev.add("DTSTAMP", datetime(2020, 1, 1, tzinfo=UTC))
    start = datetime(2014, 9, 4, 15, tzinfo=zone)
    ev.add("DTSTART", start)
    ev.add("DTEND", start + timedelta(hours=1))
    ev.add("RRULE", {"FREQ": "WEEKLY", "UNTIL": datetime(2015, 3, 26, 12, tzinfo=UTC)})
    ev.add("EXDATE", datetime(2014, 10, 30, 15, tzinfo=zone))
    assign_eras(ev)
    assert ev["DTSTART"].params["TZID"] == "Europe/Moscow"
    cal = Calendar()
    cal.add("PRODID", "-//test//EN")
    cal.add("VERSION", "2.0")
    (tzid, (lo, hi)), *_ = _tz_spans([ev]).items()
    cal.add_component(vtimezone_for(tzid, lo, hi))
    cal.add_component(ev)
    data = cal.to_ical()
    rows = all_readers_agree(data)["icalendar"]
    occurrences = [r[2] for r in rows if r[1] is not None]
    assert len(occurrences) == 29
    assert "2014-09-04T11:00:00Z" in occurrences and "2015-03-26T12:00:00Z" in occurrences
    assert "2014-10-30T12:00:00Z" not in occurrences and "2014-10-30T11:00:00Z" not in occurrences
    assert outlook_offset(cal.walk("VTIMEZONE")[0], datetime(2015, 1, 15, 15)) == timedelta(hours=3)
    # the occurrences from 26 October 2014 on (22 starts and their ends), not the earlier ones
    assert outlook_check(data) == 44


# -- the Russian "(МСК+N)" label: both offsets at that instant -------------------------------------------


@pytest.mark.parametrize(
    ("zone_name", "local", "label"),
    [
        ("Europe/Moscow", datetime(2013, 9, 25, 10), "МСК"),  # UTC+4 then, still Moscow time
        ("Europe/Moscow", datetime(2010, 7, 1, 10), "МСК"),  # summer time before 2011
        ("Europe/Moscow", datetime(2020, 9, 25, 10), "МСК"),
        ("Asia/Yekaterinburg", datetime(2013, 9, 25, 10), "МСК+2"),  # UTC+6 then
        ("Asia/Yekaterinburg", datetime(2020, 9, 25, 10), "МСК+2"),
        ("Europe/Kaliningrad", datetime(2013, 1, 10, 10), "МСК-1"),
        ("Europe/Samara", datetime(2010, 7, 1, 10), "МСК"),  # Samara kept Moscow time in 2010-2011
        ("Europe/Samara", datetime(2013, 1, 10, 10), "МСК"),
        ("Europe/Samara", datetime(2020, 1, 10, 10), "МСК+1"),
        ("Asia/Omsk", datetime(2013, 1, 10, 10), "МСК+3"),
        ("Europe/Astrakhan", datetime(2015, 1, 10, 10), "МСК"),  # UTC+3 until March 2016
        ("Europe/Astrakhan", datetime(2017, 1, 10, 10), "МСК+1"),
        ("Europe/Volgograd", datetime(2019, 1, 10, 10), "МСК+1"),  # UTC+4 from 2018 to 2020
        ("Europe/Volgograd", datetime(2021, 1, 10, 10), "МСК"),
    ],
)
def test_moscow_label_from_both_offsets_at_the_instant(zone_name: str, local: datetime, label: str) -> None:
    moment = local.replace(tzinfo=ZoneInfo(zone_name))
    assert zone_label(moment, "ru") == label
    end = moment + timedelta(hours=2)
    assert format_span(moment, end, "ru").endswith(f"({label})")


def test_english_labels_keep_the_offset() -> None:
    assert zone_label(datetime(2013, 9, 25, 10, tzinfo=ZoneInfo("Europe/Moscow")), "en") == "MSK"
    assert zone_label(datetime(2010, 7, 1, 10, tzinfo=ZoneInfo("Europe/Moscow")), "en") == "MSD"
    assert zone_label(datetime(2013, 9, 25, 10, tzinfo=ZoneInfo("Asia/Yekaterinburg")), "en") == "UTC+6"


def test_readers_that_apply_the_vtimezone_notice_a_wrong_one() -> None:
    """The check has teeth: a VTIMEZONE that lies about Europe/Moscow (+05) is read by the readers that
    apply it (vobject, ical.js, libical) differently from those that use zoneinfo, and Outlook's rule
    reads +05 too."""
    text = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        b"BEGIN:VTIMEZONE\r\nTZID:Europe/Moscow\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        b"RDATE:19700101T000000\r\nTZOFFSETFROM:+0500\r\nTZOFFSETTO:+0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        b"BEGIN:VEVENT\r\nUID:lie@test\r\nDTSTAMP:20200101T000000Z\r\n"
        b"DTSTART;TZID=Europe/Moscow:20200925T100000\r\nDTEND;TZID=Europe/Moscow:20200925T120000\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    by_zoneinfo = read_with("icalendar", text)
    assert by_zoneinfo[0][2] == "2020-09-25T07:00:00Z"
    for name in available_readers():
        if name in ("vobject", "ical.js", "libical"):
            assert read_with(name, text)[0][2] == "2020-09-25T05:00:00Z", name
    with pytest.raises(AssertionError, match="readers disagree"):
        all_readers_agree(text)
    with pytest.raises(AssertionError, match="Outlook would show the wrong hour"):
        outlook_check(text)


def test_a_derived_tzid_names_its_era_by_itself() -> None:
    """A TZID read back from its text gives the same VTIMEZONE as the era that wrote it."""
    for zone_name, local in (
        ("Europe/Moscow", datetime(2013, 5, 10, 10)),
        ("America/Sao_Paulo", datetime(2018, 12, 10, 10)),
        ("Asia/Tehran", datetime(2015, 7, 1, 10)),
        ("America/Sao_Paulo", datetime(2025, 7, 1, 10)),
    ):
        era = era_of(zone_name, local)
        parsed = _parse_tzid(era.tzid, local.year)
        assert parsed == era, (zone_name, local)


# -- a property: any mix of zones, moments and series in one calendar ------------------------------------

_moment = st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2030, 12, 31))


@st.composite
def _calendar_items(draw: st.DrawFn) -> list[tuple[str, datetime, timedelta, str | None, int]]:
    """(zone, local start, length, weekly/monthly or None, count) for up to six items of one calendar."""
    out = []
    for _ in range(draw(st.integers(1, 6))):
        zone_name = draw(st.sampled_from(ERA_ZONES))
        local = draw(_moment).replace(second=0, microsecond=0)
        length = timedelta(minutes=draw(st.integers(15, 8 * 60)))
        freq = draw(st.sampled_from([None, None, "WEEKLY", "MONTHLY", "RDATE"]))
        out.append((zone_name, local, length, freq, draw(st.integers(2, 30))))
    return out


@functools.cache
def _example_project() -> Project:
    return load_config(Path(__file__).resolve().parent.parent / "config").project


@settings(max_examples=10, deadline=None)
@given(_calendar_items())
def test_any_mix_of_zones_and_years_reads_right(specs: list) -> None:
    items, truth = [], {}
    for n, (zone_name, local, length, freq, count) in enumerate(specs):
        zone = ZoneInfo(zone_name)
        assume(_clear(zone, local) and _clear(zone, local + length))
        start = local.replace(tzinfo=zone)
        ev = Event()
        uid = f"item-{n}@test"
        ev.add("UID", uid)
        ev.add("DTSTAMP", datetime(2020, 1, 1, tzinfo=UTC))
        ev.add("DTSTART", start)
        ev.add("DTEND", start + length)
        if freq == "RDATE":
            # added dates (DTSTART listed among them, see the test above), some in later eras
            added = [start + timedelta(days=97 * k) for k in range(count)]
            assume(all(_clear(zone, a.replace(tzinfo=None) + length) for a in added))
            assume(all(_clear(zone, a.replace(tzinfo=None)) for a in added))
            ev.add("RDATE", added)
        elif freq:
            # UNTIL as the model writes it: the last occurrence in UTC
            rule = rrulestr(f"FREQ={freq};COUNT={count}", dtstart=start)
            last = list(rule)[-1]
            assume(
                all(
                    _clear(zone, o.replace(tzinfo=None)) and _clear(zone, o.replace(tzinfo=None) + length)
                    for o in rule
                )
            )
            ev.add("RRULE", {"FREQ": freq, "UNTIL": last.astimezone(UTC)})
        assign_eras(ev)
        items.append(ev)
        truth[uid] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = wrap_calendar(
        _example_project(), items, method=None, name="n", description=None, language="ru"
    ).to_ical()
    rows = all_readers_agree(data)["icalendar"]
    for uid, rid, start, _ in rows:
        if rid is None:
            assert start == truth[uid], (uid, start, truth[uid])
    outlook_check(data)


def test_each_calendar_is_read_with_its_own_vtimezones() -> None:
    """The same derived TZID covers another span in another calendar: readers must not keep the first
    one they met (icalendar does, process-wide, unless told to forget)."""
    zone = ZoneInfo("America/Sao_Paulo")

    def calendar(*starts: datetime) -> bytes:
        items = []
        for n, local in enumerate(starts):
            ev = Event()
            ev.add("UID", f"sp-{n}@test")
            ev.add("DTSTAMP", datetime(2020, 1, 1, tzinfo=UTC))
            ev.add("DTSTART", local.replace(tzinfo=zone))
            ev.add("DTEND", local.replace(tzinfo=zone) + timedelta(hours=1))
            assign_eras(ev)
            items.append(ev)
        return wrap_calendar(
            _example_project(), items, method=None, name="n", description=None, language="ru"
        ).to_ical()

    later = calendar(datetime(2014, 12, 1, 10))
    earlier = calendar(datetime(2012, 11, 3, 10), datetime(2014, 12, 1, 10))
    assert all_readers_agree(later)["icalendar"][0][2] == "2014-12-01T12:00:00Z"
    starts = sorted(r[2] for r in all_readers_agree(earlier)["icalendar"])
    assert starts == ["2012-11-03T12:00:00Z", "2014-12-01T12:00:00Z"]


def _series(uid: str, **props: object) -> Event:
    zone = ZoneInfo("Asia/Yekaterinburg")
    start = datetime(2013, 10, 1, 15, tzinfo=zone)
    ev = Event()
    ev.add("UID", uid)
    ev.add("DTSTAMP", datetime(2020, 1, 1, tzinfo=UTC))
    ev.add("DTSTART", start)
    ev.add("DTEND", start + timedelta(hours=1))
    for name, days in props.items():
        if name == "RRULE":
            ev.add("RRULE", days)
        else:
            ev.add(name, [start + timedelta(days=d) for d in days])  # type: ignore[union-attr]
    assign_eras(ev)
    return ev


def test_series_with_added_and_excluded_dates_read_alike() -> None:
    """RRULE with RDATE and EXDATE, and RDATE alone when DTSTART is among them: every reader, same set.

    With RDATE alone and DTSTART not listed, `ical` and ical.js (Thunderbird) leave DTSTART out of the
    set while RFC 5545 puts it in: a calendar must list it, and the readers here catch one that does not.
    """
    good = [
        _series("both@test", RRULE={"FREQ": "WEEKLY", "COUNT": 5}, RDATE=[2], EXDATE=[7]),
        _series("listed@test", RDATE=[0, 10, 400]),
    ]
    cal = wrap_calendar(_example_project(), good, method=None, name="n", description=None, language="ru")
    rows = all_readers_agree(cal.to_ical())["icalendar"]
    both = sorted(r[2] for r in rows if r[0] == "both@test" and r[1])
    assert both == [
        "2013-10-01T09:00:00Z",  # UTC+6 in 2013
        "2013-10-03T09:00:00Z",
        "2013-10-15T09:00:00Z",
        "2013-10-22T09:00:00Z",
        "2013-10-29T09:00:00Z",
    ]
    listed = sorted(r[2] for r in rows if r[0] == "listed@test" and r[1])
    assert listed == ["2013-10-01T09:00:00Z", "2013-10-11T09:00:00Z", "2014-11-05T10:00:00Z"]  # UTC+5
    assert outlook_check(cal.to_ical()) > 0
    unlisted = [_series("unlisted@test", RDATE=[10, 20])]
    data = wrap_calendar(_example_project(), unlisted, method=None, name="n", description=None, language="ru")
    if {"ical.js", "libical"} <= set(available_readers()):
        with pytest.raises(AssertionError, match="readers disagree"):
            all_readers_agree(data.to_ical())
