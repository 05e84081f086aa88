"""Loading the configuration: the seed's facts survive, and every broken rule is reported where it is."""

from __future__ import annotations

from datetime import UTC, date, time
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
