"""Load the configuration directory into a Project, collecting every problem with its file and line."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError, Problem
from .model import (
    AgendaItem,
    Audience,
    Contact,
    KeyEvent,
    Meeting,
    Project,
    ProjectSettings,
    Responsible,
    School,
    Team,
)
from .problems import error_sentence
from .roster import Roster, built_school, read_roster, roster_file
from .translation import N_, _, ngettext

__all__ = [
    "CONFIG_ENV",
    "LAYOUT",
    "LoadedConfig",
    "config_dir",
    "load_config",
    "load_project",
    "no_cycle_collection",
]

CONFIG_ENV = "CYCLOGRAM_CONFIG"

# The files of a configuration directory and what each holds.
LAYOUT = {
    "project.yaml": "the project, its organiser, time zone, language, school year, feed URL and mailing policy",
    "participants.yaml": "schools (with their heads) and teams",
    "schools.csv": "optional: the schools as a table (or schools.xlsx), instead of `schools:` in participants.yaml",
    "cyclogram.yaml": "the year's key events",
    "meetings/*.yaml": "one meeting per file",
    "templates/": "optional: templates that override the shipped ones, by the same name",
}


def config_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration directory: explicit, else $CYCLOGRAM_CONFIG, else ./config."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or "config")


# --- YAML with line numbers -------------------------------------------------------------------------------


class _Map(dict):
    """A mapping that remembers the line of each key (1-based)."""

    lines: dict[Any, int]
    line: int


class _Seq(list):
    lines: list[int]
    line: int


# libyaml's parser when PyYAML has it (the wheels do): ten times faster on a large participants.yaml;
# the constructors below, which keep the line of every key, run the same on either.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


_STR_TAG = "tag:yaml.org,2002:str"


def _construct(loader: _Loader, node: yaml.Node) -> Any:
    """A node's value; a string scalar (most of a roster) is its text, which is all PyYAML's
    construct_yaml_str returns for it, without the generic dispatch (a third of the construction)."""
    if node.tag == _STR_TAG and type(node) is yaml.ScalarNode:
        return node.value
    return loader.construct_object(node, deep=True)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.lines = {}
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = _construct(loader, key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, _("a key must be a plain value"), key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, _("duplicate key {key!r}").format(key=key), key_node.start_mark
            )
        out[key] = _construct(loader, value_node)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq([_construct(loader, child) for child in node.value])
    out.lines = [child.start_mark.line + 1 for child in node.value]
    out.line = node.start_mark.line + 1
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """PyYAML's own constructor raises a bare ValueError for 2021-02-30: say where, and what is wrong."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            _("{value!r} is not a real date ({reason})").format(value=node.value, reason=exc),
            node.start_mark,
        ) from None


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _line_of(data: Any, path: Iterable[Any]) -> int | None:
    """The line of the deepest node along `path` that the YAML had."""
    line = getattr(data, "line", None)
    node = data
    for part in path:
        if isinstance(node, _Map) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, _Seq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lines[part]
            node = node[part]
        else:
            break
    return line


def _path_text(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


@dataclass
class _Source:
    """One YAML file as read: its data (with lines) and where it came from."""

    file: Path
    data: Any
    prefix: tuple[Any, ...] = ()

    def problem(self, path: Iterable[Any], message: str, rank: int = 1) -> Problem:
        path = tuple(path)
        return Problem(self.file, _line_of(self.data, path), _path_text(path), message, rank)


@dataclass
class LoadedConfig:
    """A valid project with where each part came from, so later checks can point at lines."""

    directory: Path
    project: Project
    meeting_files: dict[str, Path] = field(default_factory=dict)
    template_check: Callable[[Project], list[Problem]] | None = None
    warnings: list[Problem] = field(default_factory=list)  # worth a look, not refused (`validate` shows them)


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(
                path,
                None,
                "",
                _("not UTF-8 text ({reason} at byte {at})").format(reason=exc.reason, at=exc.start),
                0,
            )
        )
        return None
    except OSError as exc:
        problems.append(Problem(path, None, "", _("cannot read: {reason}").format(reason=exc.strerror), 0))
        return None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        if isinstance(exc, yaml.constructor.ConstructorError):
            problems.append(Problem(path, line, "", _("YAML error: {what}").format(what=what), 0))
        else:
            problems.append(Problem(path, line, "", _("YAML syntax error: {what}").format(what=what), 0))
    except yaml.YAMLError as exc:
        problems.append(Problem(path, None, "", _("YAML error: {what}").format(what=exc), 0))
    return None


def _validate(model: type[BaseModel], src: _Source, problems: list[Problem], data: Any = None) -> Any:
    data = src.data if data is None else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not _is_tag(p))
            problems.append(src.problem((*src.prefix, *loc), _message(err)))
        return None


def _is_tag(part: Any) -> bool:
    return part in {"OnDate", "DateRange", "MonthOnly", "Recurrence", "function-after[_check_zone(), str]"}


def _message(err: Any) -> str:
    return error_sentence(err)


def _expect_map(src: _Source, problems: list[Problem], what: str) -> bool:
    if src.data is None:
        problems.append(
            Problem(src.file, None, "", _("is empty; it should hold {what}").format(what=_(what)), 0)
        )
        return False
    if not isinstance(src.data, dict):
        problems.append(src.problem((), _("should be a mapping holding {what}").format(what=_(what)), 0))
        return False
    return True


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Loading makes a few objects per school and frees next to none: the cycle collector, run every
    700 new objects, would walk the growing heap again and again (half the time of a 100,000-school
    load). Reference counting still frees everything; the collector runs again afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_config(directory: str | os.PathLike[str]) -> LoadedConfig:
    """Read, validate and cross-check a configuration directory; raise ConfigError with every problem."""
    with no_cycle_collection():
        return _load_config(Path(directory))


def _load_config(root: Path) -> LoadedConfig:
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not root.is_dir():
        raise ConfigError([Problem(root, None, "", _("configuration directory does not exist"), 0)])

    settings = None
    project_file = root / "project.yaml"
    sources: dict[str, _Source] = {}
    if not project_file.is_file():
        problems.append(
            Problem(project_file, None, "", _("missing: every configuration needs project.yaml"), 0)
        )
    else:
        src = _Source(project_file, _read_yaml(project_file, problems))
        readable = src.data is not None or not any(p.file == project_file for p in problems)
        if readable and _expect_map(src, problems, N_("the project settings")):
            settings = _validate(ProjectSettings, src, problems)
            sources["project"] = src

    schools: list[School] = []
    teams: list[Team] = []
    # Ids of entries that did not validate: references to them are knock-on errors, folded into the cause.
    broken: dict[str, dict[str, Problem]] = {"school": {}, "team": {}}
    part_file = root / "participants.yaml"
    tables = roster_file(root)
    roster: Roster | None = None
    if len(tables) > 1:
        problems.append(
            Problem(
                tables[1],
                None,
                "",
                _("{other} holds the schools too: keep one table of schools").format(other=tables[0].name),
                0,
            )
        )
    if not part_file.is_file():
        if not tables:
            problems.append(
                Problem(part_file, None, "", _("missing: list the participating schools here"), 0)
            )
    else:
        src = _Source(part_file, _read_yaml(part_file, problems))
        readable = src.data is not None or not any(p.file == part_file for p in problems)
        if readable and _expect_map(src, problems, N_("`schools:` and `teams:`")):
            sources["participants"] = src
            extra = sorted(set(src.data) - {"schools", "teams"}, key=str)
            for key in extra:
                problems.append(src.problem((key,), _("unknown section; expected `schools` or `teams`")))
            if tables and src.data.get("schools") is not None:
                problems.append(
                    src.problem(
                        ("schools",),
                        _("the schools are in {table} too: keep them in one place").format(
                            table=tables[0].name
                        ),
                    )
                )
            elif not tables:
                schools = _validate_list(
                    School, src, "schools", problems, required=True, broken=broken["school"]
                )
            teams = _validate_list(Team, src, "teams", problems, broken=broken["team"])
    if len(tables) == 1:
        schools, roster = read_roster(tables[0], problems, warnings, broken["school"])

    events: list[KeyEvent] = []
    cyc_file = root / "cyclogram.yaml"
    if cyc_file.is_file():
        src = _Source(cyc_file, _read_yaml(cyc_file, problems))
        if src.data is None and not any(p.file == cyc_file for p in problems):
            warnings.append(Problem(cyc_file, None, "", _("is empty: the year has no key events")))
        elif src.data is not None and _expect_map(src, problems, N_("`events:`")):
            sources["cyclogram"] = src
            for key in sorted(set(src.data) - {"events"}, key=str):
                problems.append(src.problem((key,), _("unknown section; expected `events`")))
            events = _validate_list(KeyEvent, src, "events", problems)

    meetings: list[Meeting] = []
    meeting_sources: dict[str, _Source] = {}
    meeting_files: dict[str, Path] = {}
    mdir = root / "meetings"
    if not mdir.is_dir():
        warnings.append(
            Problem(
                mdir,
                None,
                "",
                _("no meetings/ folder: the year has no meetings (one file per meeting goes there)"),
            )
        )
    for path in sorted(mdir.glob("*.yaml")) + sorted(mdir.glob("*.yml")) if mdir.is_dir() else []:
        src = _Source(path, _read_yaml(path, problems))
        if src.data is None and any(p.file == path for p in problems):
            continue
        if not _expect_map(src, problems, N_("one meeting")):
            continue
        meeting = _validate(Meeting, src, problems)
        if meeting is None:
            continue
        if meeting.id in meeting_sources:
            problems.append(
                src.problem(
                    ("id",),
                    _("duplicate meeting id {id!r} (also in {file})").format(
                        id=meeting.id, file=meeting_files[meeting.id]
                    ),
                )
            )
            continue
        _check_meeting(meeting, src, problems)
        meetings.append(meeting)
        meeting_sources[meeting.id] = src
        meeting_files[meeting.id] = path

    # A file that could not be read at all is the cause of what would follow from its absence: alone.
    if settings is None or any(p.rank == 0 for p in problems):
        raise ConfigError(problems)

    # Cross-check what did parse, so that one bad file does not hide the problems of the others.
    project = Project(settings=settings, schools=schools, teams=teams, meetings=meetings, events=events)
    cross, references = _cross_check(project, sources, meeting_sources, roster)
    problems = _fold(problems + [replace(p, rank=2) for p in cross], references, broken)
    if problems:
        raise ConfigError(problems)
    warnings.extend(_role_warnings(project, sources.get("participants"), roster))
    return LoadedConfig(directory=root, project=project, meeting_files=meeting_files, warnings=warnings)


def _fold(
    own: list[Problem], references: list[tuple[str, str, Problem]], broken: dict[str, dict[str, Problem]]
) -> list[Problem]:
    """Each unknown id once, its other references counted; references to an entry that did not
    validate are knock-on errors: counted on the entry's own first problem instead of listed."""
    waiting: dict[Problem, int] = {}
    unknown: dict[tuple[str, str], list[Problem]] = {}
    for what, ident, problem in references:
        cause = broken.get(what, {}).get(ident)
        if cause is not None:
            waiting[cause] = waiting.get(cause, 0) + 1
        else:
            unknown.setdefault((what, ident), []).append(problem)
    out = []
    for problem in own:
        n = waiting.get(problem)
        if n:
            note = ngettext(" ({n} reference to it waits on this)", " ({n} references to it wait on this)", n)
            problem = Problem(problem.file, problem.line, problem.path, problem.message + note.format(n=n))
        out.append(problem)
    for found in unknown.values():
        first, more = found[0], len(found) - 1
        if more:
            note = ngettext(" (and {n} more reference to it)", " (and {n} more references to it)", more)
            first = Problem(first.file, first.line, first.path, first.message + note.format(n=more), 2)
        out.append(first)
    return out


def _validate_list(
    model: type[BaseModel],
    src: _Source,
    key: str,
    problems: list[Problem],
    required: bool = False,
    broken: dict[str, Problem] | None = None,
) -> list[Any]:
    items = src.data.get(key)
    if items is None:
        if required:
            problems.append(src.problem((), _("`{key}:` is missing or empty").format(key=key)))
        return []
    if not isinstance(items, list):
        problems.append(src.problem((key,), _("should be a list")))
        return []
    out = []
    for i, item in enumerate(items):
        # A plainly valid school is built directly; anything else goes through the model, which words it.
        value = built_school(item) if model is School else None
        if value is not None:
            out.append(value)
            continue
        sub = _Source(src.file, src.data, (key, i))
        before = len(problems)
        value = _validate(model, sub, problems, data=item)
        if value is not None:
            out.append(value)
        elif broken is not None and isinstance(item, dict) and isinstance(item.get("id"), str):
            broken.setdefault(item["id"], problems[before])
    return out


# --- checks across files ----------------------------------------------------------------------------------


def _cross_check(
    project: Project, sources: dict[str, _Source], meetings: dict[str, _Source], roster: Roster | None = None
) -> tuple[list[Problem], list[tuple[str, str, Problem]]]:
    """The problems across files, and apart the references to unknown ids (what, id, problem)."""
    problems: list[Problem] = []
    refs: list[tuple[str, str, Problem]] = []

    def unknown(what: str, ident: str, src: _Source, path: tuple[Any, ...]) -> None:
        message = (_("unknown school {id!r}") if what == "school" else _("unknown team {id!r}")).format(
            id=ident
        )
        refs.append((what, ident, src.problem(path, message, 2)))

    part = sources.get("participants")
    cyc = sources.get("cyclogram")
    school_ids = {s.id for s in project.schools}
    team_ids = {t.id for t in project.teams}
    year = project.settings.school_year

    def dupes(items: list[Any], src: _Source | None, key: str, what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen and src is not None:
                problems.append(src.problem((key, i, "id"), _(what).format(id=item.id)))
            seen.add(item.id)

    if roster is None:  # a table's duplicates are found as it is read, by row
        dupes(project.schools, part, "schools", N_("duplicate school id {id!r}"))
    dupes(project.teams, part, "teams", N_("duplicate team id {id!r}"))
    dupes(project.events, cyc, "events", N_("duplicate key event id {id!r}"))

    def audience(aud: Audience, src: _Source, path: tuple[Any, ...]) -> None:
        for i, sid in enumerate(aud.schools):
            if sid not in school_ids:
                unknown("school", sid, src, (*path, "schools", i))
        for i, tid in enumerate(aud.teams):
            if tid not in team_ids:
                unknown("team", tid, src, (*path, "teams", i))

    def responsible(resp: Responsible | None, src: _Source, path: tuple[Any, ...]) -> None:
        if resp is None:
            return
        if resp.school and resp.school not in school_ids:
            unknown("school", resp.school, src, (*path, "school"))
        if resp.team and resp.team not in team_ids:
            unknown("team", resp.team, src, (*path, "team"))

    def in_year(event: KeyEvent, src: _Source, path: tuple[Any, ...]) -> None:
        # Overlap, not containment: a week that runs 26 August-2 September belongs to both years.
        if event.last_day < year.first_day or event.first_day > year.last_day:
            problems.append(
                src.problem(
                    (*path, "when"),
                    _("falls outside the school year {year} ({first}-{last})").format(
                        year=year.label(),
                        first=f"{year.first_day:%d.%m.%Y}",
                        last=f"{year.last_day:%d.%m.%Y}",
                    ),
                )
            )

    if part is not None:
        for i, team in enumerate(project.teams):
            for j, sid in enumerate(team.schools):
                if sid not in school_ids:
                    unknown("school", sid, part, ("teams", i, "schools", j))

    if cyc is not None:
        for i, event in enumerate(project.events):
            audience(event.audience, cyc, ("events", i, "audience"))
            responsible(event.responsible, cyc, ("events", i, "responsible"))
            in_year(event, cyc, ("events", i))

    event_ids = {e.id for e in project.events}
    for meeting in project.meetings:
        src = meetings[meeting.id]
        first_day = project.meeting_start(meeting).date()
        last_day = meeting.end if meeting.all_day else project.meeting_end(meeting).date()
        if last_day < year.first_day or first_day > year.last_day:  # type: ignore[operator]
            problems.append(
                src.problem(("start",), _("falls outside the school year {year}").format(year=year.label()))
            )
        audience(meeting.audience, src, ("audience",))
        if meeting.minutes is not None:
            mins = meeting.minutes
            for i, sid in enumerate(mins.attendance):
                if sid not in school_ids:
                    unknown("school", sid, src, ("minutes", "attendance", i))
            for i, item in enumerate(mins.action_items):
                responsible(item.responsible, src, ("minutes", "action_items", i, "responsible"))
            for i, event in enumerate(mins.approved_events):
                path = ("minutes", "approved_events", i)
                if event.id in event_ids:
                    problems.append(
                        src.problem((*path, "id"), _("duplicate key event id {id!r}").format(id=event.id))
                    )
                event_ids.add(event.id)
                audience(event.audience, src, (*path, "audience"))
                responsible(event.responsible, src, (*path, "responsible"))
                in_year(event, src, path)
    return problems, refs


# The longest a meeting given with clock times may last (a conference of several days fits).
TIMED_MEETING_MAX = timedelta(days=14)


def _check_meeting(meeting: Meeting, src: _Source, problems: list[Problem]) -> None:
    """Checks a meeting file needs nothing else for: its times in its own (local) terms."""
    first, last = meeting.start, meeting.end
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        if last < first:
            problems.append(src.problem(("end",), _("end is before start (the last day of the meeting)")))
        return  # an all-day meeting: any clock time of its days is inside
    if last <= first:
        problems.append(src.problem(("end",), _("end is not after start")))
        return
    if last - first > TIMED_MEETING_MAX:
        # A meeting of weeks with clock times is a mistyped date, not a meeting: refused with both ends.
        problems.append(
            src.problem(
                ("start",),
                _(
                    "the meeting would last {days} days ({first} to {last}); a meeting with clock times lasts "
                    "at most {most} days: check the dates, or give dates only for a longer one"
                ).format(
                    days=(last - first).days, first=f"{first:%Y-%m-%d %H:%M}", last=f"{last:%Y-%m-%d %H:%M}",
                    most=TIMED_MEETING_MAX.days,
                ),
            )
        )  # fmt: skip
        return
    span = f"{first:%H:%M}-{last:%H:%M}"
    for i, item in enumerate(meeting.agenda):
        if item.start is None or item.slot(first, last) is not None:
            continue
        alone = AgendaItem(title=item.title, start=item.start)
        attr = "start" if alone.slot(first, last) is None else "end"
        clock = getattr(item, attr)
        problems.append(
            src.problem(
                ("agenda", i, attr),
                _(
                    "{slot} is outside the meeting ({span}): a slot may begin at most two hours "
                    "before the start and must end by the meeting's end"
                ).format(slot=f"{clock:%H:%M}", span=span),
            )
        )


def _same_name(a: str, b: str) -> bool:
    def norm(name: str) -> str:
        return " ".join(name.casefold().replace("ё", "е").split())

    return norm(a) == norm(b)


def _role_warnings(project: Project, part: _Source | None, roster: Roster | None = None) -> list[Problem]:
    """One address in several roles is one person (a director of two schools); under two different names
    it is more likely a copied address that was not changed, so say where, without refusing it."""
    if part is None and roster is None:
        return []

    def roles() -> Iterator[tuple[tuple[Any, ...], Contact]]:
        # School roles first, in order, then team contacts: one pass, no list of every role.
        for i, school in enumerate(project.schools):
            yield ("schools", i, "head"), school.head
            for j, c in enumerate(school.contacts):
                yield ("schools", i, "contacts", j), c
        for i, t in enumerate(project.teams):
            if t.contact:
                yield ("teams", i, "contact"), t.contact

    def where(path: tuple[Any, ...]) -> str:
        if roster is not None and path[0] == "schools":
            return _("{file} row {row}").format(file=roster.file.name, row=roster.rows[path[1]])
        text = _path_text(path)
        line = _line_of(part.data, path) if part is not None else None
        return text + (_(" (line {line})").format(line=line) if line else "")

    first: dict[str, tuple[tuple[Any, ...], Contact]] = {}
    out: list[Problem] = []
    for path, person in roles():
        key = person.email.lower()
        if key not in first:
            first[key] = (path, person)
            continue
        earlier_path, earlier = first[key]
        if _same_name(person.name, earlier.name):
            continue
        message = _("{email} is also {where}").format(email=person.email, where=where(earlier_path)) + _(
            " under another name ({earlier!r}, here {name!r}): a typo in the address? "
            "If it is one person, mail to it uses the first name"
        ).format(earlier=earlier.name, name=person.name)
        if roster is not None and path[0] == "schools":
            field = "email" if path[2] == "head" else "contact.email"
            out.append(roster.problem(path[1], field, message))
        elif part is not None:
            out.append(part.problem((*path, "email"), message))
    return out


def load_project(directory: str | os.PathLike[str]) -> Project:
    return load_config(directory).project
