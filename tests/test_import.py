"""`import participants`: real .xlsx and Windows-1251 CSV tables into participants.yaml, bad rows named."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from cli import main
from scheduler.config import load_config
from scheduler.model import ID_PATTERN
from scheduler.tables.importing import ImportRejected, TableError, import_participants, parse_map
from scheduler.tables.reading import TableFormatError, decode_csv
from scheduler.tables.translit import make_id, transliterate
from scheduler.validation import validate_all

DATA = Path(__file__).resolve().parent / "data"

HEADERS = ["Наименование ОО", "Краткое наименование", "ФИО руководителя", "Электронная почта", "Язык"]
FIVE = [
    ["Средняя школа № 1", "СШ № 1", "Иванова Анна Петровна", "head@school1.example.org", ""],
    ["Средняя школа № 2", "СШ № 2", "Петров Сергей Николаевич", "head@school2.example.org", ""],
    ["Гимназия № 3", "Гимназия № 3", "Кузнецова Мария Александровна", "head@gym3.example.org", ""],
    ["Лицей № 86", "Лицей № 86", "Соколов Дмитрий Владимирович", "head@lyceum86.example.org", ""],
    [
        "Средняя школа № 37 с углублённым изучением английского языка", "СШ № 37", "Jane Smith",
        "head@school37.example.org", "en",
    ],
]  # fmt: skip


def _xlsx(
    path: Path, rows: list[list[object]], *, title: str | None = "Список ОО", sheet: str = "ОО"
) -> Path:
    book = Workbook()
    ws = book.active
    ws.title = sheet
    if title:
        ws.append([title])  # registers put a title and a blank line above the headers
        ws.append([])
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def _csv(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ";", bom: bool = False) -> Path:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = out.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def _schools(config: Path) -> dict[str, object]:
    return {s.id: s for s in load_config(config).project.schools}


def test_example_reimported_from_xlsx_changes_nothing(config_copy: Path, tmp_path: Path) -> None:
    before = (config_copy / "participants.yaml").read_bytes()
    table = _xlsx(tmp_path / "schools.xlsx", [HEADERS, *FIVE])
    result = import_participants(config_copy, table)
    assert result.diff == "" and not result.written
    assert sorted(result.unchanged) == sorted(_schools(config_copy))
    assert (config_copy / "participants.yaml").read_bytes() == before
    validate_all(config_copy)


def test_example_reimported_from_windows_1251_csv(config_copy: Path) -> None:
    raw = (DATA / "participants-cp1251.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the file really is Windows-1251, as Russian Excel saves it
    before = (config_copy / "participants.yaml").read_bytes()
    result = import_participants(config_copy, DATA / "participants-cp1251.csv")
    assert len(result.unchanged) == 5 and not result.added and not result.updated
    assert (config_copy / "participants.yaml").read_bytes() == before
    validate_all(config_copy)


def test_changes_keep_comments_order_and_validate(config_copy: Path, tmp_path: Path) -> None:
    rows = [list(r) for r in FIVE]
    rows[1][3] = "director@school2.example.org"
    rows.insert(2, ["Основная школа № 7", "ОШ № 7", "Новикова Ольга", "head@school7.example.org", "русский"])
    table = _csv(tmp_path / "t.csv", [HEADERS, *rows], "cp1251")
    result = import_participants(config_copy, table)
    assert result.written
    assert result.added == ["osh-7"]
    assert result.updated == {"school-2": ["head.email"]}
    text = (config_copy / "participants.yaml").read_text(encoding="utf-8")
    assert "# The participating schools and their project teams." in text
    assert "language: en             # this head reads mail and feeds in English" in text
    order = [m for m in re.findall(r"- id: (\S+)", text)]
    assert order[:6] == ["school-1", "school-2", "gymnasium-3", "lyceum-86", "school-37", "osh-7"]
    schools = _schools(config_copy)
    assert schools["school-2"].head.email == "director@school2.example.org"
    assert schools["osh-7"].head.name == "Новикова Ольга" and schools["osh-7"].language == "ru"
    assert schools["school-1"].contacts[0].email == "deputy@school1.example.org"  # untouched
    validate_all(config_copy)
    # Importing the same table again changes nothing.
    again = import_participants(config_copy, table)
    assert again.diff == "" and len(again.unchanged) == 6


def test_bad_rows_change_nothing_and_are_named(config_copy: Path, tmp_path: Path) -> None:
    before = (config_copy / "participants.yaml").read_bytes()
    rows = [
        ["Код", "Школа", "Руководитель", "E-mail"],
        ["school-1", "Средняя школа № 1", "Иванова Анна Петровна", "head@school1.example.org"],
        ["school-2", "", "Петров", "head@school2.example.org"],
        ["school-9", "Школа 9", "Сидоров", "head@@school9.example.org"],
        ["school-1", "Дубль", "Иванова", "x@example.org"],
        ["BAD ID", "Школа", "Кто-то", "a@example.org"],
        ["school-10", "Школа 10", "", "b@example.org"],
    ]
    table = _xlsx(tmp_path / "broken.xlsx", rows, title=None)
    with pytest.raises(TableError) as err:
        import_participants(config_copy, table)
    found = {(p.line, p.path.split()[0]) for p in err.value.problems}
    assert found == {(3, "B"), (4, "D"), (5, "A"), (6, "A"), (7, "C")}
    assert "row 4, column D «E-mail»: invalid email address" in str(err.value)
    assert (config_copy / "participants.yaml").read_bytes() == before

    runner = CliRunner()
    cli_run = runner.invoke(main, ["--config", str(config_copy), "import", "participants", str(table)])
    assert cli_run.exit_code == 2 and "row 3, column B «Школа»: the school's name is empty" in cli_run.output
    assert "Traceback" not in cli_run.output
    assert (config_copy / "participants.yaml").read_bytes() == before

    skipped = runner.invoke(
        main, ["--config", str(config_copy), "import", "participants", str(table), "--skip-bad"]
    )
    assert skipped.exit_code == 0, skipped.output
    assert "skipped: " in skipped.output and "row 7" in skipped.output
    assert "school-2" not in skipped.output.split("not in the table (kept):")[-1]  # a bad row still counts
    validate_all(config_copy)


def test_same_address_in_two_rows_is_one_person_heading_two_schools(
    config_copy: Path, tmp_path: Path
) -> None:
    rows = [
        HEADERS,
        *FIVE,
        [
            "Средняя школа № 1 (филиал)",
            "СШ № 1 ф",
            "Иванова Анна Петровна",
            "mailto:HEAD@school1.example.org",
            "",
        ],
        ["Детский сад № 5", "", "Иванова Анна Петровна", "head@school1.example.org", ""],
    ]
    result = import_participants(config_copy, _xlsx(tmp_path / "t.xlsx", rows))
    assert sorted(result.added) == ["detskii-sad-5", "ssh-1-f"]
    schools = _schools(config_copy)
    heads = {sid for sid, s in schools.items() if s.head.email.lower() == "head@school1.example.org"}
    assert heads == {"school-1", "ssh-1-f", "detskii-sad-5"}
    assert not result.warnings  # same name everywhere: nothing that looks like a typo
    validate_all(config_copy)
    # The same address under another name is imported, with validate's warning passed on.
    rows.append(["Школа № 40", "", "Иванова А. П.", "head@school1.example.org", ""])
    out = CliRunner().invoke(
        main, ["--config", str(config_copy), "import", "participants", str(_xlsx(tmp_path / "u.xlsx", rows))]
    )
    assert out.exit_code == 0, out.output
    assert "added 1" in out.output and "warning: " in out.output and "head@school1.example.org" in out.output


def test_dry_run_prints_a_diff_and_writes_nothing(config_copy: Path, tmp_path: Path) -> None:
    before = (config_copy / "participants.yaml").read_bytes()
    rows = [HEADERS, *FIVE, ["Лицей № 2", "", "Орлов Илья", "head@lyceum2.example.org", ""]]
    table = _csv(tmp_path / "t.csv", rows, "utf-8", delimiter=",", bom=True)
    out = CliRunner().invoke(
        main, ["--config", str(config_copy), "import", "participants", str(table), "--dry-run"]
    )
    assert out.exit_code == 0, out.output
    assert "+  - id: litsei-2" in out.output and '+    name: "Лицей № 2"' in out.output
    assert "would add 1" in out.output
    assert (config_copy / "participants.yaml").read_bytes() == before


def test_utf16_tab_separated_and_map_options(config_copy: Path, tmp_path: Path) -> None:
    rows = [
        ["Организация", "Кто руководит", "Адрес", "Почта для писем"],
        ["Гимназия № 3", "Кузнецова Мария Александровна", "ул. Мира, 1", "gym3@example.org"],
    ]
    path = tmp_path / "t.txt"
    out = io.StringIO(newline="")
    csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode("utf-16"))  # Excel's "Unicode text"
    with pytest.raises(TableFormatError, match="no column with the school's name"):
        import_participants(config_copy, path)
    mapping = parse_map(["Организация=name", "B=head", "Адрес=ignore", "Почта для писем=email"])
    result = import_participants(config_copy, path, mapping=mapping)
    assert result.updated == {"gymnasium-3": ["head.email"]}
    assert _schools(config_copy)["gymnasium-3"].head.email == "gym3@example.org"
    with pytest.raises(TableFormatError, match="COLUMN=FIELD"):
        parse_map(["Адрес=street"])


def test_formulas_are_read_as_saved_values_and_commands_stay_text(config_copy: Path, tmp_path: Path) -> None:
    book = Workbook()
    ws = book.active
    ws.append(["Код", "Наименование ОО", "ФИО руководителя", "Электронная почта"])
    ws.append(["school-2", "Средняя школа № 2", "Петров Сергей Николаевич", "head@school2.example.org"])
    ws.append(["new-1", "=cmd|' /C calc'!A0", "Хакер", "h@example.org"])
    ws["B3"].data_type = "s"  # typed as text in Excel (a leading apostrophe), not a formula
    ws.append(
        [
            "school-1",
            "Средняя школа № 1",
            '=CONCATENATE("Иванова", " Анна Петровна")',
            "head@school1.example.org",
        ]
    )
    path = tmp_path / "f.xlsx"
    book.save(path)
    # openpyxl saves no computed values: put in the value Excel would have saved with the formula.
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    cached = sheet.replace("</f><v></v>", "</f><v>Иванова Анна Петровна</v>")
    if cached == sheet:
        cached = re.sub(r'(<c r="C4"[^>]*?)( t="\w+")?>(<f>.*?</f>)(<v\s*/>|<v></v>)?</c>',
                        r'\1 t="str">\3<v>Иванова Анна Петровна</v></c>', sheet)  # fmt: skip
    assert "<v>Иванова Анна Петровна</v>" in cached
    parts["xl/worksheets/sheet1.xml"] = cached.encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    result = import_participants(config_copy, path)
    assert result.added == ["new-1"] and "school-1" in result.unchanged
    assert _schools(config_copy)["new-1"].name == "=cmd|' /C calc'!A0"
    validate_all(config_copy)

    # A formula with no saved value (a file written by a program that does not compute) is named.
    book = Workbook()
    ws = book.active
    ws.append(["Наименование ОО", "ФИО руководителя", "Электронная почта"])
    ws.append(["Школа 5", "Петров", '=LOWER("A@EXAMPLE.ORG")'])
    book.save(tmp_path / "g.xlsx")
    with pytest.raises(TableError, match=r"formula .* with no saved value"):
        import_participants(config_copy, tmp_path / "g.xlsx")


def test_result_that_would_not_validate_is_refused(config_copy: Path, tmp_path: Path) -> None:
    meeting = config_copy / "meetings" / "2020-09-25-heads.yaml"
    meeting.write_text(meeting.read_text(encoding="utf-8").replace("school-2", "school-2x"), encoding="utf-8")
    before = (config_copy / "participants.yaml").read_bytes()
    rows = [HEADERS, *FIVE, ["Лицей № 2", "", "Орлов Илья", "head@lyceum2.example.org", ""]]
    with pytest.raises(ImportRejected) as err:
        import_participants(config_copy, _xlsx(tmp_path / "t.xlsx", rows))
    text = str(err.value)
    assert "would not pass `validate`" in text and str(meeting) in text and "school-2x" in text
    assert (config_copy / "participants.yaml").read_bytes() == before


def test_unreadable_tables_are_clear_errors(config_copy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    (tmp_path / "fake.xlsx").write_text("Школа;Почта\n", encoding="utf-8")
    table = _xlsx(tmp_path / "t.xlsx", [HEADERS, *FIVE])
    for args, text in [
        ([str(tmp_path / "old.xls")], "save the table as .xlsx or .csv"),
        ([str(tmp_path / "fake.xlsx")], "not an .xlsx workbook"),
        ([str(table), "--sheet", "Лист9"], "no sheet 'Лист9'; sheets: ОО"),
        ([str(tmp_path / "missing.csv")], "cannot read"),
        ([str(table), "--map", "nonsense"], "COLUMN=FIELD"),
    ]:
        out = runner.invoke(main, ["--config", str(config_copy), "import", "participants", *args])
        assert out.exit_code == 2, out.output
        assert text in out.output and "Traceback" not in out.output


def test_sheet_option_and_export_round_trip(config_copy: Path, tmp_path: Path) -> None:
    exported = tmp_path / "participants.xlsx"
    out = CliRunner().invoke(
        main, ["--config", str(config_copy), "export", "participants", "--xlsx", str(exported)]
    )
    assert out.exit_code == 0, out.output
    book = load_workbook(exported)
    assert book.sheetnames == ["participants"]
    result = import_participants(config_copy, exported, sheet="participants")
    assert result.diff == "" and len(result.unchanged) == 5


def test_windows_1251_decoding_rules() -> None:
    assert decode_csv("Школа".encode("cp1251")) == "Школа"
    assert decode_csv(b"\xef\xbb\xbf" + "Школа".encode()) == "Школа"
    assert decode_csv("Школа".encode()) == "Школа"
    with pytest.raises(TableFormatError):
        decode_csv(b"\x98\x98")  # bytes Windows-1251 leaves undefined


def test_ids_from_names() -> None:
    assert transliterate("Щёлковская школа") == "shchelkovskaia shkola"
    assert make_id("СШ № 7") == "ssh-7"
    assert make_id("Гимназия № 3", {"gimnaziia-3"}) == "gimnaziia-3-2"
    assert make_id("№ ?!") == "school"


@given(st.text(max_size=200), st.sets(st.text(alphabet="abc-3", max_size=6), max_size=5))
def test_ids_always_valid_stable_and_free(name: str, taken: set[str]) -> None:
    made = make_id(name, taken)
    assert re.match(ID_PATTERN, made)
    assert made not in taken
    assert made == make_id(name, taken)


_CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
_NAME = st.text(_CYRILLIC + "0123456789 №«»-.,\"'", min_size=1, max_size=40).filter(lambda s: s.strip())
_LOCAL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(_NAME, _NAME, _LOCAL),
        min_size=1,
        max_size=8,
        unique_by=lambda t: " ".join(t[0].split()).casefold(),
    ),
    st.sampled_from([("cp1251", ";"), ("utf-8", ","), ("utf-8-sig", "\t"), ("utf-16", "\t")]),
)
def test_any_table_of_new_schools_imports_validates_and_reimports_unchanged(rows, form) -> None:
    import shutil
    import tempfile

    from tests.conftest import EXAMPLE

    encoding, delimiter = form
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        shutil.copytree(EXAMPLE, config)
        table = [["Школа", "Руководитель", "Электронная почта"]]
        table += [[f"Новая {name}", head, f"{local}@schools.example.org"] for name, head, local in rows]
        out = io.StringIO(newline="")
        csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(table)
        path = Path(tmp) / "t.csv"
        path.write_bytes(out.getvalue().encode(encoding))
        result = import_participants(config, path)
        assert len(result.added) == len(rows)
        project = load_config(config).project  # the import ran validate before writing
        by_id = {s.id: s for s in project.schools}
        for school_id, (name, head, local) in zip(result.added, rows, strict=True):
            school = by_id[school_id]
            assert school.name == " ".join(f"Новая {name}".split())
            assert school.head.name == " ".join(head.split())
            assert school.head.email == f"{local}@schools.example.org"
        assert import_participants(config, path).diff == ""


def test_headers_as_registers_write_them(config_copy: Path, tmp_path: Path) -> None:
    rows = [
        ["№ п/п", "Код ОКПО", "Наименование ОО (полное)", "Электронная почта ОО", "ФИО руководителя ОО",
         "Электронная почта", "Язык рассылки (ru/en)"],
        ["1", "12345678", "Гимназия № 3", "office@gym3.example.org", "Кузнецова Мария Александровна",
         "head@gym3.example.org", ""],
    ]  # fmt: skip
    result = import_participants(config_copy, _xlsx(tmp_path / "t.xlsx", rows))
    assert result.unchanged == ["gymnasium-3"] and not result.added  # the OKPO code is not an id


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: (c / "participants.yaml").unlink(),
        lambda c: (c / "participants.yaml").write_bytes(b"\x00\xff\xfe binary"),
        lambda c: (c / "participants.yaml").write_text("schools: [unclosed", encoding="utf-8"),
        lambda c: (c / "participants.yaml").write_text("- just\n- a list\n", encoding="utf-8"),
        lambda c: (c / "project.yaml").write_text("name: [", encoding="utf-8"),
    ],
    ids=["missing", "binary", "bad-yaml", "not-a-mapping", "broken-project"],
)
def test_tables_over_a_damaged_configuration(config_copy: Path, tmp_path: Path, damage) -> None:
    table = _xlsx(tmp_path / "t.xlsx", [HEADERS, *FIVE])
    damage(config_copy)
    snapshot = {p: p.read_bytes() for p in config_copy.rglob("*") if p.is_file()}
    runner = CliRunner()
    for args in (
        ["import", "participants", str(table)],
        ["import", "participants", str(table), "--dry-run"],
        ["export", "participants", "--csv", str(tmp_path / "p.csv")],
        ["export", "plan", "--xlsx", str(tmp_path / "p.xlsx")],
        ["export", "attendance", "--csv", str(tmp_path / "a.csv")],
    ):
        out = runner.invoke(main, ["--config", str(config_copy), "--state", str(tmp_path / "var"), *args])
        assert out.exit_code in (1, 2), (args, out.output)
        assert "Traceback" not in out.output
        assert out.exception is None or isinstance(out.exception, SystemExit)
    assert {p: p.read_bytes() for p in config_copy.rglob("*") if p.is_file()} == snapshot


class _Recorded:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def start(self, total: int) -> None:
        self.calls.append(("start", total))

    def update(self, done: int) -> None:
        self.calls.append(("update", done))

    def advance(self, n: int = 1) -> None:
        self.calls.append(("advance", n))

    def finish(self) -> None:
        self.calls.append(("finish", 0))


def test_import_reports_progress_by_row(config_copy: Path, tmp_path: Path) -> None:
    rows = [HEADERS, *FIVE, ["Лицей № 2", "", "Орлов Илья", "head@lyceum2.example.org", ""]]
    table = _csv(tmp_path / "t.csv", rows, "utf-8", delimiter=",", bom=True)
    shown = _Recorded()
    import_participants(config_copy, table, progress=shown)
    assert shown.calls == [("start", 6), *[("advance", 1)] * 6, ("finish", 0)]


def test_import_speaks_the_console_language(config_copy: Path, tmp_path: Path) -> None:
    rows = [HEADERS, *FIVE, ["Лицей № 2", "", "Орлов Илья", "head@lyceum2.example.org", ""]]
    table = _csv(tmp_path / "t.csv", rows, "utf-8", delimiter=",", bom=True)
    out = CliRunner().invoke(
        main, ["--lang", "ru", "--config", str(config_copy), "import", "participants", str(table)]
    )
    assert out.exit_code == 0, out.output
    assert "добавлено школ: 1" in out.output and "обновлён" in out.output
