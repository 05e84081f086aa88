"""`export`: participants, plan and attendance as .xlsx and .csv, read back; formulas never live."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from cli import main
from scheduler.config import load_config
from scheduler.plan import build_plan
from scheduler.tables.exporting import Answer, neutralise, table_for, write_csv, write_xlsx

NOW = datetime(2020, 9, 15, 7, 0, tzinfo=UTC)


def _read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=";"))


def _cli(config: Path, state: Path, *args: str):
    return CliRunner().invoke(
        main, ["--config", str(config), "--state", str(state), "--now", "2020-09-15T10:00+03:00", *args]
    )


def test_participants_to_csv_and_xlsx(config_copy: Path, tmp_path: Path) -> None:
    out = _cli(config_copy, tmp_path / "var", "export", "participants", "--csv", str(tmp_path / "p.csv"),
               "--xlsx", str(tmp_path / "p.xlsx"))  # fmt: skip
    assert out.exit_code == 0, out.output
    project = load_config(config_copy).project
    rows = _read_csv((tmp_path / "p.csv").read_bytes())
    assert rows[0] == ["Код", "Наименование ОО", "Краткое наименование", "ФИО руководителя",
                       "Электронная почта", "Язык", "Команда"]  # fmt: skip
    assert [r[0] for r in rows[1:]] == [s.id for s in project.schools]
    assert rows[1][4] == "head@school1.example.org" and rows[1][6] == "network"
    sheet = load_workbook(tmp_path / "p.xlsx").active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[5][1] == project.schools[4].name and values[5][5] == "en"


def test_formula_injection_is_neutralised(config_copy: Path, tmp_path: Path, edit) -> None:
    edit("participants.yaml", 'name: "Средняя школа № 2"', 'name: "=HYPERLINK(\\"http://evil\\",\\"x\\")"')
    edit("participants.yaml", 'short_name: "СШ № 2"', 'short_name: "@SUM(1+1)"')
    edit("participants.yaml", 'name: "Гимназия № 3"', "name: \"+cmd|' /C calc'!A0\"")
    edit("participants.yaml", 'short_name: "Гимназия № 3"', 'short_name: "-2+3"')
    project = load_config(config_copy).project
    table = table_for("participants", project, now=NOW)
    rows = _read_csv(write_csv(table))
    assert rows[2][1] == '\'=HYPERLINK("http://evil","x")' and rows[2][2] == "'@SUM(1+1)"
    assert rows[3][1] == "'+cmd|' /C calc'!A0" and rows[3][2] == "'-2+3"
    book = load_workbook(io.BytesIO(write_xlsx(table)))  # formulas kept as written, not computed
    cells = list(book.active.iter_rows(min_row=3, max_row=4))
    for cell in (cells[0][1], cells[0][2], cells[1][1]):
        assert cell.data_type == "s", cell.value  # text, never a formula
    assert cells[0][1].value == '=HYPERLINK("http://evil","x")'


@given(st.text(max_size=30))
def test_no_csv_cell_starts_like_a_formula(value: str) -> None:
    out = neutralise(value)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert out in (value, "'" + value)


def test_plan_export_matches_the_plan(example, tmp_path: Path) -> None:
    table = table_for("plan", example.project, now=NOW)
    plan = build_plan(example.project, NOW)
    assert len(table.rows) == len(plan)
    book = load_workbook(io.BytesIO(write_xlsx(table)))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][:2] == ("Когда", "Рассылка")
    first = plan[0]
    assert rows[1][0] == first.at.astimezone(example.project.zone()).replace(tzinfo=None)
    assert rows[1][1] == first.kind and rows[1][5] == first.recipients


def test_attendance_per_person_with_answers_and_the_minutes(example, tmp_path: Path) -> None:
    project = example.project
    said = {"heads-2020-09": {"head@school2.example.org": Answer("DECLINED", NOW),
                              "deputy@school1.example.org": Answer("ACCEPTED", NOW)}}  # fmt: skip
    table = table_for("attendance", project, now=NOW, answers=lambda m: said.get(m.id, {}))
    people = {
        m.id: [(s.id, p.email) for s in project.audience_schools(m.audience)
               for p in (s.head, *[c for c in s.contacts if c.notify])]
        for m in project.meetings
    }  # fmt: skip
    assert [(r[0], r[2], r[5]) for r in table.rows] == [
        (m, s, e) for m, pairs in people.items() for s, e in pairs
    ]
    heads = {r[5]: r for r in table.rows if r[0] == "heads-2020-09"}
    assert heads["head@school2.example.org"][6] == "не сможет"
    assert heads["head@school2.example.org"][7] == datetime(2020, 9, 15, 10, 0)  # in the project's zone
    assert heads["deputy@school1.example.org"][6] == "примет участие"
    assert heads["head@gym3.example.org"][6] == "нет ответа"
    minutes = project.meeting("heads-2020-09").minutes
    assert {r[2] for r in heads.values() if r[8] == "да"} == set(minutes.attendance)
    assert {r[8] for r in table.rows if r[0] != "heads-2020-09"} <= {"", "нет", "да"}
    rows = _read_csv(write_csv(table))
    assert rows[0][6] == "Ответ" and len(rows) == len(table.rows) + 1


def test_export_needs_a_file(config_copy: Path, tmp_path: Path) -> None:
    out = _cli(config_copy, tmp_path / "var", "export", "plan")
    assert out.exit_code == 2 and "--xlsx FILE" in out.output
    bad = _cli(config_copy, tmp_path / "var", "export", "plan", "--csv", str(tmp_path / "no" / "p.csv"))
    assert bad.exit_code == 1 and "no such directory" in bad.output and "Traceback" not in bad.output


def test_english_export_reimports_unchanged(config_copy: Path, tmp_path: Path, edit) -> None:
    from scheduler.tables.importing import import_participants

    edit("project.yaml", "language: ru ", "language: en ")
    out = _cli(config_copy, tmp_path / "var", "export", "participants", "--csv", str(tmp_path / "p.csv"))
    assert out.exit_code == 0, out.output
    rows = _read_csv((tmp_path / "p.csv").read_bytes())
    assert rows[0] == ["ID", "School", "Short name", "Head", "Email", "Language", "Team"]
    before = (config_copy / "participants.yaml").read_bytes()
    result = import_participants(config_copy, tmp_path / "p.csv")
    assert result.diff == "" and len(result.unchanged) == 5
    assert (config_copy / "participants.yaml").read_bytes() == before


def test_attendance_export_reads_the_recorded_answers(config_copy: Path, tmp_path: Path) -> None:
    from scheduler.store import Answer as StoredAnswer
    from scheduler.store import SQLiteStore

    (tmp_path / "var").mkdir()
    store = SQLiteStore(tmp_path / "var" / "state.db")
    store.record_answer(StoredAnswer("heads-2020-09", "head@gym3.example.org", "TENTATIVE", NOW, "link"))
    store.close()
    out = _cli(config_copy, tmp_path / "var", "export", "attendance", "--csv", str(tmp_path / "a.csv"))
    assert out.exit_code == 0, out.output
    rows = {(r[0], r[5]): r for r in _read_csv((tmp_path / "a.csv").read_bytes())[1:]}
    assert rows[("heads-2020-09", "head@gym3.example.org")][6] == "возможно"
    assert rows[("heads-2020-09", "head@school2.example.org")][6] == "нет ответа"
