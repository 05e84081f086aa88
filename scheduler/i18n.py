"""Dates, times and zones written the way each reader expects, through Babel."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale
from babel.dates import format_date, format_time

__all__ = ["LANGUAGES", "format_day", "format_month", "format_span", "install_filters", "zone_label"]

LANGUAGES = ("ru", "en")
EN_DASH = "\u2013"

# Russian readers name time by Moscow: МСК, МСК+2 (Yekaterinburg), МСК-1 (Kaliningrad).
_RUSSIAN_ZONES = {
    "Europe/Moscow",
    "Europe/Simferopol",
    "Europe/Kirov",
    "Europe/Volgograd",
    "Europe/Kaliningrad",
    "Europe/Samara",
    "Europe/Ulyanovsk",
    "Europe/Saratov",
    "Europe/Astrakhan",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Barnaul",
    "Asia/Tomsk",
    "Asia/Novokuznetsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Chita",
    "Asia/Yakutsk",
    "Asia/Khandyga",
    "Asia/Vladivostok",
    "Asia/Ust-Nera",
    "Asia/Magadan",
    "Asia/Sakhalin",
    "Asia/Srednekolymsk",
    "Asia/Kamchatka",
    "Asia/Anadyr",
}

_MOSCOW = ZoneInfo("Europe/Moscow")


@cache
def _locale(language: str) -> Locale:
    """Parsed once: Babel would otherwise parse the locale name again for every date it writes."""
    return Locale.parse(language if language in LANGUAGES else "ru")


def zone_label(moment: datetime, language: str) -> str:
    """A short name of the moment's zone: МСК / МСК+2 in Russian for Russian zones, else UTC±N."""
    offset = moment.utcoffset()
    if offset is None:
        return ""
    minutes = int(offset.total_seconds() // 60)
    key = getattr(moment.tzinfo, "key", "")
    if language == "ru" and key in _RUSSIAN_ZONES:
        # Moscow's own offset at that instant: UTC+4 from 2011 to 2014, UTC+4 in summers before 2011.
        delta = minutes - _minutes(moment.astimezone(_MOSCOW).utcoffset())
        return "МСК" if delta == 0 else f"МСК{_signed(delta)}"
    if key == "Europe/Moscow":
        return moment.tzname() or "MSK"  # MSK, or MSD in the summers before 2011
    return f"UTC{_signed(minutes)}" if minutes else "UTC"


def _minutes(offset: timedelta | None) -> int:
    return int((offset or timedelta()).total_seconds() // 60)


def _signed(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h}" + (f":{m:02d}" if m else "")


def format_day(day: date | datetime, language: str, fmt: str = "long") -> str:
    """25 сентября 2020 г. / September 25, 2020."""
    if isinstance(day, datetime):
        day = day.date()
    return format_date(day, fmt, locale=_locale(language))


def format_month(day: date, language: str) -> str:
    """сентябрь 2020 / September 2020 (stand-alone month name)."""
    return format_date(day, "LLLL y", locale=_locale(language))


def _clock(t: time | datetime, language: str) -> str:
    return format_time(t, "HH:mm", locale=_locale(language))


def format_span(start: datetime, end: datetime | None, language: str, zone: ZoneInfo | None = None) -> str:
    """25 сентября 2020 г., 10:00–12:00 (МСК): the day, the hours and the zone of a meeting."""
    if zone is not None:
        start = start.astimezone(zone)
        end = end.astimezone(zone) if end else None
    text = f"{format_day(start, language)}, {_clock(start, language)}"
    if end is not None:
        if end.date() == start.date():
            text += f"{EN_DASH}{_clock(end, language)}"
        else:
            text += f" {EN_DASH} {format_day(end, language)}, {_clock(end, language)}"
    label = zone_label(start, language)
    return f"{text} ({label})" if label else text


def install_filters(env: jinja2.Environment) -> None:
    """Expose the formatters to templates: {{ start|day(lang) }}, {{ start|span(end, lang) }}."""
    env.filters["day"] = format_day
    env.filters["month"] = format_month
    env.filters["span"] = format_span
    env.filters["clock"] = _clock
    env.filters["zone_label"] = zone_label
