"""Read a spreadsheet (.xlsx or .csv) into rows of text, whatever Excel or a register exported."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from ..errors import CyclogramError

__all__ = ["Sheet", "TableFormatError", "decode_csv", "read_table"]


class TableFormatError(CyclogramError):
    """The file is not a table cyclogram can read (format, encoding, sheet)."""


@dataclass(frozen=True)
class Sheet:
    """The cells of one sheet as text, each row with its number as the spreadsheet shows it."""

    path: Path
    rows: list[tuple[int, list[str]]]
    formulas: dict[tuple[int, int], str]  # (row, column) of formula cells that had no saved value

    @staticmethod
    def column_letter(index: int) -> str:
        """0 -> A, 25 -> Z, 26 -> AA: the column as Excel labels it."""
        label = ""
        index += 1
        while index:
            index, rest = divmod(index - 1, 26)
            label = chr(ord("A") + rest) + label
        return label


def _text(value: Any) -> str:
    """A cell as the organiser sees it; a formula is never evaluated, only its saved value is read."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a code typed as 101 comes back from Excel as 101.0
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    # Non-breaking and other odd spaces from copy-paste: one plain space, trimmed.
    return " ".join(str(value).replace("\u00a0", " ").split())


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text"), else Windows-1251 (Russian Excel)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Windows-1251 maps nearly every byte, so it is the fallback, not a guess among equals;
    # the five bytes it leaves undefined mean the file is something else.
    try:
        return data.decode("cp1251")
    except UnicodeDecodeError as exc:
        raise TableFormatError(
            f"the CSV file is neither UTF-8 nor Windows-1251 (byte {exc.start}); save it as CSV UTF-8"
        ) from None


def _delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=";,\t").delimiter
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        counts = {d: first.count(d) for d in ";\t,"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ";"


def _read_csv(path: Path, data: bytes) -> Sheet:
    text = decode_csv(data)
    if "\x00" in text:
        raise TableFormatError(f"{path}: the CSV file holds NUL bytes; is it a spreadsheet saved as .csv?")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    rows = []
    try:
        for number, row in enumerate(reader, start=1):
            rows.append((number, [_text(cell) for cell in row]))
    except csv.Error as exc:
        raise TableFormatError(f"{path}:{reader.line_num}: not a readable CSV line ({exc})") from None
    return Sheet(path, rows, {})


def _read_xlsx(path: Path, sheet: str | None) -> Sheet:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    def open_book(values: bool) -> Any:
        try:
            return load_workbook(path, read_only=True, data_only=values)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise TableFormatError(f"{path}: not a readable .xlsx workbook ({exc})") from None

    def pick(book: Any) -> Any:
        names = book.sheetnames
        if sheet is None:
            return book[names[0]]
        if sheet not in names:
            raise TableFormatError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(names)}")
        return book[sheet]

    # data_only: a formula cell gives the value Excel saved with it, and is never evaluated here.
    book = open_book(True)
    try:
        rows = []
        empty: set[tuple[int, int]] = set()
        for number, row in enumerate(pick(book).iter_rows(values_only=True), start=1):
            cells = [_text(v) for v in row]
            empty.update((number, i) for i, c in enumerate(cells) if not c)
            rows.append((number, cells))
    finally:
        book.close()
    formulas: dict[tuple[int, int], str] = {}
    if empty:
        # An empty value may be a formula saved by a program that does not compute (no cached value):
        # say so rather than report an empty cell.
        book = open_book(False)
        try:
            for number, row in enumerate(pick(book).iter_rows(values_only=True), start=1):
                for i, value in enumerate(row):
                    if (number, i) in empty and isinstance(value, str) and value.startswith("="):
                        formulas[(number, i)] = value
        finally:
            book.close()
    return Sheet(path, rows, formulas)


def read_table(path: Path, sheet: str | None = None) -> Sheet:
    """The rows of a .xlsx sheet (the first, or `sheet`) or of a .csv file."""
    suffix = path.suffix.lower()
    if suffix in (".xls", ".ods", ".xlsb"):
        raise TableFormatError(f"{path}: {suffix} files are not read; save the table as .xlsx or .csv")
    if suffix not in (".xlsx", ".xlsm", ".csv", ".txt", ".tsv"):
        raise TableFormatError(f"{path}: unknown table format {suffix!r}; give an .xlsx or a .csv file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableFormatError(f"{path}: cannot read: {exc.strerror}") from None
    if suffix in (".xlsx", ".xlsm"):
        if not data.startswith(b"PK"):
            raise TableFormatError(f"{path}: not an .xlsx workbook (a CSV renamed .xlsx?)")
        return _read_xlsx(path, sheet)
    if sheet is not None:
        raise TableFormatError("--sheet applies to .xlsx workbooks only")
    return _read_csv(path, data)
