"""Properties of rendered mail over generated meeting text: it parses back, escapes, and keeps headers whole."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import icalendar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.config import LoadedConfig
from scheduler.mailings import compose
from scheduler.model import Project
from scheduler.state import SQLiteStore

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
        assert " ".join(title.split()) in " ".join(str(msg["Subject"]).split())
        assert msg["To"].addresses[0].addr_spec == m.recipient
        html = msg.get_body(("html",)).get_content()
        assert "<script>alert(1)</script>" not in html  # data never becomes markup
        cal = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
        event = icalendar.Calendar.from_ical(cal.get_payload(decode=True)).walk("VEVENT")[0]
        assert str(event["SUMMARY"]) == title
        assert place in str(event["LOCATION"])
