"""Odd YAML types a new user writes by mistake: each refused with a located message, never read as nonsense."""

from __future__ import annotations

from datetime import time

import pytest

from tests.test_config import only, problems_of


@pytest.mark.parametrize(
    ("file", "old", "new", "path"),
    [
        # YAML reads `yes`/`true` as a boolean, which pydantic would take for the number 1
        (
            "project.yaml",
            "invitation: {days_before: 14",
            "invitation: {days_before: true",
            "mailings.invitation.days_before",
        ),
        ("project.yaml", "catch_up_hours: 24", "catch_up_hours: yes", "mailings.catch_up_hours"),
        # ... or for a time of day: `time: true` would be 00:01
        (
            "cyclogram.yaml",
            'time: "15:00", end_time: "16:30"',
            'time: true, end_time: "16:30"',
            "events[0].when.time",
        ),
        (
            "project.yaml",
            'reminder: {days_before: 1, at: "09:00"}',
            "reminder: {days_before: 1, at: false}",
            "mailings.reminder.at",
        ),
    ],
)
def test_a_boolean_is_not_a_number_nor_an_hour(config_copy, edit, file, old, new, path):
    edit(file, old, new)
    p = only(problems_of(config_copy), file, path)
    assert "true/false" in p.message
    assert p.line is not None


@pytest.mark.parametrize("value", ["10", "1.5", "1500"])
def test_a_bare_number_is_not_read_as_minutes_or_seconds(config_copy, edit, value):
    # `at: 10` meant 10:00 and became 00:10; `at: 1.5` became 1.5 seconds past midnight
    edit(
        "project.yaml",
        'reminder: {days_before: 1, at: "09:00"}',
        f"reminder: {{days_before: 1, at: {value}}}",
    )
    p = only(problems_of(config_copy), "project.yaml", "mailings.reminder.at")
    assert f"not the number {value}" in p.message


def test_an_unquoted_hour_is_still_read_as_yaml_gives_it(config_copy, edit):
    from scheduler.config import load_config

    edit("project.yaml", 'reminder: {days_before: 1, at: "09:00"}', "reminder: {days_before: 1, at: 18:30}")
    assert load_config(config_copy).project.settings.mailings.reminder.at == time(18, 30)


@pytest.mark.parametrize(
    ("old", "new", "first"),
    [
        # a tab breaks participants.yaml: its syntax error, not fourteen unknown schools and teams, comes first
        ("  - id: school-2", "\t- id: school-2", ""),
        # a number as a school's id: the id itself, not the audiences that name school-2
        ("id: school-2", "id: 2", "schools[1].id"),
    ],
)
def test_the_root_cause_is_listed_before_its_consequences(config_copy, edit, old, new, first):
    edit("participants.yaml", old, new)
    problems = problems_in_order(config_copy)
    assert problems[0].file.name == "participants.yaml" and problems[0].path == first, problems[0]
    if first:
        assert any("unknown school" in p.message for p in problems[1:])
    else:  # a file that cannot be read is shown alone (issue 12 item 4), not before its consequences
        assert len(problems) == 1 and "YAML syntax error" in problems[0].message, problems


def problems_in_order(config):
    """The problems as the user reads them."""
    from scheduler.config import load_config
    from scheduler.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(config)
    return info.value.problems


@pytest.mark.parametrize("control", ["\u202e", "\u202a", "\u2066", "\u2069"])
def test_a_bidirectional_override_is_refused_in_names(config_copy, edit, control):
    # An override at the start of a name would show a reordered text in every subject and feed.
    edit("participants.yaml", 'name: "Средняя школа № 1"', f'name: "{control}Средняя школа № 1"')
    p = only(problems_of(config_copy), "participants.yaml", "schools[0].name")
    assert f"U+{ord(control):04X}" in p.message and "bidirectional" in p.message


def test_a_right_to_left_mark_is_still_a_name(config_copy, edit):
    from scheduler.config import load_config

    edit("participants.yaml", 'name: "Средняя школа № 1"', 'name: "Средняя школа № 1 \u200f"')
    assert load_config(config_copy).project.schools[0].name.endswith("\u200f")
