"""Tables for the organisers' own reports: participants, the plan of mailings, attendance; .xlsx or .csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..atomic import write_bytes
from ..errors import CyclogramError
from ..model import Meeting, Project

__all__ = [
    "EXPORTS",
    "Answer",
    "Answers",
    "Table",
    "export_table",
    "neutralise",
    "table_for",
    "write_csv",
    "write_xlsx",
]

EXPORTS = ("participants", "plan", "attendance")

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection");
# defusedcsv's rule: such a cell gets a leading apostrophe, which Excel shows as text and hides.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_HEADERS = {
    "participants": {
        "ru": ["Код", "Наименование ОО", "Краткое наименование", "ФИО руководителя", "Электронная почта",
               "Язык", "Команда"],
        "en": ["ID", "School", "Short name", "Head", "Email", "Language", "Team"],
    },
    "plan": {
        "ru": ["Когда", "Рассылка", "Встреча", "Мероприятие", "Пункт", "Получателей", "Состояние"],
        "en": ["When", "Mailing", "Meeting", "Key event", "Item", "Recipients", "State"],
    },
    "attendance": {
        "ru": ["Встреча", "Дата", "Код", "Наименование ОО", "Участник", "Электронная почта", "Ответ",
               "Когда ответил", "Присутствовали"],
        "en": ["Meeting", "Date", "ID", "School", "Person", "Email", "Answer", "Answered", "Attended"],
    },
}  # fmt: skip
_YES_NO = {"ru": ("да", "нет"), "en": ("yes", "no")}


@dataclass(frozen=True)
class Table:
    """A sheet: its name, headers and rows of plain values."""

    name: str
    headers: list[str]
    rows: list[list[Any]]


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, made inert; other values unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _participants(project: Project, language: str) -> list[list[Any]]:
    teams: dict[str, list[str]] = {}
    for team in project.teams:
        for sid in team.schools:
            teams.setdefault(sid, []).append(team.id)
    return [
        [s.id, s.name, s.short_name or "", s.head.name, s.head.email, s.language or "",
         ", ".join(teams.get(s.id, []))]
        for s in project.schools
    ]  # fmt: skip


def _plan(project: Project, now: datetime, done: Mapping[str, str]) -> list[list[Any]]:
    from ..plan import build_plan

    zone = project.zone()
    return [
        [e.at.astimezone(zone).replace(tzinfo=None), e.kind, e.meeting or "", e.event or "", e.item or "",
         e.recipients, e.state]
        for e in build_plan(project, now, done)
    ]  # fmt: skip


_ANSWERS = {
    "ru": {"ACCEPTED": "примет участие", "DECLINED": "не сможет", "TENTATIVE": "возможно",
           "NEEDS-ACTION": "нет ответа"},
    "en": {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative", "NEEDS-ACTION": "no answer"},
}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What one person answered to a meeting's invitation (RFC 5545 PARTSTAT), and when."""

    partstat: str
    at: datetime | None = None


# (meeting) -> {address in lower case: answer}; the state store's answers, where there are any.
Answers = Callable[[Meeting], Mapping[str, Answer]]


def _attendance(project: Project, language: str, answers: Answers | None) -> list[list[Any]]:
    """A row per meeting, invited school and person its mail goes to (head, notified contacts)."""
    yes, no = _YES_NO[language]
    zone = project.zone()
    rows = []
    for meeting in project.meetings:
        said = answers(meeting) if answers else {}
        attended = set(meeting.minutes.attendance) if meeting.minutes else None
        day = project.meeting_start(meeting).date()
        for school in project.audience_schools(meeting.audience):
            mark = "" if attended is None else (yes if school.id in attended else no)
            seen: set[str] = set()
            for person in (school.head, *[c for c in school.contacts if c.notify]):
                key = person.email.lower()
                if key in seen:
                    continue
                seen.add(key)
                answer = said.get(key)
                text = _ANSWERS[language][answer.partstat] if answer else ""
                if answers is not None and answer is None:
                    text = _ANSWERS[language]["NEEDS-ACTION"]
                when = answer.at.astimezone(zone).replace(tzinfo=None) if answer and answer.at else None
                rows.append(
                    [meeting.id, day, school.id, school.name, person.name, person.email, text, when, mark]
                )
    return rows


def table_for(
    kind: str,
    project: Project,
    *,
    now: datetime,
    done: Mapping[str, str] | None = None,
    answers: Answers | None = None,
) -> Table:
    """The table of one export, headed in the project's language."""
    language = project.settings.language
    if kind == "participants":
        rows = _participants(project, language)
    elif kind == "plan":
        rows = _plan(project, now, done or {})
    elif kind == "attendance":
        rows = _attendance(project, language, answers)
    else:
        raise CyclogramError(f"unknown export {kind!r}; known: {', '.join(EXPORTS)}")
    return Table(kind, _HEADERS[kind][language], rows)


def _cell_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def write_csv(table: Table) -> bytes:
    """UTF-8 with a BOM (so Excel reads the Cyrillic right), `;` as Russian Excel expects, formulas inert."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in table.headers])
    for row in table.rows:
        writer.writerow([neutralise(_cell_text(v)) for v in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def write_xlsx(table: Table) -> bytes:
    """An .xlsx workbook; every text cell is stored as text, never as a formula."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(table.name)
    bold = Font(bold=True)

    def cell(value: Any, header: bool = False) -> WriteOnlyCell:
        c = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            c.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
        if isinstance(value, datetime):
            c.number_format = "yyyy-mm-dd hh:mm"
        if header:
            c.font = bold
        return c

    sheet.append([cell(h, header=True) for h in table.headers])
    for row in table.rows:
        sheet.append([cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path = path.resolve()
    if not path.parent.is_dir():
        raise CyclogramError(f"{path.parent}: no such directory")
    write_bytes(path, data)


def export_table(table: Table, *, xlsx: Path | None = None, csv_path: Path | None = None) -> list[Path]:
    """Write the table to each file given; returns the paths written."""
    written: list[Path] = []
    targets: Sequence[tuple[Path | None, Callable[[Table], bytes]]] = (
        (xlsx, write_xlsx),
        (csv_path, write_csv),
    )
    for path, writer in targets:
        if path is not None:
            _write(path, writer(table))
            written.append(path)
    if not written:
        raise CyclogramError("name a file to write: --xlsx FILE or --csv FILE")
    return written
