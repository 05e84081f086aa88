"""Loading the configuration: the seed's facts survive, and every broken rule is reported where it is."""

from __future__ import annotations

from datetime import UTC, date, time, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from scheduler.config import load_config
from scheduler.errors import ConfigError, Problem
from scheduler.model import MonthOnly, Recurrence
from scheduler.validation import validate_all

SEED_MEETING = "meetings/2020-09-25-heads.yaml"


def problems_of(directory: Path, *, templates: bool = False) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        (validate_all if templates else load_config)(directory)
    return info.value.problems


def only(problems: list[Problem], file: str, path: str) -> Problem:
    found = [p for p in problems if p.file.as_posix().endswith(file) and p.path == path]
    assert found, f"no problem at {file} {path}; got:\n" + "\n".join(map(str, problems))
    return found[0]


# --- the seed document, read back out of the model -------------------------------------------------------


def test_seed_meeting_carries_every_part_of_the_document(example):
    project = example.project
    m = project.meeting("heads-2020-09")
    assert m.title.startswith("Встреча руководителей образовательных учреждений")
    assert "Развитие культуры проектного управления" in m.title
    assert m.goal == (
        "Согласовать позиции руководителей по ключевым вопросам реализации проекта в 2020-2021 учебном году."
    )
    assert len(m.tasks) == 4
    assert m.tasks[1] == "Проанализировать взаимосвязь между авторскими (единичными) проектами и Сетевым."
    assert len(m.planned_results) == 3
    assert "«фронта»" in m.planned_results[0]
    assert m.products == ["Циклограмма работы", "Ключевые мероприятия", "Примерный формат основных продуктов"]

    titles = [item.title for item in m.agenda]
    assert len(titles) == 7
    assert titles[0] == "Регистрация участников."
    assert titles[3] == "Утверждение ключевых мероприятий, основных продуктов проекта."
    assert titles[6] == "Разное."
    assert "департамента образования мэрии города Ярославля" in titles[1]
    assert [(s.name, s.role) for s in m.agenda[1].speakers] == [
        ("Бушная О.В.", "директор МОУ «ГЦРО», руководитель муниципального проекта")
    ]
    trio = ["Бушная О.В.", "Богомолова Л.В.", "Хабарова О.Е."]
    assert [s.name for s in m.agenda[2].speakers] == trio
    assert [s.name for s in m.agenda[4].speakers] == trio
    assert "публикациях" in titles[4]
    assert not m.agenda[0].speakers and not m.agenda[5].speakers

    start, end = project.meeting_start(m), project.meeting_end(m)
    assert start.astimezone(UTC).replace(tzinfo=None).isoformat() == "2020-09-25T07:00:00"
    assert end.astimezone(UTC).replace(tzinfo=None).isoformat() == "2020-09-25T09:00:00"
    assert str(start.tzinfo) == "Europe/Moscow"
    assert m.place.name == "МОУ «ГЦРО»"
    assert m.place.address == "Б. Октябрьская, д.44/60"
    assert m.audience.all


def test_example_cyclogram_covers_the_year_and_every_kind_of_date(example):
    project = example.project
    events = project.all_events()
    year = project.settings.school_year
    assert all(e.first_day in year and e.last_day in year for e in events)
    kinds = {type(e.when).__name__ for e in events}
    assert kinds == {"OnDate", "DateRange", "MonthOnly", "Recurrence"}
    approved = {e.id for e in events if e.source == "heads-2020-09"}
    assert approved == {"team-passports", "publications-collection"}
    consultations = next(e for e in events if e.id == "consultations")
    assert isinstance(consultations.when, Recurrence)
    days = consultations.when.occurrences()
    assert days[0] == date(2020, 10, 29)
    assert date(2020, 12, 31) not in days  # excluded: New Year's Eve
    assert all(d.weekday() == 3 for d in days)
    month = next(e for e in events if isinstance(e.when, MonthOnly))
    assert month.first_day.day == 1


def test_recipients_are_heads_and_notified_contacts_each_once(example):
    project = example.project
    everyone = project.recipients(project.meeting("heads-2020-09").audience)
    emails = [r.email for r in everyone]
    assert len(emails) == len(set(emails)) == 6
    assert "deputy@school1.example.org" in emails
    assert {r.language for r in everyone if r.school == "school-37"} == {"en"}
    network = project.recipients(project.meeting("network-seminar-2021-01").audience)
    assert {r.school for r in network} == {"school-1", "school-2", "gymnasium-3"}


def test_time_slots_accept_the_seeds_dotted_form(config_copy, edit):
    edit("meetings/2021-01-28-network-seminar.yaml", 'start: "15:00"', 'start: "15.00"')
    m = load_config(config_copy).project.meeting("network-seminar-2021-01")
    assert m.agenda[0].start == time(15, 0)


# --- each validation rule, with a broken copy of the example ---------------------------------------------


def test_unknown_time_zone(config_copy, edit):
    edit("project.yaml", "timezone: Europe/Moscow", "timezone: Europe/Yaroslavl")
    p = only(problems_of(config_copy), "project.yaml", "timezone")
    assert "unknown time zone" in p.message and "Europe/Yaroslavl" in p.message
    assert p.line == 12


def test_end_before_start(config_copy, edit):
    edit(SEED_MEETING, "end: 2020-09-25 12:00", "end: 2020-09-25 09:00")
    p = only(problems_of(config_copy), SEED_MEETING, "end")
    assert "not after start" in p.message
    assert p.line is not None


def test_a_timed_meeting_of_months_is_a_mistyped_date(config_copy, edit):
    # It overlaps the school year, so only its length shows the start's year was typed wrong.
    edit(SEED_MEETING, "start: 2020-09-25 10:00", "start: 2019-09-25 10:00")
    p = only(problems_of(config_copy), SEED_MEETING, "start")
    assert "would last 366 days (2019-09-25 10:00 to 2020-09-25 12:00)" in p.message
    assert "at most 14 days" in p.message and p.line is not None


def test_a_conference_of_several_days_with_clock_times_is_a_meeting(config_copy, edit):
    edit(SEED_MEETING, "end: 2020-09-25 12:00", "end: 2020-09-27 18:00")
    meeting = next(m for m in load_config(config_copy).project.meetings if m.id == "heads-2020-09")
    assert (meeting.end - meeting.start).days == 2


def test_agenda_slot_outside_the_meeting(config_copy, edit):
    edit("meetings/2021-01-28-network-seminar.yaml", 'end: "16:30"', 'end: "17:30"')
    p = only(problems_of(config_copy), "2021-01-28-network-seminar.yaml", "agenda[1].end")
    assert "17:30 is outside the meeting (15:00-16:30)" in p.message


def test_unknown_school_and_team_in_audiences(config_copy, edit):
    edit(
        "cyclogram.yaml",
        "audience: {teams: [digital], schools: [school-2]}",
        "audience: {teams: [digitall], schools: [school-22]}",
    )
    problems = problems_of(config_copy)
    assert (
        "unknown team 'digitall'" in only(problems, "cyclogram.yaml", "events[2].audience.teams[0]").message
    )
    assert (
        "unknown school 'school-22'"
        in only(problems, "cyclogram.yaml", "events[2].audience.schools[0]").message
    )


def test_unknown_school_in_a_team(config_copy, edit):
    edit("participants.yaml", "schools: [lyceum-86, school-37]", "schools: [lyceum-86, school-38]")
    p = only(problems_of(config_copy), "participants.yaml", "teams[1].schools[1]")
    assert "unknown school 'school-38'" in p.message


def test_duplicate_ids(config_copy, edit):
    edit("participants.yaml", "- id: school-2", "- id: school-1")
    (config_copy / "meetings" / "copy.yaml").write_text(
        (config_copy / SEED_MEETING).read_text(encoding="utf-8"), encoding="utf-8"
    )
    problems = problems_of(config_copy)
    assert "duplicate school id 'school-1'" in only(problems, "participants.yaml", "schools[1].id").message
    dup = [p for p in problems if "duplicate meeting id 'heads-2020-09'" in p.message]
    assert len(dup) == 1 and dup[0].path == "id" and dup[0].line is not None


def test_invalid_email(config_copy, edit):
    edit("participants.yaml", "email: head@school2.example.org", "email: head@@school2")
    p = only(problems_of(config_copy), "participants.yaml", "schools[1].head.email")
    assert "invalid email address" in p.message
    assert p.line == 14


def test_event_outside_the_school_year(config_copy, edit):
    edit("cyclogram.yaml", "when: {date: 2020-12-10}", "when: {date: 2021-12-10}")
    p = only(problems_of(config_copy), "cyclogram.yaml", "events[2].when")
    assert "outside the school year 2020-2021" in p.message


def test_template_that_does_not_exist(config_copy, edit):
    edit(
        "meetings/2021-01-28-network-seminar.yaml",
        "invitation: {days_before: 10}",
        "invitation: {days_before: 10, template: festive-invitation}",
    )
    p = only(
        problems_of(config_copy, templates=True),
        "2021-01-28-network-seminar.yaml",
        "mailings.invitation.template",
    )
    assert "festive-invitation" in p.message and "does not exist" in p.message


def test_yaml_syntax_error(config_copy, edit):
    edit("cyclogram.yaml", "    responsible: {team: network}", "    responsible: {team: network")
    p = next(p for p in problems_of(config_copy) if p.file.name == "cyclogram.yaml")
    assert "YAML syntax error" in p.message
    assert p.line is not None and 20 <= p.line <= 30


def test_unknown_field_is_named(config_copy, edit):
    edit(SEED_MEETING, "goal:", "gaol:")
    problems = problems_of(config_copy)
    assert only(problems, SEED_MEETING, "gaol").message == "unknown field (check the spelling)"


def test_ill_formed_when(config_copy, edit):
    edit("cyclogram.yaml", "when: {month: 2021-02}", "when: {moth: 2021-02}")
    p = only(problems_of(config_copy), "cyclogram.yaml", "events[3].when")
    assert "give one of" in p.message


def test_every_problem_at_once(config_copy, edit):
    edit("project.yaml", "timezone: Europe/Moscow", "timezone: Mars/Olympus")
    edit("participants.yaml", "email: head@gym3.example.org", "email: not-an-address")
    edit(SEED_MEETING, "end: 2020-09-25 12:00", "end: 2020-09-25 08:00")
    files = {p.file.name for p in problems_of(config_copy)}
    assert {"project.yaml", "participants.yaml", "2020-09-25-heads.yaml"} <= files


def test_missing_directory_and_files(tmp_path):
    problems = problems_of(tmp_path / "nowhere")
    assert "does not exist" in problems[0].message
    (tmp_path / "empty").mkdir()
    names = {p.file.name for p in problems_of(tmp_path / "empty")}
    assert names == {"project.yaml", "participants.yaml"}


def test_header_injection_in_a_title_is_rejected(config_copy, edit):
    edit(SEED_MEETING, 'title: "Встреча', 'title: "Встреча\\r\\nBcc: victim@example.com\\r\\n')
    p = only(problems_of(config_copy), SEED_MEETING, "title")
    assert "single line" in p.message


def test_not_utf8(config_copy):
    (config_copy / "cyclogram.yaml").write_bytes("events: []\n# Циклограмма\n".encode("cp1251"))
    p = only(problems_of(config_copy), "cyclogram.yaml", "")
    assert "not UTF-8" in p.message


def test_a_template_with_an_undefined_name_is_found_by_validate(config_copy):
    user = config_copy / "templates" / "mail" / "ru"
    user.mkdir(parents=True)
    (user / "reminder.subject.txt").write_text("Напоминание: {{ meeting.titel }}\n", encoding="utf-8")
    problems = problems_of(config_copy, templates=True)
    assert len(problems) == 1
    p = problems[0]
    assert p.file.name == "reminder.subject.txt" and p.line == 1
    assert "titel" in p.message


def test_an_internationalised_domain_is_kept_in_its_ascii_form(config_copy, edit):
    edit("participants.yaml", "email: head@gym3.example.org", "email: head@гимназия3.рф")
    school = load_config(config_copy).project.school("gymnasium-3")
    assert school.head.email == "head@xn--3-7sbirdczi9n.xn--p1ai"
    # A Cyrillic local part is accepted (it goes out with SMTPUTF8) and is kept as written.
    edit("participants.yaml", "email: head@school2.example.org", "email: Директор@пример.рф")
    school = load_config(config_copy).project.schools[1]
    assert school.head.email == "Директор@пример.рф"
    edit("participants.yaml", "email: Директор@пример.рф", "email: дире ктор@пример.рф")
    p = only(problems_of(config_copy), "participants.yaml", "schools[1].head.email")
    assert "invalid email address" in p.message


# --- the plans real organisers write ----------------------------------------------------------------------


def _strip_minutes(config: Path) -> None:
    for path in (config / "meetings").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.split("\nminutes:")[0] + "\n", encoding="utf-8")


def test_a_year_before_its_first_minutes_validates_plans_and_rehearses(config_copy, tmp_path):
    """Every project starts so: no minutes, no action items; the template check used to crash (Babel)."""
    _strip_minutes(config_copy)
    project = validate_all(config_copy).project
    assert not any(m.minutes for m in project.meetings)
    from click.testing import CliRunner

    from cli import main

    env = {"CYCLOGRAM_CONFIG": str(config_copy), "CYCLOGRAM_STATE": str(tmp_path / "var")}
    for args in (
        ["validate"],
        ["plan"],
        ["simulate", "--from", "2020-09-01", "--to", "2020-10-01", "--maildir", str(tmp_path / "mail")],
    ):
        result = CliRunner().invoke(main, ["--now", "2020-09-01T08:00+03:00", *args], env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "Traceback" not in result.output


def test_a_user_template_for_action_reminders_is_checked_before_any_action_exists(config_copy):
    _strip_minutes(config_copy)
    user = config_copy / "templates" / "mail" / "ru"
    user.mkdir(parents=True)
    (user / "action_reminder.txt").write_text("{{ action.titel }}\n", encoding="utf-8")
    problems = problems_of(config_copy, templates=True)
    assert any("titel" in p.message for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("start: 2020-09-25 10:00", "start: 2021-02-30", "start"),
        ("start: 2020-09-25 10:00", "start: 2021-02-30 10:00:00", "start"),
        ("end: 2020-09-25 12:00", "end: 2020-09-31 12:00", "end"),
    ],
)
def test_impossible_dates_are_located(config_copy, edit, old, new, path):
    edit(SEED_MEETING, old, new)
    problems = problems_of(config_copy)
    p = next(p for p in problems if p.file.name == Path(SEED_MEETING).name)
    assert p.line == 42 + (path == "end")
    assert "2021-02-30" in p.message or "2020-09-31" in p.message
    assert "range" in p.message


def test_the_seeds_dotted_hours_in_start_and_end(config_copy, edit):
    edit(SEED_MEETING, "start: 2020-09-25 10:00", "start: 2020-09-25 10.00")
    edit(SEED_MEETING, "end: 2020-09-25 12:00", 'end: "2020-09-25 12.00"')
    m = load_config(config_copy).project.meeting("heads-2020-09")
    assert (m.start.hour, m.end.hour) == (10, 12)


def test_registration_before_the_start_and_slots_after_midnight(config_copy, edit):
    seminar = "meetings/2021-01-28-network-seminar.yaml"
    edit(seminar, 'start: "15:00"', 'start: "14:30"')  # registration half an hour early
    m = load_config(config_copy).project.meeting("network-seminar-2021-01")
    assert m.agenda[0].start == time(14, 30)
    edit(seminar, "start: 2021-01-28 15:00", "start: 2021-01-28 20:00")
    edit(seminar, "end: 2021-01-28 16:30", "end: 2021-01-29 02:00")
    edit(seminar, 'start: "14:30"', 'start: "23:30"')
    edit(seminar, 'end: "16:00"', 'end: "00:30"')
    edit(seminar, 'start: "16:00"', 'start: "01:00"')
    edit(seminar, 'end: "16:30"', 'end: "02:00"')
    m = load_config(config_copy).project.meeting("network-seminar-2021-01")
    begin, end = m.agenda[0].slot(m.start, m.end)
    assert (begin.isoformat(), end.isoformat()) == ("2021-01-28T23:30:00", "2021-01-29T00:30:00")
    assert m.agenda[1].slot(m.start, m.end)[0].isoformat() == "2021-01-29T01:00:00"
    edit(seminar, 'start: "23:30"', 'start: "12:00"')  # clearly outside: eight hours early
    p = only(problems_of(config_copy), seminar, "agenda[0].start")
    assert "12:00 is outside the meeting (20:00-02:00)" in p.message
    assert "two hours before the start" in p.message


def test_an_online_only_meeting_needs_no_place(config_copy, edit):
    seminar = "meetings/2021-01-28-network-seminar.yaml"
    edit(seminar, 'place:\n  name: "Средняя школа № 1"\n  address: "ул. Примерная, д. 1"\n', "")
    m = load_config(config_copy).project.meeting("network-seminar-2021-01")
    assert m.place is None and m.location == "https://meet.example.org/network-seminar"
    edit(seminar, 'online_url: "https://meet.example.org/network-seminar"\n', "")
    p = only(problems_of(config_copy), seminar, "")
    assert "give a place, an online_url, or both" in p.message


def test_a_meeting_given_as_dates_is_all_day(config_copy, edit):
    seminar = "meetings/2021-01-28-network-seminar.yaml"
    edit(seminar, "start: 2021-01-28 15:00", "start: 2021-01-28")
    edit(seminar, "end: 2021-01-28 16:30", "end: 2021-01-29")
    project = load_config(config_copy).project
    m = project.meeting("network-seminar-2021-01")
    assert m.all_day and m.start == date(2021, 1, 28) and m.end == date(2021, 1, 29)
    assert project.meeting_end(m).isoformat() == "2021-01-30T00:00:00+03:00"
    edit(seminar, "end: 2021-01-29", "end: 2021-01-29 10:00")
    p = only(problems_of(config_copy), seminar, "")
    assert "both dates" in p.message


def test_key_events_across_the_year_boundary_and_in_the_summer(config_copy, edit):
    edit("cyclogram.yaml", "when: {date: 2020-12-10}", "when: {start: 2020-08-26, end: 2020-09-02}")
    edit("cyclogram.yaml", "when: {month: 2021-02}", "when: {month: 2021-07}")
    project = load_config(config_copy).project
    assert {e.id for e in project.events} >= {"digital-workshop", "interim-reports"}
    edit("cyclogram.yaml", "when: {start: 2020-08-26, end: 2020-09-02}", "when: {date: 2020-08-26}")
    p = only(problems_of(config_copy), "cyclogram.yaml", "events[2].when")
    assert "outside the school year 2020-2021" in p.message


def test_a_range_of_months(config_copy, edit):
    edit("cyclogram.yaml", "when: {month: 2021-02}", "when: {month: 2020-11, end_month: 2020-12}")
    event = next(e for e in load_config(config_copy).project.events if e.id == "interim-reports")
    assert (event.first_day, event.last_day) == (date(2020, 11, 1), date(2020, 12, 31))
    edit("cyclogram.yaml", "end_month: 2020-12}", "end_month: 2020-09}")
    p = only(problems_of(config_copy), "cyclogram.yaml", "events[3].when")
    assert "end_month is before month" in p.message


def _recurrence(**fields):
    return Recurrence.model_validate({"start": date(2020, 9, 1), "until": date(2021, 5, 31), **fields})


def test_the_rrule_vocabulary():
    tenth = _recurrence(freq="monthly", by_month_day=10)
    assert tenth.occurrences()[:2] == [date(2020, 9, 10), date(2020, 10, 10)]
    fortnight = _recurrence(freq="weekly", interval=2, by_day="TU")
    days = fortnight.occurrences()
    assert days[0] == date(2020, 9, 1) and {(b - a).days for a, b in pairwise(days)} == {14}
    for spelled in ("-1TH", "last thursday", ["-1th"]):
        last = _recurrence(freq="monthly", by_day=spelled)
        assert last.by_day == ["-1TH"]
        assert all(d.weekday() == 3 and (d + timedelta(days=7)).month != d.month for d in last.occurrences())
    counted = Recurrence.model_validate(
        {"freq": "weekly", "by_day": ["MO", "WE"], "start": date(2020, 9, 1), "count": 5,
         "exclude": [date(2020, 9, 9)], "rdates": [date(2020, 9, 12)]}
    )  # fmt: skip
    assert counted.occurrences() == [
        date(2020, 9, 2), date(2020, 9, 7), date(2020, 9, 12), date(2020, 9, 14), date(2020, 9, 16)
    ]  # fmt: skip
    last_workday = _recurrence(freq="monthly", by_day=["MO", "TU", "WE", "TH", "FR"], by_set_pos=-1)
    assert last_workday.occurrences()[0] == date(2020, 9, 30)
    yearly = _recurrence(freq="yearly", by_month=[9, 12], by_month_day=1)
    assert yearly.occurrences() == [date(2020, 9, 1), date(2020, 12, 1)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"freq": "monthly", "every": "month"}, "not both"),
        ({"freq": "weekly", "by_day": "-1TH"}, "ordinal"),
        ({"freq": "weekly", "by_month_day": 3}, "by_month_day"),
        ({"freq": "monthly", "by_day": "lastish thursday"}, "is not a day"),
        ({"freq": "monthly", "until": None}, "until"),
        ({"freq": "monthly", "count": 3}, "not both"),
        ({"every": "month", "weekday": "monday", "interval": 2}, "with `freq`"),
    ],
)
def test_recurrence_mistakes_are_named(fields, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        _recurrence(**fields)
    assert message in str(info.value)


def test_a_school_in_another_zone(config_copy, edit):
    edit("participants.yaml", "    language: en ", "    timezone: Europe/Kaliningrad\n    language: en ")
    project = load_config(config_copy).project
    school = project.school("school-37")
    assert school.timezone == "Europe/Kaliningrad"
    assert str(project.school_zone(school)) == "Europe/Kaliningrad"
    edit("participants.yaml", "timezone: Europe/Kaliningrad", "timezone: Europe/Kenigsberg")
    p = next(p for p in problems_of(config_copy) if p.path.endswith(".timezone"))
    assert "unknown time zone" in p.message


# --- one rule for text: control characters and sizes ------------------------------------------------------


def _text_fields():
    """Every field of every documented model whose value is (or holds) text an organiser writes."""
    from typing import Annotated

    from pydantic import TypeAdapter

    from scheduler import reference

    for _, cls in reference.SECTIONS:
        for name, field in cls.model_fields.items():
            shown = repr(field.annotation) + repr(field.metadata)
            if "str" not in shown or "Literal[" in shown or name == "mailings":
                continue
            annotation = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            adapter = TypeAdapter(annotation)
            yield f"{cls.__name__}.{name}", adapter, "list[" in shown, "_multi_line" in shown


@pytest.mark.parametrize("char", ["\r", "\n", "\x00", "\t", "\u2028", "\u2029", "\x85", "\x0b", "\x1b"])
def test_one_rule_refuses_control_characters_in_every_text_field(char):
    from pydantic import ValidationError

    fields = list(_text_fields())
    assert len(fields) > 30  # names, titles, ids, places, emails, zones, teams, speakers...
    for where, adapter, is_list, multiline in fields:
        value = f"school{char}1" if "mail" not in where else f"head{char}@example.org"
        try:
            adapter.validate_python([value] if is_list else value)
        except ValidationError:
            continue
        assert multiline and char in "\n\t", f"{where} accepted {char!r}"


def test_multi_line_fields_keep_line_breaks_but_no_other_controls(config_copy, edit):
    edit(SEED_MEETING, "goal:", 'goal: "Первая строка.\\nВторая строка."\ngoal_old:')
    edit(SEED_MEETING, "goal_old:", "# was:")
    m = load_config(config_copy).project.meeting("heads-2020-09")
    assert m.goal == "Первая строка.\nВторая строка."
    edit(SEED_MEETING, '"Первая строка.\\nВторая строка."', '"Первая строка.\\u0000"')
    p = only(problems_of(config_copy), SEED_MEETING, "goal")
    assert "U+0000" in p.message


@pytest.mark.parametrize(
    ("file", "old", "new", "path"),
    [
        ("participants.yaml", 'name: "Средняя школа № 1"', 'name: "Средняя школа\\n№ 1"', "schools[0].name"),
        ("project.yaml", 'name: "Муниципальный', 'name: "Муниципальный\\u2028', "name"),
        ("participants.yaml", 'name: "Сетевая команда"', 'name: "Сетевая\\u0085команда"', "teams[0].name"),
        (SEED_MEETING, '  name: "МОУ «ГЦРО»"', '  name: "МОУ\\r«ГЦРО»"', "place.name"),
    ],
)
def test_line_breaks_in_names_are_refused_where_they_are(config_copy, edit, file, old, new, path):
    edit(file, old, new)
    p = only(problems_of(config_copy), file, path)
    assert "single line" in p.message and "U+" in p.message
    assert p.line is not None


def test_sizes_are_bounded_with_clear_messages(config_copy, edit):
    edit(SEED_MEETING, "goal:", f'goal: "{"ц" * 20_001}"\n# was:')
    edit("participants.yaml", 'name: "Средняя школа № 1"', f"name: {'Ш' * 2_100}")
    problems = problems_of(config_copy)
    assert "at most 20,000 are allowed" in only(problems, SEED_MEETING, "goal").message
    assert "at most 500 are allowed" in only(problems, "participants.yaml", "schools[0].name").message
