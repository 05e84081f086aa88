"""Headers within RFC 2047 and RFC 5322 limits, read back exactly by Python's parser; controls refused."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import parseaddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import mime
from scheduler.config import LoadedConfig
from scheduler.messages import HeaderInjectionError, Rendered, build_message, check_header
from scheduler.model import Recipient

ENCODED_WORD = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=")
NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)

# Long names as organisers write them: a 290-character organiser, a 2,100-character school.
ORGANIZER = ("МОУ «Городской центр развития образования», отдел сопровождения проектов; " * 4)[:290]
SCHOOL = ("Муниципальное общеобразовательное учреждение «Средняя школа № 5 с углублённым изучением " * 30)[
    :2100
]


def _header_lines(raw: bytes, name: str) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    start = next(i for i, line in enumerate(head) if line.startswith(f"{name}: "))
    out = [head[start]]
    for line in head[start + 1 :]:
        if not line[:1].isspace():
            break
        out.append(line)
    return out


def _assert_limits(lines: list[str]) -> None:
    for line in lines:
        assert len(line.encode()) <= 78, line
        for word in re.findall(r"=\?[^ ]*?\?=", line):
            assert len(word) <= 75, word
            match = ENCODED_WORD.fullmatch(word)
            assert match, word
            base64.b64decode(match.group(1)).decode("utf-8")  # whole characters in every word


def _rfc2047_name(lines: list[str], name: str) -> str:
    value = "".join(lines)[len(name) + 2 :]
    phrase, _ = parseaddr(value)
    return str(make_header(decode_header(phrase)))


def _message(example: LoadedConfig, organizer: str, school_head: str, subject: str) -> bytes:
    project = example.project
    settings_ = project.settings.model_copy(
        update={"organizer": project.settings.organizer.model_copy(update={"name": organizer})}
    )
    project = project.model_copy(update={"settings": settings_})
    # model_construct: composition must refuse what slips past the model's own rule for fields
    recipient = Recipient.model_construct(
        school="school-1", name=school_head, email="head@school1.example.org", language="ru"
    )
    rendered = Rendered(subject=subject, text="текст\n", html="<p>текст</p>")
    return build_message(project, recipient, rendered, kind="invitation", mailing="m-1", revision=1, date=NOW)


def test_long_names_and_subject_stay_within_the_limits_and_decode_exactly(example: LoadedConfig) -> None:
    """Issue 9 item 4 and issue 10 item 6: a 290-character organiser in From, a 2,100-character name in
    To, a long subject: every encoded-word at most 75 characters, every line at most 78 octets."""
    subject = "Приглашение: " + SCHOOL[:700]
    raw = _message(example, ORGANIZER, SCHOOL, subject)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    for name in ("From", "To", "Subject"):
        _assert_limits(_header_lines(raw, name))
    msg = message_from_bytes(raw, policy=policy.default)
    assert not msg.defects
    assert str(msg["Subject"]) == subject
    assert msg["From"].addresses[0].addr_spec == example.project.settings.organizer.email
    assert msg["To"].addresses[0].addr_spec == "head@school1.example.org"
    # Python before 3.14 keeps the space between the encoded-words of a display name (gh-128110); the
    # RFC 2047 decoder of email.header, like mail clients, drops it and gets the names back exactly.
    assert _rfc2047_name(_header_lines(raw, "From"), "From") == ORGANIZER
    assert _rfc2047_name(_header_lines(raw, "To"), "To") == SCHOOL


def test_long_ascii_names_are_folded_or_encoded(example: LoadedConfig) -> None:
    long_words = "Lyceum-" * 300  # one 2,100-character word: it cannot be folded, so it is encoded
    spaced = "School number five of the city " * 10
    raw = _message(example, spaced.strip(), long_words, ("Invitation " * 40).strip())
    for name in ("From", "To", "Subject"):
        _assert_limits(_header_lines(raw, name))
    msg = message_from_bytes(raw, policy=policy.default)
    assert str(msg["Subject"]) == ("Invitation " * 40).strip()
    assert _rfc2047_name(_header_lines(raw, "To"), "To") == long_words
    assert msg["From"].addresses[0].display_name == spaced.strip()


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=400
    ).filter(lambda s: s.strip() == s and s),
    st.integers(min_value=4, max_value=30),
)
def test_any_text_encodes_within_limits_and_decodes_back(text: str, name_length: int) -> None:
    name = "X" * name_length
    head = mime.header(name, text).decode("ascii")
    lines = head.removesuffix("\r\n").split("\r\n")
    _assert_limits(lines)
    msg = message_from_bytes(head.encode() + b"\r\n", policy=policy.default)
    assert str(msg[name]) == text
    address = mime.address(text, "a@example.org", header_name="To")
    lines = f"To: {address}".split("\r\n")
    _assert_limits(lines)
    assert _rfc2047_name(lines, "To") == text
    parsed = message_from_bytes(f"To: {address}\r\n\r\n".encode(), policy=policy.default)
    assert parsed["To"].addresses[0].addr_spec == "a@example.org"


def test_short_names_stay_one_word_python_reads_exactly() -> None:
    for name in ("Иванова Анна", "Jane Smith", 'Smith, "Jane"'):
        value = mime.address(name, "a@example.org")
        assert "\r\n" not in value
        parsed = message_from_bytes(f"To: {value}\r\n\r\n".encode(), policy=policy.default)
        assert parsed["To"].addresses[0].display_name == name


@pytest.mark.parametrize("bad", ["\x00", "\t", "\x7f", "\x85", "\u2028", "\u2029", "\x1b", "\r", "\n"])
def test_control_characters_never_reach_a_header(example: LoadedConfig, bad: str) -> None:
    with pytest.raises(HeaderInjectionError, match="refusing to send"):
        check_header("Subject", f"Встреча{bad}руководителей")
    with pytest.raises(mime.HeaderValueError, match="refusing to send"):
        mime.header("Subject", f"Встреча{bad}")
    with pytest.raises(mime.HeaderValueError, match="To header"):
        mime.address(f"Иванова{bad}Анна", "a@example.org")
    with pytest.raises(HeaderInjectionError):
        _message(example, f"ГЦРО{bad}", "Иванова Анна", "Тема")
    with pytest.raises(HeaderInjectionError):
        _message(example, "ГЦРО", f"Иванова{bad}Анна", "Тема")


def test_the_error_names_the_header_and_the_character() -> None:
    with pytest.raises(mime.HeaderValueError) as info:
        mime.refuse_controls("From", "ГЦРО\x00")
    assert "From" in str(info.value) and "U+0000" in str(info.value)


def test_the_control_character_search_is_exactly_the_unicode_categories():
    import sys
    import unicodedata

    from scheduler.mime import _CONTROLS

    every = (chr(i) for i in range(sys.maxunicode + 1))
    assert [c for c in every if _CONTROLS.match(c)] == [
        chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)) in ("Cc", "Zl", "Zp")
    ]


@given(st.binary(max_size=3000))
def test_base64_bodies_are_the_standard_lines_with_crlf(data):
    assert mime._b64(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
