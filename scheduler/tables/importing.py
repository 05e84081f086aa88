"""Import schools from an organiser's table into participants.yaml, keeping its comments and order."""

from __future__ import annotations

import difflib
import io
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ..errors import ConfigError, CyclogramError, Problem
from ..model import School
from ..progress import NoProgress, Progress
from .columns import FIELDS, Columns, find_columns, norm, parse_map
from .reading import Sheet, TableFormatError, read_table
from .roundtrip import flow_map, flow_seq, like, move_gap, plain, round_trip_yaml, write_atomically
from .translit import make_id

__all__ = [
    "FIELDS",
    "ImportRejected",
    "ImportResult",
    "TableError",
    "describe",
    "import_participants",
    "parse_map",
]

_LANGUAGES = {
    "ru": "ru", "rus": "ru", "russian": "ru", "русский": "ru", "рус": "ru", "русский язык": "ru",
    "en": "en", "eng": "en", "english": "en", "английский": "en", "англ": "en", "английский язык": "en",
}  # fmt: skip


def describe(problem: Problem) -> str:
    """A table's problem as an organiser reads it: file, row, column, what is wrong."""
    return f"{problem.file}: row {problem.line}, column {problem.path}: {problem.message}"


class TableError(ConfigError):
    """Rows of the table are wrong; each problem names its row and column."""

    def _summary(self) -> str:
        n = len(self.problems)
        rows = len({p.line for p in self.problems})
        head = (
            f"{n} problem{'s' if n != 1 else ''} in {rows} row{'s' if rows != 1 else ''} of the table; "
            "nothing was written:"
        )
        return "\n".join([head, *(f"  {describe(p)}" for p in self.problems)])


class ImportRejected(ConfigError):
    """The imported participants would make the configuration invalid."""

    def _summary(self) -> str:
        head = "the configuration would not pass `validate` after the import; nothing was written:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


@dataclass
class ImportResult:
    """What an import did (or, with dry_run, would do)."""

    added: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)  # school id -> fields changed
    unchanged: list[str] = field(default_factory=list)
    not_in_table: list[str] = field(default_factory=list)
    teams_added: list[str] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # what `validate` would warn about afterwards
    diff: str = ""
    written: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.diff)


# --- rows -------------------------------------------------------------------------------------------------


@dataclass
class _Row:
    number: int
    values: dict[str, str]  # field -> cell text, for the fields the table has
    problems: list[Problem] = field(default_factory=list)
    school_id: str = ""
    school: dict[str, Any] = field(default_factory=dict)  # what the school will be
    teams: list[str] = field(default_factory=list)
    existing: int | None = None  # index in participants.yaml's schools


def _language(value: str) -> str | None:
    return _LANGUAGES.get(norm(value)) if value else None


def _school_problem(sheet: Sheet, cols: Columns, row: _Row, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        target = {"head": "head", "contacts": "name"}.get(str(loc[0]), str(loc[0]))
        if loc[:2] == ("head", "email"):
            target = "email"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required, and the table has no such column"
        elif err["type"] == "string_too_short":
            msg = "is empty"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{err['input']!r} is not a valid id (lower-case latin letters, digits, - and _)"
        out.append(Problem(sheet.path, row.number, cols.where(target), msg))
    return out


def _read_rows(sheet: Sheet, cols: Columns) -> list[_Row]:
    rows = []
    for number, cells in sheet.rows:
        if number <= cols.header_row or not any(cells):
            continue
        values = {name: (cells[i] if i < len(cells) else "") for name, i in cols.by_field.items()}
        row = _Row(number, values)
        for name, i in cols.by_field.items():
            formula = sheet.formulas.get((number, i))
            if formula is not None:
                row.problems.append(
                    Problem(
                        sheet.path,
                        number,
                        cols.where(name),
                        f"a formula ({formula[:40]}) with no saved value: open the file in Excel and save it",
                    )
                )
        rows.append(row)
    return rows


def _build(
    sheet: Sheet,
    cols: Columns,
    rows: list[_Row],
    schools: CommentedSeq,
    teams: CommentedSeq,
    progress: Progress,
) -> None:
    """Match each row to a school, work out what it becomes and check it; problems stay on the rows."""
    by_id = {str(s.get("id")): i for i, s in enumerate(schools)}
    by_name: dict[str, int] = {}
    for i, s in enumerate(schools):
        for key in ("name", "short_name"):
            if s.get(key):
                by_name.setdefault(norm(str(s[key])), i)
    taken = set(by_id)
    ids_seen: dict[str, int] = {}
    names_seen: dict[str, int] = {}
    has = cols.by_field
    for row in rows:
        progress.advance()
        v = row.values
        name = v.get("name", "")
        if "id" in has and v["id"]:
            row.school_id = v["id"].strip()
            row.existing = by_id.get(row.school_id)
        if not name:
            row.problems.append(
                Problem(sheet.path, row.number, cols.where("name"), "the school's name is empty")
            )
            continue
        if "id" in has and not v["id"]:
            row.problems.append(Problem(sheet.path, row.number, cols.where("id"), "the id is empty"))
            continue
        if "id" not in has:
            row.existing = by_name.get(norm(name))
            if row.existing is None and v.get("short_name"):
                row.existing = by_name.get(norm(v["short_name"]))
            if row.existing is not None:
                row.school_id = str(schools[row.existing]["id"])
            else:
                row.school_id = make_id(v.get("short_name") or name, taken)
                taken.add(row.school_id)
        # The same address in two rows is one person heading two schools; the same school twice is not.
        if row.school_id in ids_seen:
            where = cols.where("id") if "id" in has else cols.where("name")
            row.problems.append(
                Problem(
                    sheet.path,
                    row.number,
                    where,
                    f"duplicate school: id {row.school_id!r} is also row {ids_seen[row.school_id]}",
                )
            )
            continue
        ids_seen[row.school_id] = row.number
        if "id" not in has:
            key = norm(name)
            if key in names_seen:
                row.problems.append(
                    Problem(
                        sheet.path,
                        row.number,
                        cols.where("name"),
                        f"the same school name as row {names_seen[key]}; if they are two schools, "
                        "add an id column (Код) to tell them apart",
                    )
                )
                continue
            names_seen[key] = row.number
        base = plain(schools[row.existing]) if row.existing is not None else {}
        school = {"id": row.school_id, **{k: x for k, x in base.items() if k != "id"}}
        school["name"] = name
        if "short_name" in has:
            school.pop("short_name", None)
            if v["short_name"]:
                school["short_name"] = v["short_name"]
        head = dict(school.get("head") or {})
        if "head" in has:
            head["name"] = v["head"]
        if "email" in has:
            # Addresses copied from a mail client come as mailto: links or <angle brackets>.
            email = re.sub(r"^mailto:", "", v["email"], flags=re.I).strip("<> ")
            head["email"] = email
        if head or row.existing is None:
            school["head"] = head
        if "language" in has:
            school.pop("language", None)
            if v["language"]:
                lang = _language(v["language"])
                if lang is None:
                    row.problems.append(
                        Problem(
                            sheet.path,
                            row.number,
                            cols.where("language"),
                            f"unknown language {v['language']!r}: write ru or en",
                        )
                    )
                else:
                    school["language"] = lang
        try:
            School.model_validate(school)
        except ValidationError as exc:
            row.problems.extend(_school_problem(sheet, cols, row, exc))
        row.school = school
        if "team" in has and v["team"]:
            row.teams = [t.strip() for t in re.split(r"[;,\n]", v["team"]) if t.strip()]


def _team_index(teams: CommentedSeq) -> dict[str, int]:
    out = {}
    for i, t in enumerate(teams):
        out[str(t.get("id"))] = i
        if t.get("name"):
            out.setdefault(norm(str(t["name"])), i)
    return out


def _apply(doc: CommentedMap, rows: list[_Row], result: ImportResult, ordered_keys: tuple[str, ...]) -> None:
    schools: CommentedSeq = doc["schools"]
    style = schools[0] if len(schools) else {}
    for row in rows:
        new = row.school
        if row.existing is None:
            entry = CommentedMap()
            entry["id"] = new["id"]
            for key in ("name", "short_name"):
                if key in new:
                    entry[key] = like(style.get(key), new[key])
            head = new["head"]
            old_head = style.get("head") or {}
            entry["head"] = flow_map(name=like(old_head.get("name"), head["name"]), email=head["email"])
            if "language" in new:
                entry["language"] = new["language"]
            if len(schools):
                move_gap(schools[-1], entry)
            schools.append(entry)
            result.added.append(new["id"])
            continue
        entry = schools[row.existing]
        changed = []
        if str(entry.get("id")) != new["id"]:
            entry["id"] = new["id"]
            changed.append("id")
        for key in ordered_keys:
            if key == "head":
                head = entry.get("head")
                for part in ("name", "email"):
                    want = new.get("head", {}).get(part)
                    if want is not None and (head is None or str(head.get(part)) != want):
                        if head is None:
                            head = entry["head"] = flow_map()
                        head[part] = like(head.get(part), want)
                        changed.append(f"head.{part}")
                continue
            want = new.get(key)
            have = entry.get(key)
            if want is None and have is not None:
                del entry[key]
                changed.append(key)
            elif want is not None and (have is None or str(have) != want):
                if have is None:
                    # keep the model's order: short_name after name, language last
                    position = list(entry).index("name") + 1 if key == "short_name" else len(entry)
                    entry.insert(position, key, like(style.get(key), want))
                else:
                    entry[key] = like(have, want)
                changed.append(key)
        if changed:
            result.updated[new["id"]] = changed
        else:
            result.unchanged.append(new["id"])
    # Teams: a school named with a team joins it (by id or name); a team not there yet is created.
    if any(r.teams for r in rows):
        if doc.get("teams") is None:
            doc["teams"] = CommentedSeq()
        teams: CommentedSeq = doc["teams"]
        index = _team_index(teams)
        members_of: dict[int, set[str]] = {}
        for row in rows:
            for label in row.teams:
                i = index.get(label, index.get(norm(label)))
                if i is None:
                    team_id = make_id(label, {str(t.get("id")) for t in teams}, fallback="team")
                    model = teams[0] if len(teams) else {}
                    teams.append(
                        CommentedMap(id=team_id, name=like(model.get("name"), label), schools=flow_seq([]))
                    )
                    i = len(teams) - 1
                    index[team_id] = index[norm(label)] = i
                    result.teams_added.append(team_id)
                members = teams[i].get("schools")
                if members is None:
                    members = teams[i]["schools"] = flow_seq([])
                known = members_of.setdefault(i, {str(m) for m in members})
                if row.school_id not in known:
                    known.add(row.school_id)
                    members.append(row.school_id)


def _real_path(config: Path, copy: Path, problem: Problem) -> Problem:
    try:
        real = config / Path(problem.file).relative_to(copy)
    except ValueError:
        real = Path(problem.file)
    return Problem(real, problem.line, problem.path, problem.message)


def _check_result(config: Path, participants: Path, text: str) -> list[Problem]:
    """Load the configuration as it would be; refuse the import if `validate` would fail.

    Returns what `validate` would warn about (an address under two different names, say).
    """
    from ..validation import validate_all

    with tempfile.TemporaryDirectory(prefix="cyclogram-import-") as tmp:
        copy = Path(tmp) / "config"
        shutil.copytree(config, copy, symlinks=True)
        (copy / participants.relative_to(config)).write_text(text, encoding="utf-8")
        try:
            loaded = validate_all(copy)
        except ConfigError as exc:
            raise ImportRejected([_real_path(config, copy, p) for p in exc.problems]) from None
        return [_real_path(config, copy, p) for p in loaded.warnings]


def import_participants(
    config: Path,
    table: Path,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    skip_bad: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Update `config/participants.yaml` from `table`.

    Nothing is written while any row is bad (TableError names each), unless `skip_bad`, or when the
    result would not pass `validate` (ImportRejected). Schools missing from the table are listed, not
    deleted. With `dry_run` the result carries the diff and nothing is written.
    """
    participants = config / "participants.yaml"
    from ..roster import roster_file

    tables = roster_file(config)
    if tables:
        # The import rewrites participants.yaml's `schools:`; a roster kept as a table is edited as a table.
        raise CyclogramError(
            f"{tables[0]}: the schools are kept in this table; edit or replace it instead of importing into "
            "participants.yaml"
        )
    try:
        original = participants.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CyclogramError(f"{participants}: cannot read: {exc}") from None
    y = round_trip_yaml(original)
    try:
        doc = y.load(original)
    except YAMLError as exc:
        raise CyclogramError(f"{participants}: not valid YAML; fix it before importing ({exc})") from None
    if not isinstance(doc, CommentedMap) or not isinstance(doc.get("schools"), list):
        raise CyclogramError(f"{participants}: should be a mapping with a `schools:` list")

    data = read_table(table, sheet)
    cols = find_columns(data, mapping or {})
    rows = _read_rows(data, cols)
    if not rows:
        raise TableFormatError(f"{table}: no rows below the headers (row {cols.header_row})")
    shown = progress or NoProgress()
    shown.start(len(rows))
    try:
        _build(data, cols, rows, doc["schools"], doc.get("teams") or CommentedSeq(), shown)
    finally:
        shown.finish()
    problems = [p for r in rows for p in r.problems]
    result = ImportResult()
    if problems and not skip_bad:
        raise TableError(problems)
    result.skipped = problems
    good = [r for r in rows if not r.problems]
    matched = {r.existing for r in good if r.existing is not None}
    matched |= {r.existing for r in rows if r.problems and r.existing is not None}
    result.not_in_table = [str(s.get("id")) for i, s in enumerate(doc["schools"]) if i not in matched]
    keys = tuple(k for k in ("name", "short_name", "head", "language") if k in cols.by_field or k == "name")
    if "email" in cols.by_field and "head" not in keys:
        keys = (*keys, "head")
    _apply(doc, good, result, keys)

    out = io.StringIO()
    y.dump(doc, out)
    text = out.getvalue()
    name = str(participants)
    result.diff = "".join(
        difflib.unified_diff(original.splitlines(keepends=True), text.splitlines(keepends=True), name, name)
    )
    if text == original:
        from ..validation import validate_all

        # Nothing to write; still say so if the configuration fails elsewhere (exit 2 with its problems).
        result.warnings = validate_all(config).warnings
        return result
    result.warnings = _check_result(config, participants, text)
    if dry_run:
        return result
    write_atomically(participants, text)
    result.written = True
    return result
