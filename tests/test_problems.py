"""Configuration errors a person reads: the root cause first, knock-on errors folded, types as expectations."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from scheduler.config import load_config
from scheduler.errors import ConfigError
from scheduler.problems import error_sentence
from scheduler.translation import current_language, use_language


@pytest.fixture
def russian():
    before = current_language()
    use_language("ru")
    yield
    use_language(before, chosen=False)


def _problems(directory) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return [str(p) for p in info.value.problems]


def test_a_yaml_syntax_error_is_shown_alone(config_copy, edit):
    # participants.yaml unreadable: every reference to its schools would fail; only the cause is shown.
    edit("participants.yaml", "schools:\n", "schools:\n  - id: [unclosed\n")
    found = _problems(config_copy)
    assert len(found) == 1 and "participants.yaml" in found[0] and "YAML syntax error" in found[0], found


def test_a_missing_file_is_shown_alone(config_copy):
    (config_copy / "participants.yaml").unlink()
    found = _problems(config_copy)
    assert len(found) == 1 and "missing: list the participating schools here" in found[0], found


def test_an_unknown_school_is_named_once_with_its_other_references(config_copy, edit):
    edit("participants.yaml", "  - id: school-2\n", "  - id: school-two\n")
    found = _problems(config_copy)
    unknown = [p for p in found if "unknown school 'school-2'" in p]
    assert len(unknown) == 1, found
    assert "(and 2 more references to it)" in unknown[0], found  # a team, a key event and one more


def test_references_to_a_broken_entry_are_counted_on_it(config_copy, edit):
    edit("participants.yaml", "  - id: school-2\n", "  - id: school-2\n    phone: 123\n")
    found = _problems(config_copy)
    assert len(found) == 1, found
    assert (
        "schools[1].phone: unknown field (check the spelling) (3 references to it wait on this)" in found[0]
    )


def test_root_causes_come_before_their_consequences(config_copy, edit):
    edit("participants.yaml", "  - id: school-2\n", "  - id: school-two\n")
    edit("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 10:00", "start: tomorrow")
    found = _problems(config_copy)
    assert "is not a date (2021-01-28)" in found[0] and "unknown school" in found[-1], found


@pytest.mark.parametrize(
    ("file", "old", "new", "english", "russian"),
    [
        ("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 10:00", "start: tomorrow 10:00",
         "'tomorrow 10:00' is not a date (2021-01-28) or a date with a time (2021-01-28 10:00)",
         "ожидается дата (например, 2021-01-28) или дата и время (например, 2021-01-28 10:00); "
         "указано: 'tomorrow 10:00'"),
        ("meetings/2020-09-25-heads.yaml", "due: 2020-10-30", "due: end of October",
         "expected a date, for example 2020-09-25 (given: 'end of October')",
         "ожидается дата, например 2020-09-25 (указано: 'end of October')"),
        ("cyclogram.yaml", "when: {date: 2020-12-10}", "when: {date: 10.12.2020}",
         "expected a date, for example 2020-09-25 (given: '10.12.2020')",
         "ожидается дата, например 2020-09-25 (указано: '10.12.2020')"),
    ],
)  # fmt: skip
def test_a_type_error_says_what_is_expected_with_an_example(
    config_copy, edit, file, old, new, english, russian
):
    edit(file, old, new)
    found = _problems(config_copy)
    assert any(english in p for p in found) and not any("Input should be" in p for p in found), found
    use_language("ru")
    try:
        assert any(russian in p for p in _problems(config_copy)), _problems(config_copy)
    finally:
        use_language(None, chosen=False)


@pytest.mark.parametrize(
    "kind",
    [
        "datetime_parsing", "datetime_from_date_parsing", "date_parsing", "date_from_datetime_parsing",
        "time_parsing", "int_parsing", "float_parsing", "bool_parsing", "string_type", "list_type",
        "dict_type", "model_type", "url_parsing", "missing", "extra_forbidden",
    ],
)  # fmt: skip
def test_every_mapped_type_error_reads_as_a_sentence_in_both_languages(kind, russian):
    text = error_sentence({"type": kind, "msg": "Input should be something", "input": "x"})
    assert "Input should" not in text and text
    assert not text.isascii()  # Russian letters


def test_a_missing_meetings_folder_and_an_empty_cyclogram_are_warnings(config_copy, tmp_path):
    shutil.rmtree(config_copy / "meetings")
    (config_copy / "cyclogram.yaml").write_text("# nothing yet\n", encoding="utf-8")
    loaded = load_config(config_copy)
    warnings = [str(w) for w in loaded.warnings]
    assert any("no meetings/ folder" in w for w in warnings), warnings
    assert any("cyclogram.yaml" in w and "is empty" in w for w in warnings), warnings
    result = CliRunner().invoke(
        cli.main, ["--config", str(config_copy), "--state", str(tmp_path), "validate"]
    )
    assert result.exit_code == 0 and "warning:" in result.output and "no meetings/ folder" in result.output


def test_plan_from_after_to_is_a_command_line_error(tmp_path):
    result = CliRunner().invoke(
        cli.main, ["--state", str(tmp_path), "plan", "--from", "2021-01-01", "--to", "2020-09-01"]
    )
    assert result.exit_code == 2 and "--to is before --from" in result.output


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["network", "digital"]), min_size=1, max_size=6))
def test_any_number_of_references_to_one_unknown_school_is_one_problem(config_copy, teams):
    # A key event listing a school nobody declared once per drawn item: one problem, counting the others.
    extra = "\n".join(f"      - ghost-school  # {i}" for i, _ in enumerate(teams))
    path = config_copy / "cyclogram.yaml"
    original = path.read_text(encoding="utf-8")
    event = (
        '  - id: ghost-visit\n    title: "Визит"\n    when: {date: 2020-12-11}\n'
        f"    audience:\n      schools:\n{extra}\n"
    )
    path.write_text(original.replace("events:\n", "events:\n" + event, 1), encoding="utf-8")
    try:
        found = [p for p in _problems(config_copy) if "ghost-school" in p]
    finally:
        path.write_text(original, encoding="utf-8")
    assert len(found) == 1, found
    more = len(teams) - 1
    assert (f"(and {more} more reference" in found[0]) == bool(more), found


def test_a_wrong_id_and_a_wrong_month_say_what_they_expect(config_copy, edit):
    edit("participants.yaml", "  - id: school-2\n", "  - id: School 2\n")
    found = "\n".join(_problems(config_copy))
    assert (
        "expected an id: small Latin letters, digits, «-» and «_», for example school-2 (given: 'School 2')"
        in found
    )
    month = {
        "type": "string_pattern_mismatch",
        "input": "2021-2",
        "ctx": {"pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
    }
    assert error_sentence(month) == "expected a month, for example 2021-02 (given: '2021-2')"
