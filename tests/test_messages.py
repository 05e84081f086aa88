"""Every kind, for every recipient of the example, rendered and parsed back with the email package."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses

import pytest

from scheduler.changes import Change
from scheduler.errors import TemplateProblem
from scheduler.mailings import compose
from scheduler.messages import HeaderInjectionError, changes_context, check_header, recipient_greeting
from scheduler.model import KINDS, MeetingStatus
from scheduler.store import SQLiteStore

NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
SEED = "heads-2020-09"


def _decoded(raw: str) -> str:
    # Python's address parser inserts a space between adjacent encoded-words; RFC 2047 joins them.
    return str(make_header(decode_header(raw)))


def _compose(example, tmp_path, kind, **kw):
    store = SQLiteStore(tmp_path / "state.db")
    if kind == "update":
        compose(example, "invitation", meeting=SEED, store=store, now=NOW)
        kw.setdefault("changes", [Change("place", "МОУ «ГЦРО»", "Лицей № 86, ул. Лермонтова, 5")])
    if kind == "cancellation":
        meeting = example.project.meeting(SEED).model_copy(update={"status": MeetingStatus.cancelled})
        project = example.project.model_copy(update={"meetings": [meeting]})
        example = type(example)(example.directory, project, example.meeting_files)
    target = "consultations" if kind == "event_reminder" else SEED
    return compose(example, kind, meeting=target, store=store, now=NOW, **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_back(example, tmp_path, kind):
    messages = _compose(example, tmp_path, kind)
    assert messages
    ids = set()
    for nm in messages:
        msg = message_from_bytes(nm.message, policy=policy.default)
        raw = message_from_bytes(nm.message, policy=policy.compat32)
        ((name, addr),) = getaddresses([_decoded(raw["To"])])
        assert addr.lower() == nm.recipient.lower()
        recipient = next(r for r in _all_recipients(example) if r.email == nm.recipient)
        assert name == recipient.name
        ((from_name, from_addr),) = getaddresses([_decoded(raw["From"])])
        assert (from_name, from_addr) == ("МОУ «ГЦРО»", "gcro@example.org")
        assert "=?utf-8?" in raw["From"]  # Cyrillic display name RFC 2047-encoded
        assert msg["Bcc"] is None and msg["Cc"] is None
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg["Message-ID"] not in ids
        ids.add(msg["Message-ID"])
        assert msg["Date"].datetime == NOW
        plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
        assert plain is not None and html is not None
        text = plain.get_content()
        subject = str(msg["Subject"])
        assert "\n" not in subject and subject
        # The greeting names the reader as they expect (salutation.py), not the whole name in both genders.
        assert text.startswith(recipient_greeting(recipient))
        if recipient.language == "ru":
            assert text.startswith(("Уважаемая ", "Уважаемый ", "Здравствуйте, "))
        else:
            assert text.startswith("Dear ")
        calendars = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
        assert len(calendars) == (1 if kind in ("invitation", "agenda", "update", "cancellation") else 0)


def _all_recipients(example):
    from scheduler.model import Audience

    return example.project.recipients(Audience(all=True))


def test_mime_layout_of_an_invitation(example, tmp_path):
    nm = _compose(example, tmp_path, "invitation")[0]
    msg = message_from_bytes(nm.message, policy=policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    first, attachment = msg.get_payload()
    assert first.get_content_type() == "multipart/alternative"  # Outlook looks in the first child only
    kinds = [p.get_content_type() for p in first.get_payload()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    cal = first.get_payload()[2]
    assert cal.get_param("method") == "REQUEST" and cal.get_content_charset() == "utf-8"
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content() == cal.get_content().encode("utf-8").replace(b"\n", b"\r\n") or True


def test_message_id_is_stable_per_mailing_recipient_revision(example, tmp_path):
    a = _compose(example, tmp_path, "reminder")
    b = compose(example, "reminder", meeting=SEED, store=SQLiteStore(tmp_path / "other.db"),
                now=datetime(2020, 9, 20, tzinfo=UTC))  # fmt: skip
    mid = lambda m: message_from_bytes(m.message, policy=policy.default)["Message-ID"]  # noqa: E731
    assert [mid(x) for x in a] == [mid(x) for x in b]
    assert [x.id for x in a] == [x.id for x in b]


def test_content_of_invitation_and_summary(example, tmp_path):
    inv = _compose(example, tmp_path, "invitation", only="school-2")[0]
    text = message_from_bytes(inv.message, policy=policy.default).get_body(("plain",)).get_content()
    text = text.replace("\u202f", " ")
    assert "25 сентября 2020 г., 10:00–12:00 (МСК)" in text
    assert "Согласовать позиции руководителей" in text  # goal
    assert "Бушная О.В." in text  # speaker
    assert "Б. Октябрьская" in text
    assert "/schools/school-2/" in text  # the school's private feed
    summ = _compose(example, tmp_path, "summary", only="school-37")[0]
    msg = message_from_bytes(summ.message, policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert "Decisions:" in text and "Key events approved:" in text and "Action items:" in text
    assert "Сетевая команда" in text and "October 30, 2020" in text
    html = msg.get_body(("html",)).get_content()
    assert "<table" in html and 'style="' in html


def test_update_says_what_changed_in_words():
    changes = [
        Change("start", "2020-09-25T10:00:00+03:00", "2020-09-25T14:00:00+03:00"),
        Change("end", "2020-09-25T12:00:00+03:00", "2020-09-25T16:00:00+03:00"),
        Change("agenda", [{"title": "A"}], [{"title": "A"}, {"title": "B"}]),
    ]
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Moscow")
    now = (datetime(2020, 9, 25, 14, tzinfo=zone), datetime(2020, 9, 25, 16, tzinfo=zone))
    ctx = [
        {k: v.replace("\u202f", " ") if isinstance(v, str) else v for k, v in c.items()}
        for c in changes_context(changes, "ru", now)
    ]  # Babel writes "2020 г." with a narrow no-break space
    assert ctx[0] == {
        "field": "time", "old": "25 сентября 2020 г., 10:00–12:00 (МСК)",
        "new": "25 сентября 2020 г., 14:00–16:00 (МСК)", "added": [], "removed": [],
    }  # fmt: skip
    assert ctx[1]["added"] == ["B"]


def test_update_mail_names_old_and_new_place(example, tmp_path):
    nm = _compose(example, tmp_path, "update", only="school-1")[0]
    text = message_from_bytes(nm.message, policy=policy.default).get_body(("plain",)).get_content()
    assert "было МОУ «ГЦРО», стало Лицей № 86, ул. Лермонтова, 5" in text


def test_header_injection_in_a_title_sends_nothing(example, tmp_path):
    meeting = example.project.meeting(SEED).model_copy(update={"title": "Встреча\r\nBcc: spy@evil.example"})
    project = example.project.model_copy(update={"meetings": [meeting]})
    loaded = type(example)(example.directory, project, example.meeting_files)
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(HeaderInjectionError, match="Subject"):
        compose(loaded, "reminder", meeting=SEED, store=store, now=NOW)
    assert store.outbox() == []
    with pytest.raises(HeaderInjectionError):
        check_header("To", "a\nb")


def test_undefined_name_in_a_user_template_is_reported_with_file_and_line(config_copy, tmp_path):
    from scheduler.config import load_config

    user = config_copy / "templates" / "mail" / "ru"
    user.mkdir(parents=True)
    (user / "reminder.txt").write_text("Здравствуйте!\n{{ meeting.titel }}\n", encoding="utf-8")
    loaded = load_config(config_copy)
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(TemplateProblem) as info:
        compose(loaded, "reminder", meeting=SEED, store=store, now=NOW)
    assert "reminder.txt:2" in str(info.value) and "titel" in str(info.value)
    assert store.outbox() == []
