"""A mailing rendered once per group and spliced is byte for byte the mailing rendered per person."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import splice
from scheduler.config import LoadedConfig, load_config
from scheduler.mailings import compose
from scheduler.model import Project
from scheduler.store import SQLiteStore

NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
MEETING = "heads-2020-09"

# Names as people and organisers type them, and the worst a value can hold for a splice: markup,
# ampersands (the stand-in's escape mark), private-use characters (its delimiters), digits.
hostile = st.sampled_from(
    ["<script>alert(1)</script>", "A & B", "&amp;", '"кавычки" «ёлочки»', "\ue000123Qz0&\ue001", "0", "Qz1&",
     "Иванова Анна Петровна", "O'Brien", "{{ recipient.name }}", "  пробелы  "]
)  # fmt: skip
text = st.one_of(
    hostile,
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\r\n\x85"
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool),
)
zones = st.sampled_from(
    [None, "Europe/Moscow", "Asia/Yekaterinburg", "Europe/Kaliningrad", "Asia/Vladivostok"]
)


def _both(
    loaded: LoadedConfig, kind: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[bytes], list[bytes]]:
    """The mailing spliced, and rendered per person, from one store (one feed secret, one SEQUENCE)."""
    store = SQLiteStore(":memory:")
    try:
        fast = [m.message for m in compose(loaded, kind, meeting=MEETING, store=store, now=NOW)]
        with monkeypatch.context() as patch:
            patch.setattr(splice.SkeletonCache, "get", lambda self, *args, **kwargs: None)
            slow = [m.message for m in compose(loaded, kind, meeting=MEETING, store=store, now=NOW)]
    finally:
        store.close()
    return fast, slow


def _spliced(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each recipient's letter was spliced (True) or rendered per person (False)."""
    made: list[bool] = []
    get = splice.SkeletonCache.get

    def counting(self: splice.SkeletonCache, *args: object) -> splice.Skeleton | None:
        skeleton = get(self, *args)  # type: ignore[arg-type]
        made.append(skeleton is not None)
        return skeleton

    monkeypatch.setattr(splice.SkeletonCache, "get", counting)
    return made


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(text, min_size=5, max_size=5),
    titles=st.lists(text, min_size=5, max_size=5),
    languages=st.lists(st.sampled_from(["ru", "en"]), min_size=5, max_size=5),
    timezones=st.lists(zones, min_size=5, max_size=5),
    shared=st.booleans(),
    kind=st.sampled_from(["invitation", "agenda", "reminder"]),
)
def test_spliced_mail_is_the_per_person_mail(
    example, monkeypatch, names, titles, languages, timezones, shared, kind
):
    data = example.project.model_dump(mode="json")
    for school, name, title, language, zone in zip(
        data["schools"], names, titles, languages, timezones, strict=True
    ):
        school["head"]["name"] = name
        school["name"] = title
        school["language"] = language
        school["timezone"] = zone
    if shared:  # one head answering for two schools: one letter naming both
        data["schools"][1]["head"]["email"] = data["schools"][0]["head"]["email"]
        data["schools"][1]["language"] = data["schools"][0]["language"]
    project = Project.model_validate(data)
    loaded = LoadedConfig(directory=example.directory, project=project, meeting_files={})
    made = _spliced(monkeypatch)
    fast, slow = _both(loaded, kind, monkeypatch)
    assert fast == slow
    # The shipped templates are spliced; a letter naming several schools joins their names, which
    # a stand-in does not answer for, so that one is rendered per person.
    assert made.count(True) >= len(made) - 1


# Organisers' templates that do with a personal value what a stand-in cannot answer for: each must fall
# back to rendering per person, and every one must give the per-person bytes.
TRANSFORMING = [
    "{{ recipient.name|upper }}",
    "{{ recipient.name|length }}",
    "{{ recipient.name[:3] }}",
    "{% if recipient.name == 'Jane Smith' %}hello Jane{% endif %}",
    "{{ recipient.name in 'Jane Smith and others' }}",
    "{{ 'Jane' in recipient.name }}",
    "{% set x %}{{ recipient.name }}{% endset %}{{ x|truncate(9) }}",
    "{% filter upper %}{{ recipient.name }}{% endfilter %}",
    "{% macro m() %}{{ recipient.name }}{% endmacro %}{{ m()|lower }}",
    "{{ ('x' ~ recipient.name)|upper }}",
    "{{ ('x' + recipient.name)|upper }}",
    "{{ ''.join([recipient.name])|upper }}",
    "{{ '%s'|format(recipient.name) }}",
    "{{ '{}'.format(recipient.name) }}",
    "{{ recipient|tojson }}",
    "{{ recipient }}",
    "{{ schools|map(attribute='title')|join(', ')|upper }}",
    "{{ schools|map(attribute='title')|unique|list }}",
    "{% for c in recipient.name %}{{ c }}.{% endfor %}",
    "{{ recipient.name|e }}",
    "{{ recipient.name|replace('a', 'b') }}",
    "{{ recipient.email.split('@')[1] }}",
    "{% set n = recipient.name %}{{ n|wordcount }}",
    "{{ {'Jane Smith': 'known'}.get(recipient.name, 'unknown') }}",
    "{{ recipient.name is lower }}",
    "{{ recipient.name|wordcount }}",
    "{{ schools|map('wordcount')|join(',') }}",
    "{{ schools|map(attribute='title')|map('upper')|join(',') }}",
    "{{ schools|selectattr('title', 'in', 'Jane Smith')|list|length }}",
    "{{ {'Jane Smith': 'known'}[recipient.name]|default('unknown') }}",
    "{% set n = recipient %}{{ n.name|title }}",
    "{% for s in schools %}{% set t = s.title %}{{ t|center(80) }}{% endfor %}",
]
# What a stand-in answers for exactly: these stay spliced.
KEPT = [
    "{{ recipient.name }} <{{ recipient.email }}>",
    "{{ recipient.greeting or 'Hello' }}, {{ school.title|default('?') }}",
    "{% if feed_url %}{{ feed_url }}{% endif %}{% for s in schools if s.feed_url %}{{ s.title }}{% endfor %}",
    "{% set who = recipient.name %}{{ who }}{% if rsvp %}{{ rsvp.yes }}{% endif %}",
]


def _override(root: Path, body: str) -> LoadedConfig:
    folder = root / "templates" / "mail" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "invitation.txt").write_text("Dear " + body + "\n", encoding="utf-8")
    (folder / "invitation.html").write_text("<p>" + body + "</p>\n", encoding="utf-8")
    return load_config(root)


@pytest.mark.parametrize("body", TRANSFORMING)
def test_a_template_that_transforms_personal_values_is_rendered_per_person(config_copy, monkeypatch, body):
    loaded = _override(config_copy, body)
    made = _spliced(monkeypatch)
    fast, slow = _both(loaded, "invitation", monkeypatch)
    assert fast == slow
    # The Russian letters (shipped templates) are spliced; the English one (this template) is not.
    assert made.count(False) >= 1


@pytest.mark.parametrize("body", KEPT)
def test_a_template_that_only_shows_personal_values_is_spliced(config_copy, monkeypatch, body):
    loaded = _override(config_copy, body)
    made = _spliced(monkeypatch)
    fast, slow = _both(loaded, "invitation", monkeypatch)
    assert fast == slow
    assert made and all(made)


def test_a_broken_template_fails_as_it_always_did(config_copy):
    from scheduler.errors import TemplateProblem

    loaded = _override(config_copy, "{{ recipient.nmae }}")
    store = SQLiteStore(":memory:")
    try:
        with pytest.raises(TemplateProblem, match="nmae"):
            compose(loaded, "invitation", meeting=MEETING, store=store, now=NOW)
    finally:
        store.close()


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from("\\^;:,\"' абвЖ€😀\\\\^^"), st.characters(blacklist_categories=("Cs", "Cc"))
        ),
        max_size=300,
    )
)
def test_attendee_lines_fold_as_icalendar_folds_them(text):
    from icalendar.parser import Contentline

    from scheduler.imip import fold

    line = "ATTENDEE;CN=" + text
    assert fold(line) == Contentline(line).to_ical()
