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


def _calendar_parts(raw: bytes) -> list[bytes]:
    import email

    msg = email.message_from_bytes(raw)
    return [
        p.get_payload(decode=True)
        for p in msg.walk()
        if p.get_content_type() in ("text/calendar", "application/ics")
    ]


def test_the_samples_read_the_same_with_vobject():
    """The sample replies are calendars another reader agrees on, not shapes only this parser accepts."""
    import vobject

    for name in ("outlook.eml", "gmail.eml", "apple.eml", "thunderbird.eml"):
        raw = (REPLIES / name).read_bytes()
        [mine] = parse_mail(raw).replies
        for data in _calendar_parts(raw):
            cal = vobject.readOne(data.decode("utf-8"))
            event = cal.vevent
            attendee = event.attendee
            params = {k.upper(): v[0] for k, v in attendee.params.items()}
            address = attendee.value.lower().removeprefix("mailto:")
            if not address.count("@"):
                address = params["EMAIL"].lower()
            assert (event.uid.value, address, params["PARTSTAT"], int(event.sequence.value)) == (
                mine.uid, mine.attendee, mine.partstat, mine.sequence,
            ), name  # fmt: skip
            assert event.dtstamp.value.astimezone(UTC) == mine.stamp, name


def test_a_damaged_copy_beside_a_good_one_still_counts(tmp_path):
    from scheduler.config import load_config
    from scheduler.rsvp.replies import Matcher
    from scheduler.store import SQLiteStore
    from tests.conftest import EXAMPLE

    raw = (REPLIES / "gmail.eml").read_bytes()
    head, _, _ = raw.rpartition(b"Content-Transfer-Encoding: base64\r\n\r\n")
    damaged = (
        head + b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"BEGIN:VCALENDAR\r\n\x00")
    )
    damaged += b"\r\n--000000000000aaaa05af5bbbbbbb--\r\n"
    store = SQLiteStore(tmp_path / "state.db")
    outcome = Matcher(load_config(EXAMPLE).project, store, datetime(2020, 9, 20, tzinfo=UTC)).apply(
        damaged, "t"
    )
    assert outcome.verdict == "recorded" and any("unreadable" in line for line in outcome.lines)
    assert [a.partstat for a in store.answers()] == ["DECLINED"]
    store.close()


def _reply_calendar(attendee: str, partstat: str, with_method: bool, name: str) -> bytes:
    lines = [
        "BEGIN:VCALENDAR", "PRODID:-//Some Client//EN", "VERSION:2.0",
        *(["METHOD:REPLY"] if with_method else []),
        "BEGIN:VEVENT", f"UID:{UID}", "DTSTAMP:20200916T081502Z", "SEQUENCE:1",
        f"ATTENDEE;CN={name};PARTSTAT={partstat}:mailto:{attendee}",
        "END:VEVENT", "END:VCALENDAR", "",
    ]  # fmt: skip
    return "\r\n".join(lines).encode()


@settings(max_examples=120, deadline=None)
@given(
    shape=st.sampled_from(["whole", "alternative", "mixed", "attachment-only", "octet-stream", "forwarded"]),
    encoding=st.sampled_from(["base64", "quoted-printable", "8bit"]),
    case=st.sampled_from([str.lower, str.upper, str.title]),
    partstat=st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE", "accepted"]),
    with_method=st.booleans(),
    name=st.sampled_from(["Иванова Анна", "Anna", '"Ivanova, Anna"']),
)
def test_a_reply_is_found_in_any_shape(shape, encoding, case, partstat, with_method, name) -> None:
    """Whatever the nesting, transfer encoding, letter case and METHOD's place, the one reply is found."""
    from email.message import EmailMessage

    address = "head@school1.example.org"
    cal = _reply_calendar(case(address), partstat, with_method, name)
    params = {"method": "REPLY", "charset": "utf-8"}

    def calendar_part(
        kind: tuple[str, str] = ("text", "calendar"), filename: str | None = None
    ) -> EmailMessage:
        part = EmailMessage()
        part.set_content(cal, kind[0], kind[1], cte=encoding, filename=filename)
        if kind == ("text", "calendar"):
            for key, value in params.items():
                part.set_param(key, value)
        return part

    def envelope(msg: EmailMessage) -> EmailMessage:
        msg["From"] = f"Anna <{case(address)}>"
        msg["To"] = "gcro@example.org"
        msg["Subject"] = "Re"
        return msg

    if shape == "whole":
        msg = envelope(calendar_part())
    else:
        msg = envelope(EmailMessage())
        msg.set_content("An answer.")
        if shape == "alternative":
            msg.add_alternative(cal, "text", "calendar", cte=encoding, params=params)
        elif shape == "mixed":
            msg.add_alternative(cal, "text", "calendar", cte=encoding, params=params)
            msg.add_attachment(cal, "application", "ics", cte=encoding, filename="invite.ics")
        elif shape == "attachment-only":
            msg.add_attachment(cal, "text", "calendar", cte=encoding, filename="reply.ics", params=params)
        elif shape == "octet-stream":
            msg.add_attachment(cal, "application", "octet-stream", cte=encoding, filename="iCal-1.ics")
        else:
            inner = envelope(EmailMessage())
            inner.set_content("An answer.")
            inner.add_alternative(cal, "text", "calendar", cte=encoding, params=params)
            msg.add_attachment(inner)
    if not with_method and shape in ("octet-stream",):
        return  # a calendar without METHOD in a part without a method parameter is no reply at all
    parsed = parse_mail(msg.as_bytes())
    assert parsed.problems == []
    assert [(r.uid, r.attendee, r.partstat, r.sequence) for r in parsed.replies] == [
        (UID, address, partstat.upper(), 1)
    ]
    assert parsed.sender == address


def test_the_receiving_servers_dmarc_fail_marks_a_spoofed_from():
    parsed = parse_mail((REPLIES / "spoofed.eml").read_bytes())
    assert parsed.sender == "head@lyceum86.example.org" and parsed.spoofed == "dmarc=fail"
    # The sample also carries a "dmarc=pass" the sender wrote below the server's header: it is not read.
    # Only the topmost one is the receiving server's, so with a passing one on top the reply is believed.
    raw = (
        b"Authentication-Results: mx; dkim=pass; spf=pass; dmarc=pass\r\n"
        + (REPLIES / "spoofed.eml").read_bytes()
    )
    assert parse_mail(raw).spoofed is None
    assert parse_mail((REPLIES / "thunderbird.eml").read_bytes()).spoofed is None
