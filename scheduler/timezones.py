"""VTIMEZONE components that Outlook, Google, Apple and Thunderbird all read to the right offset."""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard, vRecur

__all__ = ["Transition", "transitions", "vtimezone"]

# Outlook builds its time zone from the latest STANDARD and the latest DAYLIGHT block only, repeating
# them yearly by their RRULE, and ignores RDATE. icalendar's own VTIMEZONE lists every offset once with
# RDATEs, so for Europe/Moscow Outlook picks the STANDARD block of 2011 (+04) and shows meetings an hour
# late. Here the rules in force for the events' period always come last, as RRULE blocks (zones with
# daylight saving) or one plain STANDARD (fixed zones), and earlier history precedes them as one block per
# transition, so readers that apply the whole component (RFC 5545) still get historical offsets right.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Transition:
    """One change of a zone's offset: the UTC instant and the offsets around it."""

    at: datetime  # UTC
    offset_from: timedelta
    offset_to: timedelta
    dst: bool
    name: str

    @property
    def local_start(self) -> datetime:
        """The onset as RFC 5545 writes DTSTART: naive local time in the offset before the change."""
        return (self.at + self.offset_from).replace(tzinfo=None)


def _state(zone: ZoneInfo, instant: datetime) -> tuple[timedelta, bool, str]:
    local = instant.astimezone(zone)
    return local.utcoffset() or timedelta(), bool(local.dst()), local.tzname() or ""


@lru_cache(maxsize=64)
def transitions(zone_name: str, until_year: int) -> tuple[Transition, ...]:
    """Every change of offset, DST flag or name from 1970 to the end of `until_year`, from zoneinfo."""
    zone = ZoneInfo(zone_name)
    end = datetime(until_year + 1, 1, 1, tzinfo=UTC)
    out: list[Transition] = []
    step = timedelta(days=1)
    t = _EPOCH
    prev = _state(zone, t)
    while t < end:
        nxt = t + step
        cur = _state(zone, nxt)
        if cur != prev:
            lo, hi = t, nxt  # bisect to the second: prev holds at lo, cur at hi
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if _state(zone, mid) == prev:
                    lo = mid
                else:
                    hi = mid
            at = hi.replace(microsecond=0)
            if prev[0] != cur[0] or prev[1] != cur[1]:
                out.append(Transition(at, prev[0], cur[0], cur[1], cur[2]))
            prev = cur
        t = nxt
    return tuple(out)


def _week_of_month(day: date) -> int:
    """1..4 counting from the start, or -1 for the last such weekday of the month."""
    if day.day + 7 > _calendar.monthrange(day.year, day.month)[1]:
        return -1
    return (day.day - 1) // 7 + 1


def _rule_day(year: int, month: int, weekday: int, week: int) -> date:
    days = [
        d
        for d in _calendar.Calendar().itermonthdates(year, month)
        if d.month == month and d.weekday() == weekday
    ]
    return days[week - 1] if week > 0 else days[week]


def _rule_key(t: Transition) -> tuple[int, int, int, object, timedelta, timedelta]:
    local = t.local_start
    return (
        local.month,
        local.weekday(),
        _week_of_month(local.date()),
        local.time(),
        t.offset_from,
        t.offset_to,
    )


def _matches(t: Transition, key: tuple[int, int, int, object, timedelta, timedelta]) -> bool:
    return _rule_key(t) == key and t.local_start.date() == _rule_day(
        t.local_start.year, key[0], key[1], key[2]
    )


def _block(t: Transition, daylight: bool) -> TimezoneStandard | TimezoneDaylight:
    block = TimezoneDaylight() if daylight else TimezoneStandard()
    block.add("DTSTART", t.local_start)
    block.add("TZOFFSETFROM", t.offset_from)
    block.add("TZOFFSETTO", t.offset_to)
    block.add("TZNAME", t.name or _offset_name(t.offset_to))
    return block


def _offset_name(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}" + (f"{m:02d}" if m else "")


def vtimezone(zone_name: str, first: datetime | date, last: datetime | date) -> Timezone:
    """A VTIMEZONE for events between `first` and `last` whose latest blocks carry the rules then in force."""
    lo = first if isinstance(first, datetime) else datetime(first.year, first.month, first.day)
    hi = last if isinstance(last, datetime) else datetime(last.year, last.month, last.day)
    zone = ZoneInfo(zone_name)
    lo = lo.replace(tzinfo=zone) if lo.tzinfo is None else lo
    hi = hi.replace(tzinfo=zone) if hi.tzinfo is None else hi
    lo_utc, hi_utc = lo.astimezone(UTC), hi.astimezone(UTC)
    horizon = hi_utc + timedelta(days=400)
    every = [t for t in transitions(zone_name, horizon.year) if t.at <= horizon]
    base = [t for t in every if t.at <= lo_utc][-1:]
    window = base + [t for t in every if t.at > lo_utc]

    tz = Timezone()
    tz.add("TZID", zone_name)
    if not window:  # no change since 1970: one block, valid for ever
        offset = lo.utcoffset() or timedelta()
        tz.add_component(_block(Transition(_EPOCH - offset, offset, offset, False, lo.tzname() or ""), False))
        return tz

    # Daylight saving in force around the end of the period: yearly RRULE blocks, checked against zoneinfo
    # backwards for as long as they hold; what precedes them is written out one transition per block.
    recent = [t for t in window if hi_utc - timedelta(days=400) < t.at]
    to_dst = [t for t in recent if t.dst]
    to_std = [t for t in recent if not t.dst]
    if to_dst and to_std and any(t.at > hi_utc for t in recent):
        keys = {True: _rule_key(to_dst[-1]), False: _rule_key(to_std[-1])}
        cut = len(window)
        while cut > 0 and _matches(window[cut - 1], keys[window[cut - 1].dst]):
            cut -= 1
        ruled = window[cut:]
        explicit = window[:cut]
        for t in explicit:
            tz.add_component(_block(t, t.dst))
        for daylight in (True, False):
            first_of_kind = next(t for t in ruled if t.dst is daylight)
            block = _block(first_of_kind, daylight)
            month, weekday, week = keys[daylight][:3]
            block.add("RRULE", vRecur(freq="YEARLY", bymonth=month, byday=f"{week}{_DAYS[weekday]}"))
            tz.add_component(block)
        return tz

    # A fixed offset now (Moscow since 2014): every block is STANDARD, so the last one, in force for the
    # events, is the one Outlook reads; the offsets of earlier blocks stay right for RFC readers.
    for t in window:
        tz.add_component(_block(t, False))
    return tz
