"""VTIMEZONE components that Outlook, Google, Apple and Thunderbird all read to the right offset."""

from __future__ import annotations

import calendar as _calendar
import hashlib
import os
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Component, Timezone, TimezoneDaylight, TimezoneStandard, vRecur

__all__ = [
    "Era",
    "Transition",
    "assign_eras",
    "era_of",
    "transitions",
    "vtimezone",
    "vtimezone_for",
    "zone_mark",
]

# Outlook builds its time zone from the latest STANDARD and the latest DAYLIGHT block only, repeating
# them yearly by their RRULE, and ignores RDATE. icalendar's own VTIMEZONE lists every offset once with
# RDATEs, so for Europe/Moscow Outlook picks the STANDARD block of 2011 (+04) and shows meetings an hour
# late. Here the rules in force for the events' period always come last, as RRULE blocks (zones with
# daylight saving) or one plain STANDARD (fixed zones), and earlier history precedes them as one block per
# transition, so readers that apply the whole component (RFC 5545) still get historical offsets right.
# Since only the last rules count for Outlook, a moment of an earlier era of a zone (Moscow at UTC+4 in
# 2011-2014) is written under a TZID of its own whose VTIMEZONE stops at the end of that era.

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


# -- eras: which rules a moment's VTIMEZONE may end with -------------------------------------------------

HORIZON_YEAR = 2040  # zones are scanned at least this far, so rules in force "from now on" are known


@dataclass(frozen=True)
class Era:
    """How the moments of one TZID are written: the zone's transitions before `cutoff` (all if None),
    ending in yearly DST rules (`ruled`) or in one fixed offset."""

    zone: str
    tzid: str
    cutoff: datetime | None  # UTC instant of the first transition left out
    ruled: bool


_ERAS: dict[str, Era] = {}  # every derived TZID handed out in this process, for building its VTIMEZONE


def _horizon(year: int) -> int:
    return max(HORIZON_YEAR, year + 2)


def _initial(zone_name: str) -> timedelta:
    return ZoneInfo(zone_name).utcoffset(_EPOCH.replace(tzinfo=None)) or timedelta()


def _pair(trs: tuple[Transition, ...], cut: int) -> tuple[Transition, Transition] | None:
    """The DST onset and the return to standard time just before index `cut`, if they make a yearly pair."""
    if cut < 2:
        return None
    a, b = trs[cut - 2], trs[cut - 1]
    if a.dst == b.dst or b.at - a.at > timedelta(days=366):
        return None
    dst, std = (a, b) if a.dst else (b, a)
    if dst.offset_to != std.offset_from or std.offset_to != dst.offset_from:
        return None
    return dst, std


def _preferred_ruled(trs: tuple[Transition, ...], cut: int, horizon: int) -> bool:
    """Rules end the VTIMEZONE when DST was still observed then: before a cutoff, or up to the horizon."""
    if _pair(trs, cut) is None:
        return False
    return cut < len(trs) or trs[-1].at > datetime(horizon + 1, 1, 1, tzinfo=UTC) - timedelta(days=400)


def _onset(t: Transition, year: int) -> datetime:
    month, weekday, week, moment = _rule_key(t)[:4]
    return datetime.combine(_rule_day(year, month, weekday, week), moment)  # type: ignore[arg-type]


def _outlook_reads(
    zone_name: str, trs: tuple[Transition, ...], cut: int, ruled: bool, local: datetime
) -> timedelta:
    """The offset Outlook gives `local` when the VTIMEZONE ends with what precedes `cut`: it keeps only the
    latest STANDARD and DAYLIGHT blocks and repeats their yearly rules, ignoring RDATE."""
    if ruled:
        pair = _pair(trs, cut)
        assert pair is not None
        dst, std = pair
        on, off = _onset(dst, local.year), _onset(std, local.year)
        in_dst = on <= local < off if on < off else not (off <= local < on)
        return dst.offset_to if in_dst else std.offset_to
    return trs[cut - 1].offset_to if cut else _initial(zone_name)


def _tzid(zone_name: str, trs: tuple[Transition, ...], cut: int, ruled: bool, horizon: int) -> str:
    name = zone_name
    if cut < len(trs):
        # Named by the local date the era ended, so the same moment always gets the same TZID.
        name = f"{zone_name} to {trs[cut].local_start.date().isoformat()}"
    if ruled != _preferred_ruled(trs, cut, horizon):
        name += " DST" if ruled else " fixed"
    return name


@lru_cache(maxsize=8192)
def era_of(zone_name: str, local: datetime, fold: int = 0) -> Era:
    """The era in which `local` (naive wall time in the zone) is written so that Outlook reads it right.

    The latest cutoff whose VTIMEZONE Outlook reads to the real offset at that moment: the zone's own name
    for what the rules in force today read right, a derived TZID ("Europe/Moscow to 2014-10-26") for a
    moment of an earlier era (Moscow kept UTC+4 from 2011 to 2014, so a 2013 meeting needs rules that end
    there, or Outlook shows it an hour late).
    """
    aware = local.replace(tzinfo=ZoneInfo(zone_name), fold=fold)
    real = aware.utcoffset()
    instant = aware.astimezone(UTC)
    horizon = _horizon(local.year)
    trs = transitions(zone_name, horizon)
    first_after = next((i for i, t in enumerate(trs) if t.at > instant), len(trs))
    # The form in force at each cutoff first (rules while DST was kept, else a fixed offset), so TZIDs
    # name real eras; the other form only where none of those reads the moment right.
    for natural in (True, False):
        for cut in range(len(trs), first_after - 1, -1):
            preferred = _preferred_ruled(trs, cut, horizon)
            ruled = preferred if natural else not preferred
            if ruled and _pair(trs, cut) is None:
                continue
            if _outlook_reads(zone_name, trs, cut, ruled, local) == real:
                tzid = _tzid(zone_name, trs, cut, ruled, horizon)
                era = Era(zone_name, tzid, trs[cut].at if cut < len(trs) else None, ruled)
                _ERAS.setdefault(era.tzid, era)
                return era
    # unreachable: at the first cutoff after the moment, the fixed form reads the offset then in force
    raise AssertionError(f"no VTIMEZONE form for {zone_name} at {local}")


def _zone_key(moment: object) -> str | None:
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        key = getattr(moment.tzinfo, "key", None)
        if key and key != "UTC":
            return str(key)
    return None


_MOMENTS = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE")


def _lines(component: Component, name: str) -> list[object]:
    value = component.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _moments(line: object) -> list[datetime]:
    dts = getattr(line, "dts", None)
    values = [d.dt for d in dts] if dts is not None else [getattr(line, "dt", None)]
    return [v for v in values if _zone_key(v)]


def _last_occurrence(component: Component, start: datetime) -> datetime | None:
    """The last start of a recurring item (None if the rule never ends), in the item's zone."""
    last = start
    for rule in _lines(component, "RRULE"):
        text = rule.to_ical().decode()  # type: ignore[attr-defined]
        if "UNTIL=" not in text and "COUNT=" not in text:
            return None
        occurrences = list(rrulestr(text, dtstart=start))
        if occurrences:
            last = max(last, occurrences[-1].astimezone(start.tzinfo))
    for line in _lines(component, "RDATE"):
        for moment in _moments(line):
            last = max(last, moment.astimezone(start.tzinfo))
    return last


def _era_tzid(moment: datetime) -> str:
    zone = _zone_key(moment)
    assert zone is not None
    return era_of(zone, moment.replace(tzinfo=None), moment.fold).tzid


def _one_date_per_line(sub: Component, name: str) -> None:
    """Split a list property into one line per zoned value, so that each may carry its own TZID."""
    lines = _lines(sub, name)
    if all(len(_moments(line)) <= 1 for line in lines):
        return
    values = [m for line in lines for m in (_moments(line) or [None])]
    if None in values:  # dates or periods among them: leave the property as written
        return
    del sub[name]
    for moment in values:
        sub.add(name, moment)


def assign_eras(component: Component) -> None:
    """Write each zoned date-time of `component` under the TZID of its era (see `era_of`).

    An item with an RRULE takes the era of its last occurrence for all its values, since RRULE, EXDATE and
    RDATE are read in DTSTART's zone: Outlook then reads its later occurrences right, and RFC readers all
    of them. Without an RRULE, every value has its own era, each RDATE on a line of its own (Outlook ignores
    RDATE and shows DTSTART, which is then right whatever era the added dates fall in).
    """
    for sub in component.walk():
        start = sub.get("DTSTART")
        series = None
        if "RRULE" in sub and start is not None and _zone_key(start.dt):
            last = _last_occurrence(sub, start.dt)
            zone = _zone_key(start.dt)
            assert zone is not None
            # A rule that never ends takes today's rules.
            series = zone if last is None else _era_tzid(last)
        else:
            for name in ("RDATE", "EXDATE"):
                _one_date_per_line(sub, name)
        for name in _MOMENTS:
            for line in _lines(sub, name):
                moments = _moments(line)
                if moments:
                    line.params["TZID"] = series or _era_tzid(moments[0])  # type: ignore[attr-defined]


# -- VTIMEZONE ---------------------------------------------------------------------------------------------


def _explicit(t: Transition, daylight: bool) -> TimezoneStandard | TimezoneDaylight:
    block = _block(t, daylight)
    # RDATE repeats DTSTART: RFC 5545 takes DTSTART as the onset, but some readers (the `ical` package)
    # only take onsets from RRULE or RDATE. Outlook ignores RDATE, so this changes nothing for it.
    block.add("RDATE", t.local_start)
    return block


def vtimezone(
    zone_name: str,
    first: datetime | date,
    last: datetime | date,
    *,
    tzid: str | None = None,
    cutoff: datetime | None = None,
    ruled: bool | None = None,
) -> Timezone:
    """A VTIMEZONE for moments between `first` and `last` (local times) whose latest blocks hold the rules
    Outlook must apply: those before `cutoff` (all, if None), as yearly rules (`ruled`) or one fixed offset
    (by default whichever was in force then). Earlier history precedes them, one block per transition,
    so readers that apply the whole component (RFC 5545) get every moment since `first` right."""
    lo = first if isinstance(first, datetime) else datetime(first.year, first.month, first.day)
    hi = last if isinstance(last, datetime) else datetime(last.year, last.month, last.day)
    zone = ZoneInfo(zone_name)
    lo_utc = (lo.replace(tzinfo=zone) if lo.tzinfo is None else lo).astimezone(UTC)
    horizon = _horizon(hi.year)
    trs = transitions(zone_name, horizon)
    cut = len(trs) if cutoff is None else next(i for i, t in enumerate(trs) if t.at >= cutoff)
    if ruled is None:
        ruled = _preferred_ruled(trs, cut, horizon)
    base = max((i for i in range(cut) if trs[i].at <= lo_utc), default=0)
    window = trs[base:cut]

    tz = Timezone()
    tz.add("TZID", tzid or zone_name)
    if not window:  # no change since 1970 (or none before the cutoff): one block, valid for ever
        offset = _initial(zone_name)
        tz.add_component(_explicit(Transition(_EPOCH - offset, offset, offset, False, ""), False))
        return tz

    if ruled:
        pair = _pair(trs, cut)
        assert pair is not None, f"{zone_name}: no yearly rule before {cutoff}"
        keys = {True: _rule_key(pair[0]), False: _rule_key(pair[1])}
        k = cut
        while k > 0 and _matches(trs[k - 1], keys[trs[k - 1].dst]):
            k -= 1
        for t in window:
            if t.at < trs[k].at:
                tz.add_component(_explicit(t, t.dst))
        for daylight in (True, False):
            kind = [t for t in trs[k:cut] if t.dst is daylight]
            # The rule's first onset within the window, or its last before it.
            first_of_kind = next((t for t in kind if t.at >= window[0].at), kind[-1])
            block = _block(first_of_kind, daylight)
            month, weekday, week = keys[daylight][:3]
            block.add("RRULE", vRecur(freq="YEARLY", bymonth=month, byday=f"{week}{_DAYS[weekday]}"))
            tz.add_component(block)
        return tz

    # A fixed offset at the end: every block is STANDARD, so the last one, in force for the moments that
    # use this TZID, is the one Outlook reads; the offsets of earlier blocks stay right for RFC readers.
    for t in window:
        tz.add_component(_explicit(t, False))
    return tz


def _parse_tzid(tzid: str, year: int) -> Era:
    """The era a TZID written by `_tzid` names, read back from the TZID alone."""
    zone_name, _, rest = tzid.partition(" ")
    horizon = _horizon(year)
    trs = transitions(zone_name, horizon)
    cut = len(trs)
    words = rest.split()
    if words[:1] == ["to"] and len(words) >= 2:
        day = date.fromisoformat(words[1])
        cut = next(i for i, t in enumerate(trs) if t.local_start.date() == day)
        words = words[2:]
    preferred = _preferred_ruled(trs, cut, horizon)
    ruled = {"DST": True, "fixed": False}[words[0]] if words else preferred
    return Era(zone_name, tzid, trs[cut].at if cut < len(trs) else None, ruled)


def vtimezone_for(tzid: str, first: datetime | date, last: datetime | date) -> Timezone:
    """The VTIMEZONE of a TZID written by `assign_eras` (or of a plain IANA zone)."""
    era = _ERAS.get(tzid) or _parse_tzid(tzid, last.year)
    return vtimezone(era.zone, first, last, tzid=tzid, cutoff=era.cutoff, ruled=era.ruled)


@lru_cache(maxsize=1024)
def zone_mark(zone_name: str) -> str:
    """The zone's name and a digest of the rules zoneinfo reads for it: what a cached item in that zone
    depends on, so that new tz data (a region changing its offset) rebuilds its items."""
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, zone_name)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                return f"{zone_name} {hashlib.sha256(fh.read()).hexdigest()}"
    try:  # zoneinfo's fallback: the tzdata package
        from importlib import resources

        *package, leaf = ["tzdata", "zoneinfo", *zone_name.split("/")]
        data = resources.files(".".join(package)).joinpath(leaf).read_bytes()
        return f"{zone_name} {hashlib.sha256(data).hexdigest()}"
    except (ImportError, OSError, ValueError):
        rules = repr(transitions(zone_name, HORIZON_YEAR)).encode()
        return f"{zone_name} {hashlib.sha256(rules).hexdigest()}"
