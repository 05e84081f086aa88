"""iTIP REPLY parsing: every client's shape, and no input that makes it crash."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.rsvp.itip import parse_mail

REPLIES = Path(__file__).parent / "data" / "replies"
UID = "meeting-heads-2020-09@cyclogram.example.org"


def _one(name: str):
    parsed = parse_mail((REPLIES / name).read_bytes())
    assert not parsed.problems, parsed.problems
    assert len(parsed.replies) == 1, parsed.replies
    return parsed, parsed.replies[0]


def test_outlook_calendar_as_the_whole_body_with_method_only_in_the_content_type():
    parsed, reply = _one("outlook.eml")
    assert b"METHOD:" not in base64.b64decode((REPLIES / "outlook.eml").read_bytes().split(b"\r\n\r\n", 1)[1])
    assert parsed.sender == "head@school1.example.org"
    assert (reply.uid, reply.attendee, reply.partstat, reply.sequence) == (UID, parsed.sender, "ACCEPTED", 1)
    assert reply.stamp == datetime(2020, 9, 16, 8, 15, 2, tzinfo=UTC)


def test_gmail_alternative_and_attachment_count_once():
    parsed, reply = _one("gmail.eml")
    assert parsed.calendars == 2  # the alternative and invite.ics
    assert (reply.attendee, reply.partstat) == ("head@school2.example.org", "DECLINED")


def test_apple_mail_quoted_printable_attachment_with_the_address_in_the_email_parameter():
    _, reply = _one("apple.eml")
    assert (reply.attendee, reply.partstat) == ("head@gym3.example.org", "TENTATIVE")


def test_thunderbird_8bit_alternative_and_folded_attendee():
    _, reply = _one("thunderbird.eml")
    assert (reply.attendee, reply.partstat) == ("head@lyceum86.example.org", "ACCEPTED")


def test_a_malformed_calendar_is_a_problem_not_an_error():
    parsed = parse_mail((REPLIES / "malformed.eml").read_bytes())
    assert parsed.replies == [] and parsed.problems and "unreadable calendar part" in parsed.problems[0]


def test_an_invitation_or_plain_mail_holds_no_reply():
    plain = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
    assert parse_mail(plain).replies == [] and parse_mail(plain).problems == []
    request = (
        b"From: gcro@example.org\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x@example.org\r\n"
        b"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:head@school1.example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert parse_mail(request).replies == [] and parse_mail(request).calendars == 1


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_no_bytes_make_it_crash(data: bytes) -> None:
    parse_mail(data)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=800), st.sampled_from(["base64", "quoted-printable", "8bit", "x-unknown"]))
def test_no_calendar_body_makes_it_crash(body: str, encoding: str) -> None:
    raw = (
        "From: head@school1.example.org\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/calendar; method=REPLY; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
        "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n" + body + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode("utf-8", "surrogatepass")
    parsed = parse_mail(raw)
    assert all(r.attendee and "@" in r.attendee for r in parsed.replies)
