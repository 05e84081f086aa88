"""Properties of rendered mail over generated meeting text: it parses back, escapes, and keeps headers whole."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.utils import parseaddr

import icalendar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.config import LoadedConfig
from scheduler.mailings import compose
from scheduler.model import Project
from scheduler.salutation import shorten
from scheduler.store import SQLiteStore

NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)

# One line of text as organisers type it: Cyrillic, quotes, markup characters, emoji; never a line break.
line = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\r\n\x85"
        ),
        min_size=1,
        max_size=120,
    )
    .map(str.strip)
    .filter(bool)
)
markup = st.sampled_from(["<script>alert(1)</script>", "<b>жирный</b>", "A & B", '"кавычки" «ёлочки»'])


def _with(project: Project, **changes: object) -> Project:
    data = project.model_dump(mode="json")
    seed = next(m for m in data["meetings"] if m["id"] == "heads-2020-09")
    seed.update(changes)
    return Project.model_validate(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.one_of(line, st.tuples(line, markup).map(" ".join)), place=line, item=markup)
def test_any_title_renders_parses_and_escapes(example, title, place, item):
    project = _with(
        example.project,
        title=title,
        place={"name": place, "address": None},
        agenda=[{"title": item, "start": None, "end": None, "speakers": []}],
    )
    loaded = LoadedConfig(directory=example.directory, project=project, meeting_files={})
    store = SQLiteStore(":memory:")
    try:
        messages = compose(loaded, "invitation", meeting="heads-2020-09", store=store, now=NOW)
    finally:
        store.close()
    assert len(messages) == len(project.recipients(project.meeting("heads-2020-09").audience))
    for m in messages:
        msg = email.message_from_bytes(m.message, policy=policy.default)
        # Every space survives encoding and folding; a long title is cut for the subject, whole in the body.
        assert shorten(title).removesuffix("…") in str(msg["Subject"])
        body = " ".join(msg.get_body(("plain",)).get_content().split())
        assert " ".join(title.split()) in body
        assert msg["To"].addresses[0].addr_spec == m.recipient
        html = msg.get_body(("html",)).get_content()
        assert "<script>alert(1)</script>" not in html  # data never becomes markup
        cal = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
        event = icalendar.Calendar.from_ical(cal.get_payload(decode=True)).walk("VEVENT")[0]
        assert str(event["SUMMARY"]) == title
        assert place in str(event["LOCATION"])


def test_the_seed_title_survives_in_subject_and_names_exactly(example):
    store = SQLiteStore(":memory:")
    try:
        messages = compose(example, "invitation", meeting="heads-2020-09", store=store, now=NOW)
    finally:
        store.close()
    title = example.project.meeting("heads-2020-09").title
    for m in messages:
        raw = m.message.decode("ascii")  # 7-bit on the wire
        assert max(len(line) for line in raw.split("\r\n")) <= 998
        msg = email.message_from_bytes(m.message, policy=policy.default)
        short = shorten(title)  # the subject carries the short title; the body the full one
        assert len(short) < len(title) and short in str(msg["Subject"])
        legacy = str(make_header(decode_header(_raw_header(raw, "Subject"))))
        assert short in legacy  # a plain RFC 2047 decoder reads the same
        assert title in " ".join(msg.get_body(("plain",)).get_content().split())
        # Names longer than one encoded-word (75 characters) are split in several; Python before 3.14
        # keeps the space between them in a display name (gh-128110), RFC 2047 decoders drop it.
        assert msg["From"].addresses[0].addr_spec == example.project.settings.organizer.email
        assert _display_name(raw, "From") == example.project.settings.organizer.name
        assert _display_name(raw, "To") in {
            r.name for r in example.project.recipients(example.project.meeting("heads-2020-09").audience)
        }


def _display_name(raw: str, name: str) -> str:
    """The display name of an address header, decoded by the RFC 2047 decoder of `email.header`."""
    phrase, _ = parseaddr(_raw_header(raw, name).replace("\r\n", ""))
    return str(make_header(decode_header(phrase)))


def _raw_header(raw: str, name: str) -> str:
    head = raw.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}: "))
    value = [lines[start][len(name) + 2 :]]
    for line in lines[start + 1 :]:
        if not line[:1].isspace():
            break
        value.append(line)
    return "\r\n".join(value)
