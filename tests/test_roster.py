"""The schools as a table (schools.csv, schools.xlsx) and the fast paths that load a large roster."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import yaml
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scheduler.config import load_config
from scheduler.errors import ConfigError
from scheduler.model import _BIDI_CONTROLS, School, _bad_char, plain_address
from scheduler.roster import built_school
from scheduler.synth import Shape, SynthSpec, synth_files, write_config

HEADER_RU = "Код;Наименование ОО;Краткое наименование;ФИО руководителя;Электронная почта;Язык\n"
ROWS_RU = [
    "school-1;Средняя школа № 1;СШ № 1;Иванова Анна Петровна;head@school1.example.org;русский",
    "school-2;Средняя школа № 2;СШ № 2;Петров Сергей Николаевич;head@school2.example.org;",
    "gymnasium-3;Гимназия № 3;Гимназия № 3;Кузнецова Мария Александровна;head@gym3.example.org;",
    "lyceum-86;Лицей № 86;Лицей № 86;Соколов Дмитрий Владимирович;head@lyceum86.example.org;",
    "school-37;Средняя школа № 37;СШ № 37;Jane Smith;head@school37.example.org;английский",
]


def _teams_only(config: Path) -> None:
    """participants.yaml keeps its teams; the schools go to the table."""
    path = config / "participants.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({"teams": data["teams"]}, allow_unicode=True), encoding="utf-8")


def _table(config: Path, rows: list[str], header: str = HEADER_RU, encoding: str = "cp1251") -> Path:
    _teams_only(config)
    path = config / "schools.csv"
    path.write_bytes((header + "\n".join(rows) + "\n").encode(encoding))
    return path


def _problems(config: Path) -> list:
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    return caught.value.problems


# --- the table ------------------------------------------------------------------------------------------


def test_a_windows_1251_table_with_russian_headers_holds_the_schools(config_copy):
    _table(config_copy, ROWS_RU)
    project = load_config(config_copy).project
    assert [s.id for s in project.schools] == [
        "school-1",
        "school-2",
        "gymnasium-3",
        "lyceum-86",
        "school-37",
    ]
    first, last = project.schools[0], project.schools[-1]
    assert first.head.name == "Иванова Анна Петровна" and first.head.email == "head@school1.example.org"
    assert first.language == "ru" and last.language == "en" and project.schools[1].language is None
    assert first.title == "СШ № 1"
    assert {s.id for s in project.audience_schools(project.meetings[0].audience)} <= {
        s.id for s in project.schools
    }


def test_a_utf8_table_with_a_bom_and_the_models_own_headers(config_copy):
    header = "id,name,head.name,head.email,timezone,contact.name,contact.email,contact.notify\n"
    rows = [
        "school-1,Школа 1,Иванова Анна Петровна,head@school1.example.org,Asia/Yekaterinburg,"
        "Смирнов Олег,deputy@school1.example.org,да",
        "school-2,Школа 2,Петров Сергей,head@school2.example.org,,,,",
        "gymnasium-3,Гимназия 3,Кузнецова Мария,head@gym3.example.org,,,,",
        "lyceum-86,Лицей 86,Соколов Дмитрий,head@lyceum86.example.org,,,,",
        "school-37,Школа 37,Jane Smith,head@school37.example.org,,,,",
    ]
    _table(config_copy, rows, header, encoding="utf-8-sig")
    project = load_config(config_copy).project
    school = project.school("school-1")
    assert school.timezone == "Asia/Yekaterinburg"
    assert [(c.name, c.email, c.notify) for c in school.contacts] == [
        ("Смирнов Олег", "deputy@school1.example.org", True)
    ]
    assert project.school("school-2").contacts == []


def test_a_table_in_xlsx(config_copy):
    from openpyxl import Workbook

    _teams_only(config_copy)
    book = Workbook()
    sheet = book.active
    sheet.append([h for h in HEADER_RU.strip().split(";")])
    for row in ROWS_RU:
        sheet.append(row.split(";"))
    book.save(config_copy / "schools.xlsx")
    project = load_config(config_copy).project
    assert len(project.schools) == 5 and project.school("school-37").language == "en"


def test_bad_rows_are_located_by_file_row_and_column(config_copy):
    rows = list(ROWS_RU)
    rows[1] = "school-2;Средняя школа № 2;СШ № 2;Петров Сергей Николаевич;not-an-address;"
    rows[2] = (
        "gymnasium-3;Гимназия\x1b[31m № 3;Гимназия № 3;Кузнецова Мария Александровна;head@gym3.example.org;"
    )
    rows[3] = "Lyceum 86;Лицей № 86;Лицей № 86;Соколов Дмитрий Владимирович;head@lyceum86.example.org;"
    rows[4] = "school-37;Средняя школа № 37;СШ № 37;Jane Smith;head@school37.example.org;klingon"
    path = _table(config_copy, rows)
    problems = [p for p in _problems(config_copy) if p.file == path]
    where = {(p.line, p.path.split(" ")[0]): p.message for p in problems}
    assert "invalid email address" in where[(3, "E")]
    assert "U+001B" in where[(4, "B")]
    assert "id" in where[(5, "A")]
    assert "ru" in where[(6, "F")] and "en" in where[(6, "F")]
    assert all("«" in p.path for p in problems)  # the column's header as written
    # the team that names the bad schools is not a second problem: it waits on the row
    network = [p for p in _problems(config_copy) if p.file.name == "participants.yaml"]
    assert not [p for p in network if "gymnasium-3" in p.message or "school-2" in p.message]


def test_a_duplicate_id_names_both_rows(config_copy):
    path = _table(config_copy, [*ROWS_RU, ROWS_RU[0].replace("Средняя школа № 1", "Другая школа")])
    (problem,) = _problems(config_copy)
    assert problem.file == path and problem.line == 7 and "also row 2" in problem.message


def test_schools_in_both_places_are_refused(config_copy):
    (config_copy / "schools.csv").write_text(HEADER_RU + "\n".join(ROWS_RU), encoding="utf-8")
    problems = _problems(config_copy)
    assert any("schools.csv" in p.message and p.file.name == "participants.yaml" for p in problems)


def test_a_table_without_the_email_column_says_so_once(config_copy):
    _table(
        config_copy,
        [";".join(r.split(";")[:4]) for r in ROWS_RU],
        "Код;Наименование ОО;Краткое;ФИО руководителя\n",
    )
    (problem,) = _problems(config_copy)
    assert "head.email" in problem.message


def test_a_table_that_is_neither_utf8_nor_1251(config_copy):
    _teams_only(config_copy)
    (config_copy / "schools.csv").write_bytes(HEADER_RU.encode("utf-8") + b"school-1;\x98\x98;x;y;z\n")
    (problem,) = _problems(config_copy)
    assert "UTF-8" in problem.message and problem.file.name == "schools.csv"


@pytest.mark.parametrize("shape", ["", "cyrillic,school-zones"])
def test_the_table_and_the_yaml_give_the_same_project(tmp_path, shape):
    spec = SynthSpec(
        schools=60, teams=5, meetings=2, events=4, seed=3, notify_share=0.4, shape=Shape.parse(shape)
    )
    write_config(tmp_path / "yaml", synth_files(spec, "yaml"))
    write_config(tmp_path / "csv", synth_files(spec, "csv"))
    assert (tmp_path / "csv" / "schools.csv").is_file()
    a, b = load_config(tmp_path / "yaml").project, load_config(tmp_path / "csv").project
    assert a == b
    assert a.model_dump_json() == b.model_dump_json()
    assert [s.model_fields_set for s in a.schools] == [s.model_fields_set for s in b.schools]
    audience = a.meetings[0].audience
    assert a.recipients(audience) == b.recipients(audience)


def test_synth_chooses_the_table_for_a_large_roster():
    from scheduler.synth import ROSTER_TABLE_FROM

    small = synth_files(SynthSpec(schools=10, teams=1, meetings=0, events=0))
    assert "schools.csv" not in small and "schools:" in small["participants.yaml"]
    assert ROSTER_TABLE_FROM <= 10_000


# --- the fast paths agree with the model ---------------------------------------------------------------


def _old_bad_char(value: str, multiline: bool) -> int | None:
    """The index the character-by-character rule finds (the model's rule before its regex scan)."""
    for index, char in enumerate(value, start=1):
        if multiline and char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return index
    return None


def test_the_control_character_scan_finds_exactly_the_characters_of_the_rule():
    for code in range(0x3000):
        char = chr(code)
        for multiline in (False, True):
            assert (_bad_char(f"a{char}b", multiline) is None) == (
                _old_bad_char(f"a{char}b", multiline) is None
            )


@given(st.text(), st.booleans())
def test_the_control_character_scan_agrees_on_any_text(value, multiline):
    found = _bad_char(value, multiline)
    assert (found is None) == (_old_bad_char(value, multiline) is None)
    if found is not None:
        assert f"character {_old_bad_char(value, multiline)}" in found


_LOCAL = st.text(alphabet="abcXYZ019._+-!#'", min_size=0, max_size=12) | st.sampled_from(
    ["info", "Support", "head", "postmaster", "a" * 65, "завуч", '"quoted"', "a..b", ".a", "a."]
)
_LABEL = st.text(alphabet="abzAZ09-", min_size=0, max_size=8) | st.sampled_from(
    ["xn--e1afmkfd", "ab--cd", "a" * 64, "arpa", "invalid", "local", "localhost", "onion", "test", "пример", "рф",
     "org", "ORG", "1", "example"]
)  # fmt: skip
_ADDRESS = st.builds(
    lambda local, labels, at: local + at + ".".join(labels),
    _LOCAL,
    st.lists(_LABEL, min_size=0, max_size=4),
    st.sampled_from(["@", "@", "@", "@@", " @", ""]),
) | st.text(max_size=30)


@settings(max_examples=3000, deadline=None)
@given(_ADDRESS)
def test_the_plain_address_path_agrees_with_email_validator(address):
    fast = plain_address(address)
    try:
        checked = validate_email(
            address, check_deliverability=False, test_environment=True, allow_smtputf8=True
        )
    except EmailNotValidError:
        assert fast is None
        return
    if fast is not None:
        assert fast == (checked.ascii_email or checked.normalized)


def test_the_plain_address_path_takes_the_common_addresses():
    assert plain_address("Head.Teacher+x@School-1.Example.ORG") == "Head.Teacher+x@school-1.example.org"
    assert plain_address("info@school.example.org") is None  # a role name: the library lower-cases it
    assert plain_address("завуч@пример.рф") is None
    assert plain_address("a@b.localhost") is None


_TEXT = st.sampled_from(
    ["Школа № 1", "  Школа  ", "", "a" * 301, "a" * 501, "x\ny", "a\u202eb", "Jane", 5, None]
)
_EMAILS = st.sampled_from(
    ["head@school1.example.org", "Head@School1.EXAMPLE.org", " head@x.example.org", "завуч@пример.рф", "bad", 7,
     "info@x.example.org", "a@b.invalid"]
)  # fmt: skip
_PERSON = st.fixed_dictionaries(
    {"name": _TEXT, "email": _EMAILS},
    optional={
        "role": _TEXT,
        "notify": st.sampled_from([True, False, "yes", 1, None]),
        "gender": st.sampled_from(["f", "m", "F", None, 1]),
        "salutation": _TEXT,
        "first_name": _TEXT,
        "extra": st.just("x"),
    },
)
_SCHOOL = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["school-1", "School-1", " school-1", "a" * 64, "s_2", "", 3]),
        "name": _TEXT,
        "head": _PERSON | st.just("nobody"),
    },
    optional={
        "short_name": _TEXT,
        "language": st.sampled_from(["ru", "en", "RU", "de", None, 1]),
        "timezone": st.sampled_from(
            ["Europe/Moscow", "Asia/Yekaterinburg", "Mars/Base", " UTC", "UTC", None, 4]
        ),
        "contacts": st.lists(_PERSON, max_size=2) | st.just("none"),
        "notes": st.just("x"),
    },
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SCHOOL)
def test_a_school_built_directly_is_the_one_the_model_validates(data):
    fast = built_school(data)
    try:
        model = School.model_validate(data)
    except ValidationError:
        assert fast is None
        return
    if fast is not None:
        assert fast == model
        assert fast.model_fields_set == model.model_fields_set
        assert fast.head.model_fields_set == model.head.model_fields_set
        assert fast.model_dump_json() == model.model_dump_json()
        assert fast.contacts is not model.contacts


def test_a_plain_school_is_built_without_the_model_and_equals_it():
    data = {
        "id": "school-1",
        "name": " Школа № 1 ",
        "head": {"name": "Иванова Анна", "email": "Head@School1.Example.org", "gender": "f"},
        "contacts": [{"name": "Смирнов Олег", "email": "deputy@school1.example.org", "notify": True}],
        "language": "en",
        "timezone": "Asia/Yekaterinburg",
    }
    fast = built_school(data)
    assert fast is not None and fast == School.model_validate(data)
    assert fast.head.email == "Head@school1.example.org" and fast.name == "Школа № 1"


def test_columns_not_read_are_named_by_a_warning(config_copy):
    header = "Код;Наименование ОО;ФИО руководителя;Электронная почта;Адрес ОО;Команда\n"
    rows = [";".join([*r.split(";")[:2], *r.split(";")[3:5], "ул. Мира, 1", "network"]) for r in ROWS_RU]
    _table(config_copy, rows, header)
    warnings = [w for w in load_config(config_copy).warnings if w.file.name == "schools.csv"]
    assert {(w.path, w.line) for w in warnings} == {("E", 1), ("F", 1)}
    assert "«Адрес ОО»" in warnings[0].message


def test_a_table_alone_without_participants_yaml(config_copy):
    _table(config_copy, ROWS_RU)
    for meeting in (config_copy / "meetings").glob("*.yaml"):  # the example's plan names its teams
        meeting.unlink()
    (config_copy / "cyclogram.yaml").unlink()
    (config_copy / "participants.yaml").unlink()
    project = load_config(config_copy).project
    assert len(project.schools) == 5 and project.teams == []


def test_a_table_without_a_header_row(config_copy):
    _table(config_copy, ROWS_RU, header="")
    (problem,) = _problems(config_copy)
    assert (
        problem.file.name == "schools.csv" and "header" in problem.message and "--map" not in problem.message
    )


def test_one_address_under_two_names_points_at_the_rows(config_copy):
    rows = list(ROWS_RU)
    rows[1] = "school-2;Средняя школа № 2;СШ № 2;Другое Имя;head@school1.example.org;"
    path = _table(config_copy, rows)
    (warning,) = [w for w in load_config(config_copy).warnings if w.file == path]
    assert warning.line == 3 and warning.path.startswith("E") and "schools.csv row 2" in warning.message


def test_the_import_refuses_a_configuration_whose_schools_are_a_table(config_copy, tmp_path):
    from scheduler.errors import CyclogramError
    from scheduler.tables.importing import import_participants

    _table(config_copy, ROWS_RU)
    other = tmp_path / "new.csv"
    other.write_text(HEADER_RU + ROWS_RU[0], encoding="utf-8")
    before = (config_copy / "participants.yaml").read_text(encoding="utf-8")
    with pytest.raises(CyclogramError, match=r"schools\.csv"):
        import_participants(config_copy, other)
    assert (config_copy / "participants.yaml").read_text(encoding="utf-8") == before
