"""iTIP REPLY in received mail: found in any MIME shape the calendar clients send (RFC 5546, RFC 6047)."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from icalendar import Calendar

__all__ = ["ParsedMail", "Reply", "parse_mail"]

_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar", "application/octet-stream")
_MAX_PARTS = 200  # a message with more parts than this is not a calendar client's reply


@dataclass(frozen=True)
class Reply:
    """One attendee's answer to one event, as a REPLY carries it."""

    uid: str
    attendee: str  # lower case, without mailto:
    partstat: str
    sequence: int | None  # None when the reply leaves it out
    stamp: datetime | None  # DTSTAMP: when the client made the reply


@dataclass
class ParsedMail:
    """What a received message holds for us: who sent it, its replies, and what could not be read."""

    sender: str | None  # the From address, lower case
    date: datetime | None
    replies: list[Reply] = field(default_factory=list)
    calendars: int = 0  # calendar parts seen, of any method
    problems: list[str] = field(default_factory=list)
    spoofed: str | None = None  # the receiving server's verdict when it found the From forged


def _address(value: str) -> str | None:
    pairs = getaddresses([value])
    addresses = [a for _, a in pairs if "@" in a]
    return addresses[0].strip().lower() if len(addresses) == 1 else None


def _is_calendar(part: Message) -> bool:
    ctype = part.get_content_type()
    name = (part.get_filename() or part.get_param("name") or "").lower()
    if isinstance(name, tuple):  # RFC 2231 parameters come back as a tuple
        name = str(name[2]).lower()
    if ctype == "application/octet-stream":
        return str(name).endswith((".ics", ".vcs"))
    return ctype in _CALENDAR_TYPES or str(name).endswith(".ics")


def _text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise ValueError("the calendar part has no body")
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8", "cp1251"):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _mailto(value: object, params: dict[str, str]) -> str | None:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    elif "EMAIL" in params:
        text = str(params["EMAIL"])
    text = text.strip().strip("<>").lower()
    return text if "@" in text else None


def _stamp(value: object) -> datetime | None:
    dt = getattr(value, "dt", None)
    if isinstance(dt, datetime):
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    if isinstance(dt, date):
        return datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
    return None


def _replies(text: str, method_hint: str | None) -> tuple[str | None, list[Reply]]:
    cal = Calendar.from_ical(text)
    # Outlook may give the method only in the Content-Type; the calendar's own METHOD wins when present.
    method = str(cal.get("METHOD") or method_hint or "").strip().upper() or None
    if method != "REPLY":
        return method, []
    out: list[Reply] = []
    for event in cal.walk("VEVENT"):
        uid = str(event.get("UID") or "").strip()
        if not uid:
            raise ValueError("a VEVENT without UID")
        # RFC 5546 lets a reply to SEQUENCE 0 leave it out; None says "not given", not "0".
        raw_sequence = event.get("SEQUENCE")
        try:
            sequence = int(str(raw_sequence).strip()) if raw_sequence is not None else None
        except ValueError:
            raise ValueError(f"SEQUENCE is not a number: {raw_sequence!r}") from None
        attendees = event.get("ATTENDEE")
        if attendees is None:
            raise ValueError(f"the reply to {uid} names no ATTENDEE")
        if not isinstance(attendees, list):
            attendees = [attendees]
        for attendee in attendees:
            params = dict(getattr(attendee, "params", {}) or {})
            who = _mailto(attendee, params)
            partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).strip().upper()
            if who is None:
                raise ValueError(f"an ATTENDEE without an address: {str(attendee)!r}")
            out.append(Reply(uid, who, partstat, sequence, _stamp(event.get("DTSTAMP"))))
    return method, out


_FAILS = re.compile(r"\b(dmarc|spf|dkim)=(fail|softfail|pass)\b", re.I)


def _spoofed(msg: Message) -> str | None:
    """The receiving server's own Authentication-Results (the topmost: it prepends it) when they say the
    From domain failed DMARC, or SPF failed with no DKIM pass. A sender can add headers of its own, but only
    below the server's, and a false "fail" would only make us stricter, so the top one is safe to believe.
    """
    header = msg.get("Authentication-Results")
    if header is None:
        return None
    results = {name.lower(): verdict.lower() for name, verdict in _FAILS.findall(str(header))}
    if results.get("dmarc") == "fail":
        return "dmarc=fail"
    # A hard SPF fail only (the domain's owner wrote -all); softfail is too common among schools' own servers.
    if results.get("spf") == "fail" and results.get("dkim") != "pass":
        return "spf=fail"
    return None


def parse_mail(raw: bytes) -> ParsedMail:
    """Every iTIP REPLY anywhere in the message; a part that cannot be read becomes a problem, never an error.

    The same calendar often comes twice (Gmail and Thunderbird send it as an alternative and as
    invite.ics): identical replies are kept once.
    """
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    sender = _address(str(msg.get("From", "")))
    when = None
    try:
        when = parsedate_to_datetime(str(msg.get("Date", ""))) if msg.get("Date") else None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError):
        when = None
    parsed = ParsedMail(sender, when, spoofed=_spoofed(msg))
    seen: set[Reply] = set()
    for count, part in enumerate(msg.walk()):
        if count > _MAX_PARTS:
            parsed.problems.append(f"more than {_MAX_PARTS} MIME parts; the rest were not read")
            break
        if part.is_multipart() or not _is_calendar(part):
            continue
        hint = part.get_param("method")
        hint = hint if isinstance(hint, str) else None
        try:
            method, replies = _replies(_text(part), hint)
        except Exception as exc:  # any damage in a stranger's calendar part is reported, never raised
            parsed.problems.append(f"unreadable calendar part ({part.get_content_type()}): {exc}")
            continue
        parsed.calendars += 1
        for reply in replies:
            if reply not in seen:
                seen.add(reply)
                parsed.replies.append(reply)
        del method
    return parsed
