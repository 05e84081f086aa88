"""The schools of a configuration as a table (schools.csv or schools.xlsx), read and checked row by row."""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import Problem
from .model import (
    _BAD_IN_LINE,
    ID_PATTERN,
    LINE_MAX,
    NAME_MAX,
    Contact,
    School,
    _check_zone,
    built,
    plain_address,
)
from .problems import error_sentence
from .tables.columns import Columns, find_columns, norm
from .tables.reading import Sheet, TableFormatError, _delimiter, _text
from .translation import _

__all__ = ["ROSTER_FILES", "Roster", "built_school", "read_roster", "roster_file"]

# The table that may hold the schools instead of `schools:` in participants.yaml.
ROSTER_FILES = ("schools.csv", "schools.xlsx")

# Columns beyond those the import knows (columns.py): the model's own paths, in English and Russian.
_MORE_HEADERS = {
    "short_name": ("short_name",),
    "timezone": ("timezone", "часовой пояс", "time zone", "зона"),
    "head": ("head.name",),
    "email": ("head.email",),
    "head.first_name": ("head.first_name", "имя руководителя"),
    "head.patronymic": ("head.patronymic", "отчество руководителя"),
    "head.last_name": ("head.last_name", "фамилия руководителя"),
    "head.gender": ("head.gender", "пол руководителя"),
    "head.title": ("head.title",),
    "head.salutation": ("head.salutation", "обращение к руководителю", "обращение"),
    "head.role": ("head.role", "должность руководителя", "должность"),
    "contact.name": ("contact.name", "контактное лицо", "contact"),
    "contact.email": ("contact.email", "почта контактного лица", "contact email"),
    "contact.role": ("contact.role", "должность контактного лица", "contact role"),
    "contact.notify": ("contact.notify", "рассылка контактному лицу", "contact notify"),
}
_MAPPING = {norm(header): name for name, headers in _MORE_HEADERS.items() for header in headers}
_READ = frozenset(
    ["id", "name", "short_name", "head", "email", "language", "timezone"]
    + [
        f"head.{key}"
        for key in ("first_name", "patronymic", "last_name", "gender", "title", "salutation", "role")
    ]
    + [f"contact.{key}" for key in ("name", "email", "role", "notify")]
)
_REQUIRED = {"id": "id", "name": "name", "head": "head.name", "email": "head.email"}
_PERSON = ("first_name", "patronymic", "last_name", "gender", "title", "salutation", "role")
_LANGUAGES = {
    "ru": "ru", "rus": "ru", "russian": "ru", "русский": "ru", "рус": "ru", "русский язык": "ru",
    "en": "en", "eng": "en", "english": "en", "английский": "en", "англ": "en", "английский язык": "en",
}  # fmt: skip
_YES = {
    "да": True,
    "yes": True,
    "true": True,
    "1": True,
    "x": True,
    "нет": False,
    "no": False,
    "false": False,
}
_HEADER_ROWS = 20


class Roster:
    """Where the schools of a table came from: the file and the row of each, for later messages."""

    def __init__(self, file: Path):
        from array import array

        self.file = file
        self.rows = array("I")  # row of each school, in order (compact: 4 bytes a school)
        self.columns: Columns | None = None

    def where(self, field: str) -> str:
        return self.columns.where(field) if self.columns is not None else field

    def problem(self, index: int, field: str, message: str, rank: int = 1) -> Problem:
        return Problem(self.file, self.rows[index], self.where(field), message, rank)


def roster_file(root: Path) -> list[Path]:
    """The schools tables present in a configuration directory (more than one is a problem)."""
    return [root / name for name in ROSTER_FILES if (root / name).is_file()]


# --- the rows ----------------------------------------------------------------------------------------------


def _encoding(path: Path) -> str:
    """The encoding decode_csv (the import's) would choose, found without holding the text: UTF-8 with
    or without BOM, UTF-16 with BOM, else Windows-1251."""
    with path.open("rb") as f:
        head = f.read(3)
        if head.startswith(b"\xef\xbb\xbf"):
            return "utf-8-sig"
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "utf-16"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1251"
    return "utf-8"


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The rows of a CSV file, decoded as they are read: the text is never held whole."""
    with path.open(encoding=_encoding(path), newline="") as f:
        reader = None
        try:
            first = [line for _, line in zip(range(20), f, strict=False)]
            sample = "".join(first)
            reader = csv.reader(chain(first, f), delimiter=_delimiter(sample) if sample.strip() else ",")
            yield from enumerate(reader, start=1)
        except UnicodeDecodeError as exc:
            # Windows-1251 leaves five bytes undefined: then the file is something else.
            raise TableFormatError(
                _("the CSV file is neither UTF-8 nor Windows-1251 (byte {at}); save it as CSV UTF-8").format(
                    at=exc.start
                )
            ) from None
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise TableFormatError(
                _("line {line}: not a readable CSV line ({reason})").format(line=line, reason=exc)
            ) from None


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise TableFormatError(_("not a readable .xlsx workbook ({reason})").format(reason=exc)) from None
    try:
        sheet = book[book.sheetnames[0]]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [v if isinstance(v, str) else _text(v) for v in row]
    finally:
        book.close()


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    return _xlsx_rows(path) if path.suffix.lower() == ".xlsx" else _csv_rows(path)


def _columns(
    path: Path, rows: Iterator[tuple[int, list[str]]]
) -> tuple[Columns, list[tuple[int, list[str]]]]:
    """The header (among the first rows, as the import finds it) and the rows read to find it."""
    seen: list[tuple[int, list[str]]] = []
    for number, cells in rows:
        seen.append((number, [c.strip() for c in cells]))
        if sum(1 for _n, c in seen if any(c)) >= _HEADER_ROWS:
            break
    return find_columns(Sheet(path, seen, {}), _MAPPING), seen


# --- one school ---------------------------------------------------------------------------------------------

_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))
_CONTACT_FIELDS = frozenset(Contact.model_fields)
_SCHOOL_FIELDS = frozenset(School.model_fields)
_TEXT_OF_PERSON = ("role", "first_name", "patronymic", "last_name", "title", "salutation")
_ZONES: set[str] = set()


def _text_ok(value: Any, most: int) -> str | None:
    if type(value) is not str:
        return None
    value = value.strip()
    # _BAD_IN_LINE finds a character exactly when _bad_char(value, multiline=False) would name one
    if not value or len(value) > most or _BAD_IN_LINE.search(value) is not None:
        return None
    return value


def _person(data: Any) -> Contact | None:
    if not isinstance(data, dict) or not data.keys() <= _CONTACT_FIELDS:
        return None
    name = _text_ok(data.get("name"), NAME_MAX)
    email = data.get("email")
    if name is None or type(email) is not str or len(email) > NAME_MAX:
        return None
    address = plain_address(email)
    if address is None:
        return None
    values: dict[str, Any] = {"name": name, "email": address}
    if len(data) == 2:  # most heads: a name and an address
        return built(Contact, values)
    for key in _TEXT_OF_PERSON:
        if key in data:
            text = _text_ok(data[key], LINE_MAX)
            if text is None:
                if data[key] is None:
                    values[key] = None
                    continue
                return None
            values[key] = text
    if "gender" in data:
        if data["gender"] is not None and (
            type(data["gender"]) is not str or data["gender"] not in ("f", "m")
        ):
            return None
        values["gender"] = data["gender"]
    if "notify" in data:
        if type(data["notify"]) is not bool:
            return None
        values["notify"] = data["notify"]
    return built(Contact, values)


def built_school(data: Any) -> School | None:
    """The School the model would make of `data`, when every value is plainly valid; else None (then
    School.model_validate decides, and words any problem). tests/test_roster.py checks the two agree."""
    if not isinstance(data, dict) or not data.keys() <= _SCHOOL_FIELDS:
        return None
    ident = data.get("id")
    if type(ident) is not str or _ID.fullmatch(ident) is None:
        return None
    name = _text_ok(data.get("name"), LINE_MAX)
    head = _person(data.get("head"))
    if name is None or head is None:
        return None
    values: dict[str, Any] = {"id": ident, "name": name, "head": head}
    if "short_name" in data:
        if data["short_name"] is None:
            values["short_name"] = None
        elif (short := _text_ok(data["short_name"], NAME_MAX)) is None:
            return None
        else:
            values["short_name"] = short
    if "contacts" in data:
        contacts = data["contacts"]
        if not isinstance(contacts, list):
            return None
        people = [_person(c) for c in contacts]
        if any(p is None for p in people):
            return None
        values["contacts"] = people
    if "language" in data:
        language = data["language"]
        if language is not None and (type(language) is not str or language not in ("ru", "en")):
            return None
        values["language"] = data["language"]
    if "timezone" in data:
        zone = data["timezone"]
        if zone is not None:
            if type(zone) is not str or len(zone) > 64 or zone != zone.strip():
                return None
            if zone not in _ZONES:
                try:
                    _check_zone(zone)
                except ValueError:
                    return None
                _ZONES.add(zone)
        values["timezone"] = zone
    return built(School, values)


# --- the table -----------------------------------------------------------------------------------------------


def _row_reader(cols: Columns) -> Any:
    """A function from one row's cells to the school as participants.yaml would write it: empty cells
    are absent fields. Made once per table: only the columns it has are looked at."""
    at = cols.by_field
    head_more = [(key, at[f"head.{key}"]) for key in _PERSON if f"head.{key}" in at]
    contact = [
        (key, at[f"contact.{key}"]) for key in ("name", "email", "role", "notify") if f"contact.{key}" in at
    ]
    optional = [(key, at[key]) for key in ("short_name", "language", "timezone") if key in at]
    i_id, i_name, i_head, i_email = at["id"], at["name"], at["head"], at["email"]
    width = max(at.values()) + 1

    def read(cells: list[str]) -> dict[str, Any]:
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        head: dict[str, Any] = {"name": cells[i_head].strip(), "email": cells[i_email].strip()}
        for key, i in head_more:
            if value := cells[i].strip():
                head[key] = value
        school: dict[str, Any] = {"id": cells[i_id].strip(), "name": cells[i_name].strip(), "head": head}
        for key, i in optional:
            if value := cells[i].strip():
                school[key] = _LANGUAGES.get(norm(value), value) if key == "language" else value
        if contact:
            person = {key: value for key, i in contact if (value := cells[i].strip())}
            if person:
                if "notify" in person:
                    person["notify"] = _YES.get(norm(person["notify"]), person["notify"])
                school["contacts"] = [{"name": "", "email": "", **person}]
        return school

    return read


def _column_of(loc: tuple[Any, ...]) -> str:
    """The table's field for a model error's location."""
    if not loc:
        return "name"
    if loc[0] == "head":
        part = loc[1] if len(loc) > 1 else "name"
        return {"name": "head", "email": "email"}.get(str(part), f"head.{part}")
    if loc[0] == "contacts":
        return f"contact.{loc[2]}" if len(loc) > 2 else "contact.name"
    return str(loc[0])


def read_roster(
    path: Path, problems: list[Problem], warnings: list[Problem], broken: dict[str, Problem]
) -> tuple[list[School], Roster]:
    """The schools of a table, one row at a time; each bad row adds its problems (file, row, column)."""
    roster = Roster(path)
    schools: list[School] = []
    try:
        rows = _rows(path)
        cols, first = _columns(path, rows)
    except TableFormatError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        if "no column with the school's name" in message:  # the import's words, and its --map hint
            message = _(
                "no header row naming the columns (the school's name: Наименование ОО, Школа, name...)"
            )
        problems.append(Problem(path, None, "", message, 0))
        return schools, roster
    except OSError as exc:
        problems.append(Problem(path, None, "", _("cannot read: {reason}").format(reason=exc.strerror), 0))
        return schools, roster
    roster.columns = cols
    missing = [model for field, model in _REQUIRED.items() if field not in cols.by_field]
    if missing:
        problems.append(
            Problem(
                path,
                cols.header_row,
                "",
                _("no column for {fields}: the header row names each column (see the README)").format(
                    fields=", ".join(missing)
                ),
                0,
            )
        )
        return schools, roster
    # A column the roster does not read (an address, a tax number, the import's team column) is named once.
    read = {i for field, i in cols.by_field.items() if field in _READ}
    headers = next((cells for n, cells in first if n == cols.header_row), [])
    for index, label in enumerate(headers):
        if label and index not in read:
            warnings.append(
                Problem(
                    path,
                    cols.header_row,
                    Sheet.column_letter(index),
                    _("column «{label}» is not read").format(label=label),
                )
            )
    header = [(n, c) for n, c in first if n > cols.header_row]
    seen: dict[str, int] = {}
    row_school = _row_reader(cols)
    try:
        for number, cells in chain(header, rows):
            if not any(cells) or not "".join(cells).strip():
                continue
            data = row_school(cells)
            school = built_school(data)
            if school is None:
                try:
                    school = School.model_validate(data)
                except ValidationError as exc:
                    before = len(problems)
                    for err in exc.errors(include_url=False):
                        where = cols.where(_column_of(tuple(err["loc"])))
                        problems.append(Problem(path, number, where, error_sentence(err)))
                    if data["id"]:
                        broken.setdefault(data["id"], problems[before])
                    continue
            if school.id in seen:
                problems.append(
                    Problem(
                        path,
                        number,
                        cols.where("id"),
                        _("duplicate school id {id!r} (also row {row})").format(
                            id=school.id, row=seen[school.id]
                        ),
                    )
                )
                continue
            seen[school.id] = number
            schools.append(school)
            roster.rows.append(number)
    except TableFormatError as exc:
        problems.append(Problem(path, None, "", str(exc), 0))
    except OSError as exc:
        problems.append(Problem(path, None, "", _("cannot read: {reason}").format(reason=exc.strerror), 0))
    return schools, roster
