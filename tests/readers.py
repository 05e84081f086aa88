"""Independent .ics readers (icalendar, ical, vobject, ical.js, libical) and the Outlook time-zone rule, for tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import vobject
import vobject.icalendar
from dateutil.rrule import rruleset, rrulestr
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar, Component
from icalendar.timezone import tzp

__all__ = [
    "CALENDAR_TEXTS",
    "EVENT_TEXTS",
    "LIMIT",
    "READERS",
    "TEXT_READERS",
    "Row",
    "all_readers_agree",
    "available_readers",
    "missing_readers",
    "outlook_check",
    "outlook_offset",
    "read_with",
    "require_every_reader",
    "texts_read",
    "unescape_text",
]

# One row per VEVENT as written and one per occurrence of a recurring one (its RECURRENCE-ID is its start):
# (UID, RECURRENCE-ID, start, end), each moment as "YYYY-MM-DDTHH:MM:SSZ" (a UTC instant), "YYYY-MM-DD"
# (a date) or "YYYY-MM-DDTHH:MM:SS" (floating), so rows of different readers compare as strings.
Row = tuple[str, str | None, str, str]

LIMIT = 400  # occurrences of one series each reader expands; enough for weekly series over years
JS_DIR = Path(__file__).resolve().parent / "js"
SYSTEM_PYTHON = "/usr/bin/python3"


def _stamp(value: date | datetime) -> str:
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(microsecond=0).isoformat()
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expand(
    uid: str,
    start: date | datetime,
    end: date | datetime,
    rules: Iterable[str],
    rdates: Iterable[date | datetime],
    exdates: Iterable[date | datetime],
) -> list[Row]:
    """Occurrences by dateutil from a reader's own parsed DTSTART (so its time zone is the reader's)."""
    as_dt = start if isinstance(start, datetime) else datetime(start.year, start.month, start.day)

    def norm(v: date | datetime) -> datetime:
        if isinstance(v, datetime):
            return v.astimezone(as_dt.tzinfo) if v.tzinfo and as_dt.tzinfo else v
        return datetime(v.year, v.month, v.day, tzinfo=as_dt.tzinfo)

    rs = rruleset()
    rules = list(rules)
    for rule in rules:
        rs.rrule(rrulestr(rule, dtstart=as_dt, ignoretz=False))  # type: ignore[arg-type]
    if not rules:  # RDATE alone: DTSTART is the first instance (RFC 5545 3.8.5.2)
        rs.rdate(as_dt)
    for d in rdates:
        rs.rdate(norm(d))
    for d in exdates:
        rs.exdate(norm(d))
    length = end - start
    rows: list[Row] = []
    for n, occ in enumerate(rs):
        if n >= LIMIT:
            break
        first: date | datetime = occ if isinstance(start, datetime) else occ.date()
        rows.append((uid, _stamp(first), _stamp(first), _stamp(first + length)))
    return rows


def _values(prop: Any) -> list[Any]:
    """The dates of an EXDATE/RDATE property as icalendar gives it (one or a list of lines)."""
    lines = prop if isinstance(prop, list) else [prop]
    return [d.dt for line in lines for d in line.dts]


def _forget_icalendar_zones() -> None:
    """icalendar keeps the first VTIMEZONE it meets for each non-IANA TZID for the whole process; read
    each document with its own (the same TZID covers a different span in another calendar)."""
    tzp.use_default()


def read_icalendar(ics: bytes) -> list[Row]:
    """icalendar: IANA TZIDs by zoneinfo, any other TZID by its VTIMEZONE."""
    _forget_icalendar_zones()
    rows: list[Row] = []
    for ev in Calendar.from_ical(ics).walk("VEVENT"):
        uid = str(ev["UID"])
        start, end = ev.start, ev.end
        rid = _stamp(ev["RECURRENCE-ID"].dt) if "RECURRENCE-ID" in ev else None
        rows.append((uid, rid, _stamp(start), _stamp(end)))
        if ("RRULE" in ev or "RDATE" in ev) and rid is None:
            rules = ev.get("RRULE", [])
            rules = rules if isinstance(rules, list) else [rules]
            texts = [_rrule_text(r, start) for r in rules]
            rdates = _values(ev["RDATE"]) if "RDATE" in ev else []
            exdates = _values(ev["EXDATE"]) if "EXDATE" in ev else []
            rows.extend(_expand(uid, start, end, texts, rdates, exdates))
    return rows


def _rrule_text(rule: Any, start: date | datetime) -> str:
    text = rule.to_ical().decode()
    if isinstance(start, datetime) and start.tzinfo is None:
        # dateutil wants a naive UNTIL with a floating DTSTART
        text = text.replace("Z;", ";") if "Z;" in text else text.removesuffix("Z")
    return text


def read_ical(ics: bytes) -> list[Row]:
    """`ical` (the PyPI package): IANA TZIDs by zoneinfo, any other by the calendar's VTIMEZONE."""
    cal = IcsCalendarStream.calendar_from_ics(ics.decode("utf-8"))
    rows: list[Row] = []
    for ev in cal.events:
        uid = str(ev.uid)
        rid = None
        if ev.recurrence_id:
            rid = _stamp(_ical_rid(ev.recurrence_id, ev.dtstart))
        rows.append((uid, rid, _stamp(ev.dtstart), _stamp(ev.end)))
        if (ev.rrule is not None or ev.rdate) and rid is None:
            length = ev.end - ev.dtstart
            for n, occ in enumerate(ev.as_rrule() or []):
                if n >= LIMIT:
                    break
                rows.append((uid, _stamp(occ), _stamp(occ), _stamp(occ + length)))
    return rows


def _ical_rid(value: Any, start: date | datetime) -> date | datetime:
    if isinstance(value, date | datetime):
        return value
    text = str(value)
    if len(text) == 8:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    moment = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    if text.endswith("Z"):
        return moment.replace(tzinfo=UTC)
    return moment.replace(tzinfo=start.tzinfo) if isinstance(start, datetime) else moment


def read_vobject(ics: bytes) -> list[Row]:
    """vobject: every TZID by the calendar's VTIMEZONE (dateutil's tzical), falling back to the system's."""
    # vobject keeps the VTIMEZONEs it has seen in a module-wide map; start each document afresh.
    getattr(vobject.icalendar, "__tzidMap").clear()
    cal = vobject.readOne(ics.decode("utf-8"))
    rows: list[Row] = []
    for ev in cal.contents.get("vevent", []):
        uid = ev.uid.value
        start = ev.dtstart.value
        if hasattr(ev, "dtend"):
            end = ev.dtend.value
        elif hasattr(ev, "duration"):
            end = start + ev.duration.value
        else:
            end = start + timedelta(days=1) if not isinstance(start, datetime) else start
        rid = _stamp(ev.recurrence_id.value) if hasattr(ev, "recurrence_id") else None
        rows.append((uid, rid, _stamp(start), _stamp(end)))
        if (hasattr(ev, "rrule") or hasattr(ev, "rdate")) and rid is None:
            length = end - start
            for n, occ in enumerate(ev.getrruleset(addRDate=True)):
                if n >= LIMIT:
                    break
                first = occ if isinstance(start, datetime) else occ.date()
                rows.append((uid, _stamp(first), _stamp(first), _stamp(first + length)))
    return rows


def _run(args: list[str], ics: bytes) -> list[Row]:
    done = subprocess.run(args, input=ics, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{args[0]} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return [(r[0], r[1], r[2], r[3]) for r in json.loads(done.stdout)]


def read_icaljs(ics: bytes) -> list[Row]:
    """ical.js (Thunderbird's and many web clients' parser): every TZID by the calendar's VTIMEZONE."""
    return _run(["node", str(JS_DIR / "read.mjs")], ics)


# libical (Evolution, GNOME Calendar, KDE's importers) through its GObject binding, in the system Python.
_LIBICAL = r"""
import json, sys
import gi
gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib as I

LIMIT = int(sys.argv[1])
UTC = I.Timezone.get_utc_timezone()

def stamp(t):
    if t.is_date():
        return "%04d-%02d-%02d" % (t.get_year(), t.get_month(), t.get_day())
    zone = t.get_timezone()
    if zone is None and not t.is_utc():
        return "%04d-%02d-%02dT%02d:%02d:%02d" % (t.get_year(), t.get_month(), t.get_day(),
                                                  t.get_hour(), t.get_minute(), t.get_second())
    u = t.convert_to_zone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (u.get_year(), u.get_month(), u.get_day(),
                                               u.get_hour(), u.get_minute(), u.get_second())

def moment(ev, kind):
    prop = ev.get_first_property(kind)
    return None if prop is None else I.Property.get_datetime_with_component(prop, ev)

root = I.Component.new_from_string(sys.stdin.read())
rows = []
ev = root.get_first_component(I.ComponentKind.VEVENT_COMPONENT)
while ev is not None:
    uid = ev.get_uid()
    start = moment(ev, I.PropertyKind.DTSTART_PROPERTY)
    end = moment(ev, I.PropertyKind.DTEND_PROPERTY)
    if end is None:
        end = ev.get_dtend()
    rid_time = moment(ev, I.PropertyKind.RECURRENCEID_PROPERTY)
    rid = None if rid_time is None else stamp(rid_time)
    rows.append([uid, rid, stamp(start), stamp(end)])
    rule_prop = ev.get_first_property(I.PropertyKind.RRULE_PROPERTY)
    has_rdate = ev.get_first_property(I.PropertyKind.RDATE_PROPERTY) is not None
    if (rule_prop is not None or has_rdate) and rid is None:
        length = I.Time.as_timet_with_zone(end, end.get_timezone()) - I.Time.as_timet_with_zone(start, start.get_timezone())
        excluded = set()
        ex = ev.get_first_property(I.PropertyKind.EXDATE_PROPERTY)
        while ex is not None:
            excluded.add(stamp(I.Property.get_datetime_with_component(ex, ev)))
            ex = ev.get_next_property(I.PropertyKind.EXDATE_PROPERTY)
        occurrences = []
        if rule_prop is not None:
            it = I.RecurIterator.new(rule_prop.get_rrule(), start)
            while len(occurrences) < LIMIT + len(excluded):
                occ = it.next()
                if occ is None or occ.is_null_time():
                    break
                occ.set_timezone(start.get_timezone())
                occurrences.append(occ)
        else:
            occurrences.append(start.clone())
        rd = ev.get_first_property(I.PropertyKind.RDATE_PROPERTY)
        while rd is not None:
            occurrences.append(I.Property.get_datetime_with_component(rd, ev))
            rd = ev.get_next_property(I.PropertyKind.RDATE_PROPERTY)
        n, seen = 0, set()
        for occ in occurrences:
            if stamp(occ) in excluded or stamp(occ) in seen or n >= LIMIT:
                continue
            seen.add(stamp(occ))
            n += 1
            if start.is_date():
                fin = occ.clone(); fin.adjust(length // 86400, 0, 0, 0)
            else:
                fin = occ.clone(); fin.adjust(0, 0, 0, length)
            rows.append([uid, stamp(occ), stamp(occ), stamp(fin)])
    ev = root.get_next_component(I.ComponentKind.VEVENT_COMPONENT)
print(json.dumps(rows))
"""


def read_libical(ics: bytes) -> list[Row]:
    """libical: every TZID by the calendar's VTIMEZONE."""
    return _run([SYSTEM_PYTHON, "-c", _LIBICAL, str(LIMIT)], ics)


READERS: dict[str, Callable[[bytes], list[Row]]] = {
    "icalendar": read_icalendar,
    "ical": read_ical,
    "vobject": read_vobject,
    "ical.js": read_icaljs,
    "libical": read_libical,
}


def _has_icaljs() -> bool:
    return shutil.which("node") is not None and (JS_DIR / "node_modules" / "ical.js").is_dir()


def _has_libical() -> bool:
    if not Path(SYSTEM_PYTHON).is_file():
        return False
    probe = "import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, check=False).returncode == 0


_AVAILABLE: dict[str, bool] = {}


def available_readers() -> list[str]:
    """The readers installed here (scripts/bootstrap --system installs them all)."""
    if not _AVAILABLE:
        _AVAILABLE.update({name: True for name in ("icalendar", "ical", "vobject")})
        _AVAILABLE["ical.js"] = _has_icaljs()
        _AVAILABLE["libical"] = _has_libical()
    return [name for name in READERS if _AVAILABLE[name]]


def missing_readers() -> list[str]:
    return [name for name in READERS if name not in available_readers()]


def read_with(name: str, ics: bytes) -> list[Row]:
    return sorted(READERS[name](ics), key=lambda r: (r[0], r[1] or "", r[2], r[3]))


def all_readers_agree(ics: bytes, readers: Iterable[str] | None = None) -> dict[str, list[Row]]:
    """Read `ics` with every available reader; raise AssertionError naming the rows where any differs.

    Returns the rows by reader (all equal), for a caller that also checks them against expected instants.
    """
    names = list(readers) if readers is not None else available_readers()
    results = {name: read_with(name, ics) for name in names}
    base_name = names[0]
    base = results[base_name]
    problems = []
    for name in names[1:]:
        rows = results[name]
        if rows != base:
            only_base = sorted(set(base) - set(rows))[:10]
            only_this = sorted(set(rows) - set(base))[:10]
            problems.append(
                f"{name} differs from {base_name} ({len(rows)} rows against {len(base)}):\n"
                f"  only {base_name}: {only_base}\n  only {name}: {only_this}"
            )
    if problems:
        raise AssertionError("readers disagree:\n" + "\n".join(problems))
    return results


# -- TEXT values (RFC 5545 3.3.11) ----------------------------------------------------------------------------

CALENDAR_TEXTS = ("NAME", "X-WR-CALNAME", "DESCRIPTION", "X-WR-CALDESC")
EVENT_TEXTS = ("SUMMARY", "LOCATION", "DESCRIPTION", "CATEGORIES")
Texts = dict[str, Any]  # {"calendar": {property: text}, "events": {uid: {property: text or [texts]}}}


def unescape_text(value: str) -> str:
    """RFC 5545 TEXT unescaping, for properties a reader hands back as written (NAME, X-WR-...)."""
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _texts_icalendar(ics: bytes) -> Texts:
    _forget_icalendar_zones()
    cal = Calendar.from_ical(ics)
    # icalendar unescapes only the properties it knows as TEXT; NAME and X-WR-* come back as written.
    calendar = {
        n: unescape_text(str(cal[n])) if n != "DESCRIPTION" else str(cal[n])
        for n in CALENDAR_TEXTS
        if n in cal
    }
    events = {}
    for ev in cal.walk("VEVENT"):
        one: dict[str, Any] = {n: str(ev[n]) for n in EVENT_TEXTS[:3] if n in ev}
        lines = ev.get("CATEGORIES", [])
        one["CATEGORIES"] = [
            str(c) for line in (lines if isinstance(lines, list) else [lines]) for c in line.cats
        ]
        events[str(ev["UID"])] = one
    return {"calendar": calendar, "events": events}


def _texts_vobject(ics: bytes) -> Texts:
    getattr(vobject.icalendar, "__tzidMap").clear()
    cal = vobject.readOne(ics.decode("utf-8"))
    calendar = {n: cal.contents[n.lower()][0].value for n in CALENDAR_TEXTS if n.lower() in cal.contents}
    events = {}
    for ev in cal.contents.get("vevent", []):
        one: dict[str, Any] = {
            n: ev.contents[n.lower()][0].value for n in EVENT_TEXTS[:3] if n.lower() in ev.contents
        }
        one["CATEGORIES"] = [c for line in ev.contents.get("categories", []) for c in line.value]
        events[ev.uid.value] = one
    return {"calendar": calendar, "events": events}


def _texts_ical(ics: bytes) -> Texts:
    cal = IcsCalendarStream.calendar_from_ics(ics.decode("utf-8"))
    calendar: dict[str, Any] = {}
    if cal.name:
        calendar["NAME"] = cal.name[0]
    if cal.description:
        calendar["DESCRIPTION"] = cal.description[0]
    for extra in cal.extras:  # X- properties come back as written
        if extra.name.upper() in CALENDAR_TEXTS:
            calendar[extra.name.upper()] = unescape_text(extra.value)
    events = {}
    for ev in cal.events:
        one: dict[str, Any] = {"SUMMARY": ev.summary, "LOCATION": ev.location, "DESCRIPTION": ev.description}
        # `ical` splits CATEGORIES at every comma, escaped ones too, so it cannot be asked about them.
        events[str(ev.uid)] = {k: v for k, v in one.items() if v is not None}
    return {"calendar": calendar, "events": events}


def _texts_icaljs(ics: bytes) -> Texts:
    done = subprocess.run(
        ["node", str(JS_DIR / "read.mjs"), "texts"], input=ics, capture_output=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"ical.js failed: {done.stderr.decode(errors='replace')[-2000:]}")
    data = json.loads(done.stdout)
    # ical.js unescapes DESCRIPTION but not NAME (RFC 7986) or X-WR-*, which it does not know
    calendar = {
        n: (v if n == "DESCRIPTION" else unescape_text(v))
        for n, v in data["calendar"].items()
        if v is not None
    }
    events = {
        uid: {k: v for k, v in one.items() if v is not None and v != []}
        for uid, one in data["events"].items()
    }
    return {"calendar": calendar, "events": events}


TEXT_READERS: dict[str, Callable[[bytes], Texts]] = {
    "icalendar": _texts_icalendar,
    "ical": _texts_ical,
    "vobject": _texts_vobject,
    "ical.js": _texts_icaljs,
}


def texts_read(ics: bytes) -> dict[str, Texts]:
    """The calendar's and each event's TEXT values as every available reader gives them back."""
    return {name: TEXT_READERS[name](ics) for name in available_readers() if name in TEXT_READERS}


# -- Outlook -----------------------------------------------------------------------------------------------


def _latest(tz: Component, kind: str) -> Component | None:
    blocks = [b for b in tz.subcomponents if b.name == kind]
    return max(blocks, key=lambda b: b["DTSTART"].dt) if blocks else None


def outlook_offset(tz: Component, local: datetime) -> timedelta:
    """The offset Outlook gives `local` (naive wall time) under the VTIMEZONE `tz`.

    Outlook keeps only the STANDARD block and the DAYLIGHT block with the latest DTSTART, ignores RDATE,
    and repeats their yearly RRULEs; without a recurring pair, the STANDARD offset holds all year.
    """
    std, dst = _latest(tz, "STANDARD"), _latest(tz, "DAYLIGHT")
    if std is None:  # a DAYLIGHT block alone: Outlook takes it as the standard time
        assert dst is not None, "a VTIMEZONE without STANDARD or DAYLIGHT blocks"
        std, dst = dst, None
    std_off = std["TZOFFSETTO"].td
    if dst is None or "RRULE" not in dst or "RRULE" not in std:
        return std_off

    def onset(block: Component) -> datetime:
        start = block["DTSTART"].dt
        rule = rrulestr(block["RRULE"].to_ical().decode(), dtstart=start.replace(year=local.year - 1))
        return next(d for d in rule if d.year == local.year)

    dst_on, std_on = onset(dst), onset(std)
    in_dst = dst_on <= local < std_on if dst_on < std_on else not (std_on <= local < dst_on)
    return dst["TZOFFSETTO"].td if in_dst else std_off


def _real_zone(tzid: str, tz: Component) -> ZoneInfo:
    """The IANA zone a TZID stands for: itself, or the zone named before the era suffix of a derived TZID."""
    for candidate in (tzid, str(tz.get("X-LIC-LOCATION", "")), tzid.split(" ")[0]):
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    raise AssertionError(f"TZID {tzid!r} names no IANA zone")


def _ambiguous(zone: ZoneInfo, local: datetime) -> bool:
    """In a repeated or skipped hour no answer is right; calendars put no meeting there."""
    a = local.replace(tzinfo=zone, fold=0).utcoffset()
    b = local.replace(tzinfo=zone, fold=1).utcoffset()
    return a != b


def _series_moments(ev: Component, zone: ZoneInfo) -> list[tuple[str, datetime]]:
    """A recurring item's occurrences (starts and ends, wall time), up to LIMIT."""
    start = ev["DTSTART"].dt.replace(tzinfo=None).replace(tzinfo=zone)
    length = ev.end - ev.start if "DTEND" in ev or "DURATION" in ev else timedelta()
    rules = ev["RRULE"] if isinstance(ev["RRULE"], list) else [ev["RRULE"]]
    out: list[tuple[str, datetime]] = []
    for rule in rules:
        for n, occ in enumerate(rrulestr(rule.to_ical().decode(), dtstart=start)):
            if n >= LIMIT:
                break
            wall = occ.replace(tzinfo=None)
            out += [("occurrence", wall), ("occurrence end", wall + length)]
    return out


def outlook_check(ics: bytes) -> int:
    """Assert that Outlook's reading of each VTIMEZONE gives the IANA zone's real offset at every item's
    DTSTART, DTEND and RECURRENCE-ID that uses it; return how many moments were checked.

    A recurring item is checked at each occurrence (up to LIMIT) from the start of its VTIMEZONE's last
    rules on: Outlook applies one rule to a whole series, so a series that runs across a change of a
    zone's rules can be right in Outlook only for the era it ends in (cyclogram gives it that era's).
    A TZID that is not an IANA name (an era of a zone) is checked against the zone it starts with.
    """
    _forget_icalendar_zones()
    cal = Calendar.from_ical(ics)
    zones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    failures = []
    checked = 0
    for ev in cal.walk("VEVENT"):
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if name not in ev:
                continue
            prop = ev[name]
            tzid = prop.params.get("TZID")
            if not tzid:
                continue
            assert tzid in zones, f"{ev['UID']} {name}: TZID {tzid!r} has no VTIMEZONE"
            tz = zones[tzid]
            zone = _real_zone(tzid, tz)
            moments = [(name, prop.dt.replace(tzinfo=None))]
            if "RRULE" in ev and name != "RECURRENCE-ID":
                if name == "DTEND":
                    continue  # the series' ends are checked with its starts
                final = max(block["DTSTART"].dt for block in tz.subcomponents)
                moments = [(what, m) for what, m in _series_moments(ev, zone) if m >= final]
            for what, local in moments:
                if _ambiguous(zone, local):
                    continue
                real = local.replace(tzinfo=zone).utcoffset()
                got = outlook_offset(tz, local)
                checked += 1
                if got != real:
                    failures.append(
                        f"{ev['UID']} {what} {local} TZID={tzid}: Outlook reads {got}, real {real}"
                    )
    if failures:
        raise AssertionError("Outlook would show the wrong hour:\n" + "\n".join(failures[:20]))
    return checked


def require_every_reader() -> bool:
    """On CI every reader must be present (scripts/bootstrap --system installs them)."""
    return os.environ.get("CI", "") not in ("", "0", "false")


if __name__ == "__main__":  # tests/readers.py FILE.ics: print what each reader reads
    data = Path(sys.argv[1]).read_bytes()
    for reader in available_readers():
        print(reader, json.dumps(read_with(reader, data), ensure_ascii=False))
    print("outlook moments checked:", outlook_check(data))
