"""Load the configuration directory into a Project, collecting every problem with its file and line."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
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

__all__ = [
    "CONFIG_ENV",
    "LAYOUT",
    "LoadedConfig",
    "config_dir",
    "load_config",
    "load_project",
]

CONFIG_ENV = "CYCLOGRAM_CONFIG"

# The files of a configuration directory and what each holds.
LAYOUT = {
    "project.yaml": "the project, its organiser, time zone, language, school year, feed URL and mailing policy",
    "participants.yaml": "schools (with their heads) and teams",
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


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.lines = {}
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.lines = [child.start_mark.line + 1 for child in node.value]
    out.line = node.start_mark.line + 1
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """PyYAML's own constructor raises a bare ValueError for 2021-02-30: say where, and what is wrong."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a real date ({exc})", node.start_mark
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

    def problem(self, path: Iterable[Any], message: str) -> Problem:
        path = tuple(path)
        return Problem(self.file, _line_of(self.data, path), _path_text(path), message)


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
        problems.append(Problem(path, None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None
    except OSError as exc:
        problems.append(Problem(path, None, "", f"cannot read: {exc.strerror}"))
        return None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        problems.append(Problem(path, line, "", f"{kind}: {what}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(path, None, "", f"YAML error: {exc}"))
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
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    if err["type"] == "missing":
        return "required field is missing"
    return msg


def _expect_map(src: _Source, problems: list[Problem], what: str) -> bool:
    if src.data is None:
        problems.append(Problem(src.file, None, "", f"is empty; it should hold {what}"))
        return False
    if not isinstance(src.data, dict):
        problems.append(src.problem((), f"should be a mapping holding {what}"))
        return False
    return True


def load_config(directory: str | os.PathLike[str]) -> LoadedConfig:
    """Read, validate and cross-check a configuration directory; raise ConfigError with every problem."""
    root = Path(directory)
    problems: list[Problem] = []
    if not root.is_dir():
        raise ConfigError([Problem(root, None, "", "configuration directory does not exist")])

    settings = None
    project_file = root / "project.yaml"
    sources: dict[str, _Source] = {}
    if not project_file.is_file():
        problems.append(Problem(project_file, None, "", "missing: every configuration needs project.yaml"))
    else:
        src = _Source(project_file, _read_yaml(project_file, problems))
        readable = src.data is not None or not any(p.file == project_file for p in problems)
        if readable and _expect_map(src, problems, "the project settings"):
            settings = _validate(ProjectSettings, src, problems)
            sources["project"] = src

    schools: list[School] = []
    teams: list[Team] = []
    part_file = root / "participants.yaml"
    if not part_file.is_file():
        problems.append(Problem(part_file, None, "", "missing: list the participating schools here"))
    else:
        src = _Source(part_file, _read_yaml(part_file, problems))
        readable = src.data is not None or not any(p.file == part_file for p in problems)
        if readable and _expect_map(src, problems, "`schools:` and `teams:`"):
            sources["participants"] = src
            extra = sorted(set(src.data) - {"schools", "teams"}, key=str)
            for key in extra:
                problems.append(src.problem((key,), "unknown section; expected `schools` or `teams`"))
            schools = _validate_list(School, src, "schools", problems, required=True)
            teams = _validate_list(Team, src, "teams", problems)

    events: list[KeyEvent] = []
    cyc_file = root / "cyclogram.yaml"
    if cyc_file.is_file():
        src = _Source(cyc_file, _read_yaml(cyc_file, problems))
        if src.data is not None and _expect_map(src, problems, "`events:`"):
            sources["cyclogram"] = src
            for key in sorted(set(src.data) - {"events"}, key=str):
                problems.append(src.problem((key,), "unknown section; expected `events`"))
            events = _validate_list(KeyEvent, src, "events", problems)

    meetings: list[Meeting] = []
    meeting_sources: dict[str, _Source] = {}
    meeting_files: dict[str, Path] = {}
    mdir = root / "meetings"
    for path in sorted(mdir.glob("*.yaml")) + sorted(mdir.glob("*.yml")) if mdir.is_dir() else []:
        src = _Source(path, _read_yaml(path, problems))
        if src.data is None and any(p.file == path for p in problems):
            continue
        if not _expect_map(src, problems, "one meeting"):
            continue
        meeting = _validate(Meeting, src, problems)
        if meeting is None:
            continue
        if meeting.id in meeting_sources:
            problems.append(
                src.problem(
                    ("id",), f"duplicate meeting id {meeting.id!r} (also in {meeting_files[meeting.id]})"
                )
            )
            continue
        _check_meeting(meeting, src, problems)
        meetings.append(meeting)
        meeting_sources[meeting.id] = src
        meeting_files[meeting.id] = path

    if settings is None:
        raise ConfigError(problems)

    # Cross-check what did parse, so that one bad file does not hide the problems of the others.
    project = Project(settings=settings, schools=schools, teams=teams, meetings=meetings, events=events)
    problems.extend(_cross_check(project, sources, meeting_sources))
    if problems:
        raise ConfigError(problems)
    warnings = _role_warnings(project, sources.get("participants"))
    return LoadedConfig(directory=root, project=project, meeting_files=meeting_files, warnings=warnings)


def _validate_list(
    model: type[BaseModel], src: _Source, key: str, problems: list[Problem], required: bool = False
) -> list[Any]:
    items = src.data.get(key)
    if items is None:
        if required:
            problems.append(src.problem((), f"`{key}:` is missing or empty"))
        return []
    if not isinstance(items, list):
        problems.append(src.problem((key,), "should be a list"))
        return []
    out = []
    for i, item in enumerate(items):
        sub = _Source(src.file, src.data, (key, i))
        value = _validate(model, sub, problems, data=item)
        if value is not None:
            out.append(value)
    return out


# --- checks across files ----------------------------------------------------------------------------------


def _cross_check(
    project: Project, sources: dict[str, _Source], meetings: dict[str, _Source]
) -> list[Problem]:
    problems: list[Problem] = []
    part = sources.get("participants")
    cyc = sources.get("cyclogram")
    school_ids = {s.id for s in project.schools}
    team_ids = {t.id for t in project.teams}
    year = project.settings.school_year

    def dupes(items: list[Any], src: _Source | None, key: str, what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen and src is not None:
                problems.append(src.problem((key, i, "id"), f"duplicate {what} id {item.id!r}"))
            seen.add(item.id)

    dupes(project.schools, part, "schools", "school")
    dupes(project.teams, part, "teams", "team")
    dupes(project.events, cyc, "events", "key event")

    def audience(aud: Audience, src: _Source, path: tuple[Any, ...]) -> None:
        for i, sid in enumerate(aud.schools):
            if sid not in school_ids:
                problems.append(src.problem((*path, "schools", i), f"unknown school {sid!r}"))
        for i, tid in enumerate(aud.teams):
            if tid not in team_ids:
                problems.append(src.problem((*path, "teams", i), f"unknown team {tid!r}"))

    def responsible(resp: Responsible | None, src: _Source, path: tuple[Any, ...]) -> None:
        if resp is None:
            return
        if resp.school and resp.school not in school_ids:
            problems.append(src.problem((*path, "school"), f"unknown school {resp.school!r}"))
        if resp.team and resp.team not in team_ids:
            problems.append(src.problem((*path, "team"), f"unknown team {resp.team!r}"))

    def in_year(event: KeyEvent, src: _Source, path: tuple[Any, ...]) -> None:
        # Overlap, not containment: a week that runs 26 August-2 September belongs to both years.
        if event.last_day < year.first_day or event.first_day > year.last_day:
            problems.append(
                src.problem(
                    (*path, "when"),
                    f"falls outside the school year {year.label()} "
                    f"({year.first_day:%d.%m.%Y}-{year.last_day:%d.%m.%Y})",
                )
            )

    if part is not None:
        for i, team in enumerate(project.teams):
            for j, sid in enumerate(team.schools):
                if sid not in school_ids:
                    problems.append(part.problem(("teams", i, "schools", j), f"unknown school {sid!r}"))

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
            problems.append(src.problem(("start",), f"falls outside the school year {year.label()}"))
        audience(meeting.audience, src, ("audience",))
        if meeting.minutes is not None:
            mins = meeting.minutes
            for i, sid in enumerate(mins.attendance):
                if sid not in school_ids:
                    problems.append(src.problem(("minutes", "attendance", i), f"unknown school {sid!r}"))
            for i, item in enumerate(mins.action_items):
                responsible(item.responsible, src, ("minutes", "action_items", i, "responsible"))
            for i, event in enumerate(mins.approved_events):
                path = ("minutes", "approved_events", i)
                if event.id in event_ids:
                    problems.append(src.problem((*path, "id"), f"duplicate key event id {event.id!r}"))
                event_ids.add(event.id)
                audience(event.audience, src, (*path, "audience"))
                responsible(event.responsible, src, (*path, "responsible"))
                in_year(event, src, path)
    return problems


def _check_meeting(meeting: Meeting, src: _Source, problems: list[Problem]) -> None:
    """Checks a meeting file needs nothing else for: its times in its own (local) terms."""
    first, last = meeting.start, meeting.end
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        if last < first:
            problems.append(src.problem(("end",), "end is before start (the last day of the meeting)"))
        return  # an all-day meeting: any clock time of its days is inside
    if last <= first:
        problems.append(src.problem(("end",), "end is not after start"))
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
                f"{clock:%H:%M} is outside the meeting ({span}): a slot may begin at most two hours "
                "before the start and must end by the meeting's end",
            )
        )


def _same_name(a: str, b: str) -> bool:
    def norm(name: str) -> str:
        return " ".join(name.casefold().replace("ё", "е").split())

    return norm(a) == norm(b)


def _role_warnings(project: Project, part: _Source | None) -> list[Problem]:
    """One address in several roles is one person (a director of two schools); under two different names
    it is more likely a copied address that was not changed, so say where, without refusing it."""
    if part is None:
        return []
    roles: list[tuple[tuple[Any, ...], Contact]] = []
    for i, school in enumerate(project.schools):
        roles.append((("schools", i, "head"), school.head))
        roles.extend((("schools", i, "contacts", j), c) for j, c in enumerate(school.contacts))
    roles.extend((("teams", i, "contact"), t.contact) for i, t in enumerate(project.teams) if t.contact)
    first: dict[str, tuple[tuple[Any, ...], Contact]] = {}
    out: list[Problem] = []
    for path, person in roles:
        key = person.email.lower()
        if key not in first:
            first[key] = (path, person)
            continue
        where, earlier = first[key]
        if not _same_name(person.name, earlier.name):
            line = _line_of(part.data, where)
            out.append(
                part.problem(
                    (*path, "email"),
                    f"{person.email} is also {_path_text(where)}"
                    + (f" (line {line})" if line else "")
                    + f" under another name ({earlier.name!r}, here {person.name!r}): a typo in the address? "
                    "If it is one person, mail to it uses the first name",
                )
            )
    return out


def load_project(directory: str | os.PathLike[str]) -> Project:
    return load_config(directory).project
