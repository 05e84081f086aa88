"""VTIMEZONEs read the Outlook way (latest blocks, RDATE ignored) and the RFC way give zoneinfo's offsets."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import vobject
from dateutil.rrule import rrulestr
from dateutil.tz import tzical
from icalendar import Calendar, Timezone

from scheduler.timezones import transitions, vtimezone
from tests.readers import missing_readers, require_every_reader


def outlook_offset(tz: Timezone, local: datetime) -> timedelta:
    """What Outlook does: keep the STANDARD and DAYLIGHT blocks with the latest DTSTART, drop RDATE,
    and apply their yearly RRULEs; without a recurring DAYLIGHT block, the STANDARD offset is all there is."""
    latest: dict[str, object] = {}
    for block in tz.subcomponents:
        start = block["DTSTART"].dt
        if block.name not in latest or start > latest[block.name]["DTSTART"].dt:  # type: ignore[index]
            latest[block.name] = block
    std, dst = latest["STANDARD"], latest.get("DAYLIGHT")
    std_off = std["TZOFFSETTO"].td  # type: ignore[index]
    if dst is None or "RRULE" not in dst or "RRULE" not in std:  # type: ignore[operator]
        return std_off

    def onset(block: object) -> datetime:
        rule = rrulestr(block["RRULE"].to_ical().decode(), dtstart=block["DTSTART"].dt)  # type: ignore[index]
        return next(d for d in rule if d.year == local.year)

    dst_on, std_on = onset(dst), onset(std)
    dst_off = dst["TZOFFSETTO"].td  # type: ignore[index]
    in_dst = dst_on <= local < std_on if dst_on < std_on else not (std_on <= local < dst_on)
    return dst_off if in_dst else std_off


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
    assert "RDATE" not in blocks[0]


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
    assert all(b.name == "STANDARD" and "RDATE" not in b for b in tz.subcomponents)


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
