"""Which column of a table holds what: headers in Russian and English, or what --map says."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .reading import Sheet, TableFormatError

__all__ = ["FIELDS", "Columns", "find_columns", "norm", "parse_map"]

# What a column may hold; `ignore` drops a column --map names.
FIELDS = ("id", "name", "short_name", "head", "email", "language", "team", "ignore")

# Headers as Russian registers and English tables write them, compared after `norm`.
_HEADERS = {
    "name": (
        "наименование оо", "школа", "образовательная организация", "school", "наименование",
        "полное наименование", "полное наименование оо", "название", "название школы", "школа оо",
        "наименование образовательной организации", "наименование организации", "school name", "name",
        "оо",
    ),
    "short_name": (
        "краткое наименование", "short name", "краткое наименование оо", "сокращенное наименование",
        "краткое название", "короткое название",
    ),
    "id": ("код", "id", "код оо", "идентификатор", "school id", "code"),
    "head": (
        "фио руководителя", "руководитель", "head", "директор", "фио директора", "head name",
        "руководитель оо", "фио руководителя оо", "principal", "headteacher",
    ),
    "email": (
        "электронная почта", "email", "адрес электронной почты", "почта",
        "электронная почта руководителя", "email руководителя", "head email", "heads email", "e mail",
    ),
    "language": ("язык", "language", "язык рассылки", "язык писем"),
    "team": ("команда", "team", "команды", "teams", "сетевая команда"),
}  # fmt: skip
_BY_HEADER = {header: name for name, headers in _HEADERS.items() for header in headers}
_FIELD_WORDS = {
    "id": "school id",
    "name": "school name",
    "short_name": "short name",
    "head": "head",
    "email": "head's email",
    "language": "language",
    "team": "team",
}

# A header that begins with one of these and says more ("Наименование ОО (полное)", "ФИО руководителя ОО",
# "E-mail руководителя") is that field too; single words that also begin other headers ("код" of
# "Код ОКПО", "школа" of "Школа: адрес") must match exactly.
_PREFIXES = sorted(
    [(h, n) for h, n in _BY_HEADER.items() if " " in h]
    + [
        (h, n)
        for h, n in _BY_HEADER.items()
        if h in ("email", "команда", "team", "язык", "language", "директор")
    ],
    key=lambda item: -len(item[0]),
)

_HEADER_ROWS = 20  # a register's export may open with a title and a blank line before the headers


def norm(text: str) -> str:
    """Header or name as compared: case, ё, punctuation and spacing ignored."""
    text = text.casefold().replace("ё", "е")
    return " ".join(re.sub(r"[^\w\s]", "", text).split())


def parse_map(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`COLUMN=FIELD` options as {normalised column: field}; a column may be a header or a letter."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, name = item.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or not column.strip() or name not in FIELDS:
            raise TableFormatError(f"--map {item!r}: write COLUMN=FIELD, FIELD one of: {', '.join(FIELDS)}")
        out[norm(column)] = name
    return out


@dataclass
class Columns:
    header_row: int
    by_field: dict[str, int]  # field -> column index
    labels: dict[int, str]  # column index -> header as written

    def where(self, name: str) -> str:
        index = self.by_field.get(name)
        if index is None:
            return f"({_FIELD_WORDS.get(name, name)})"
        return f"{Sheet.column_letter(index)} «{self.labels[index]}»"


def _field(key: str, letter: str, mapping: Mapping[str, str], exact: bool) -> str | None:
    if exact:
        return mapping.get(key) or mapping.get(letter) or _BY_HEADER.get(key)
    for header, name in _PREFIXES:
        if key.startswith(header + " "):
            return name
    return None


def find_columns(sheet: Sheet, mapping: Mapping[str, str]) -> Columns:
    best: tuple[int, int, dict[str, int], dict[int, str]] | None = None
    seen = 0
    for number, cells in sheet.rows:
        if not any(cells):
            continue
        seen += 1
        if seen > _HEADER_ROWS:
            break
        found: dict[str, int] = {}
        labels: dict[int, str] = {}
        # Exact headers (and --map) first, so that "Электронная почта" wins over "Электронная почта ОО".
        for exact in (True, False):
            for i, cell in enumerate(cells):
                if i in labels:
                    continue
                name = _field(norm(cell), Sheet.column_letter(i).lower(), mapping, exact)
                if name and name not in found:
                    labels[i] = cell or Sheet.column_letter(i)
                    if name != "ignore":
                        found[name] = i
        if "name" in found and (best is None or len(found) > best[0]):
            best = (len(found), number, found, labels)
    if best is None:
        heads = next((cells for _, cells in sheet.rows if any(cells)), [])
        shown = ", ".join(f"«{h}»" for h in heads if h) or "none"
        raise TableFormatError(
            f"{sheet.path}: no column with the school's name (Наименование ОО, Школа, School...); "
            f"headers seen: {shown}; name the column with --map COLUMN=name"
        )
    return Columns(best[1], best[2], best[3])
