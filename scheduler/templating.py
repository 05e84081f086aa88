"""The one Jinja environment: shipped templates, overridable from the configuration directory."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import Problem, TemplateProblem

if TYPE_CHECKING:
    from .config import LoadedConfig

__all__ = [
    "TemplateFileError",
    "TemplateOutsideError",
    "check_templates",
    "default_templates_dir",
    "mail_template_names",
    "make_environment",
]

MAIL_PARTS = ("subject.txt", "txt", "html")


def default_templates_dir() -> Path:
    """The shipped templates: inside the package when installed, at the repository root in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("cyclogram's templates are missing from this installation")


class TemplateFileError(TemplateProblem, jinja2.TemplateError):
    """A template file an organiser put in templates/ that cannot be used as one."""

    def __init__(self, file: Path, what: str):
        self.file = file
        self.what = what
        message = f"{file}: {what}"
        TemplateProblem.__init__(self, message)
        jinja2.TemplateError.__init__(self, message)


class TemplateOutsideError(TemplateFileError):
    """A template file that resolves outside its templates/ folder (a symlink, most likely): refused."""

    def __init__(self, file: Path, target: Path):
        self.target = target
        super().__init__(file, f"the template resolves outside the templates/ folder (to {target}): refused")


class _ConfinedLoader(jinja2.FileSystemLoader):
    """A folder of templates that no name, `..` or symlink can leave."""

    def __init__(self, root: Path):
        super().__init__(str(root), followlinks=False)
        self.root = root.resolve()

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, object]:
        path = self.root.joinpath(*split_template_path(template))  # refuses `..` in the name
        if os.path.lexists(path):
            real = path.resolve()
            if not real.is_relative_to(self.root):
                raise TemplateOutsideError(path, real)
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError:
            raise TemplateFileError(path, "the template is not UTF-8 text") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise TemplateFileError(path, f"the template cannot be read: {exc.strerror}") from None


def make_environment(config_dir: Path | None = None) -> jinja2.Environment:
    """A user's `templates/` overrides a shipped template of the same name; `default:` names the shipped one."""
    if config_dir is None:
        return _environment(None, ())
    return _environment(str(config_dir.resolve()), _overrides(config_dir / "templates"))


def _overrides(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What the templates/ folder holds now. Part of the cache key: an override added or removed while the
    service runs is seen, where Jinja's own cache would keep serving the shipped template it found first."""
    if not folder.is_dir():
        return ()
    found = []
    for path in folder.rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        found.append((path.relative_to(folder).as_posix(), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


@lru_cache(maxsize=8)
def _environment(config_dir: str | None, overrides: tuple[tuple[str, int, int], ...]) -> jinja2.Environment:
    shipped = jinja2.FileSystemLoader(str(default_templates_dir()))
    loaders: list[jinja2.BaseLoader] = []
    if config_dir is not None:
        user = Path(config_dir) / "templates"
        if user.is_dir():
            loaders.append(_ConfinedLoader(user))
    loaders.append(shipped)
    loader = jinja2.ChoiceLoader([jinja2.PrefixLoader({"default": shipped}, delimiter=":"), *loaders])
    # An organiser's override is code from a file anyone with the folder can edit: it gets the data it
    # is handed and nothing else (no attributes like __globals__, no changing what it is given).
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    from . import i18n

    i18n.install_filters(env)
    return env


def mail_template_names(name: str, language: str) -> list[str]:
    """The three templates of one mailing kind in one language: subject, text body, HTML body."""
    return [f"mail/{language}/{name}.{part}" for part in MAIL_PARTS]


def check_templates(loaded: LoadedConfig) -> list[Problem]:
    """Every template a mailing would use exists, in every language a recipient reads."""
    from .model import KINDS

    project = loaded.project
    env = make_environment(loaded.directory)
    languages = sorted({project.language_of(s) for s in project.schools} | {project.settings.language})
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()

    def need(name: str, file: Path, path: str) -> None:
        for lang in languages:
            if (name, lang) in seen:
                continue
            seen.add((name, lang))
            for template in mail_template_names(name, lang):
                try:
                    env.get_template(template)
                except TemplateFileError as exc:
                    problems.append(Problem(exc.file, None, "", exc.what))
                except jinja2.TemplateNotFound:
                    problems.append(Problem(file, None, path, f"template {template!r} does not exist"))
                except jinja2.TemplateSyntaxError as exc:
                    problems.append(
                        Problem(
                            Path(exc.filename or template),
                            exc.lineno,
                            "",
                            f"template syntax error: {exc.message}",
                        )
                    )

    policy = project.settings.mailings
    used: dict[str, set[str]] = {}  # template name -> kinds it serves
    for kind in KINDS:
        rule = getattr(policy, kind)
        need(rule.template or kind, loaded.directory / "project.yaml", f"mailings.{kind}.template")
        used.setdefault(rule.template or kind, set()).add(kind)
    for meeting in project.meetings:
        for kind in (k for k in meeting.mailings if k != "review"):  # `review: true` is no kind
            rule = getattr(project.policy(meeting), kind)
            file = loaded.meeting_files.get(meeting.id, loaded.directory / "meetings")
            need(rule.template or kind, file, f"mailings.{kind}.template")
            used.setdefault(rule.template or kind, set()).add(kind)
    problems.extend(_override_problems(loaded.directory, env))
    if not problems:
        problems.extend(_render_problems(loaded, env, used, languages))
    return problems


def _override_problems(directory: Path, env: jinja2.Environment) -> list[Problem]:
    """Every file in the configuration's templates/ compiles and stays inside it; the index page renders."""
    root = directory / "templates"
    problems: list[Problem] = []
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            name = path.relative_to(root).as_posix()
            try:
                env.get_template(name)
            except TemplateFileError as exc:
                problems.append(Problem(exc.file, None, "", exc.what))
            except jinja2.TemplateSyntaxError as exc:
                problems.append(Problem(path, exc.lineno, "", f"template syntax error: {exc.message}"))
            except (jinja2.TemplateError, UnicodeDecodeError, OSError) as exc:
                problems.append(Problem(path, None, "", f"template cannot be read: {exc}"))
        if (root / "web" / "index.html").exists() and not problems:
            problems.extend(_index_problems(directory, env))
    return problems


def _index_problems(directory: Path, env: jinja2.Environment) -> list[Problem]:
    from .config import load_config
    from .server import render_index

    try:
        render_index(load_config(directory).project, {}, env)
    except TemplateProblem as exc:
        return [Problem(directory / "templates" / "web" / "index.html", None, "", str(exc))]
    return []


def _sample_links(project: Any, meeting: str, email: str) -> dict[str, str]:
    from .rsvp.links import answer_urls

    return answer_urls(project, "validate", meeting, email)


def _render_problems(
    loaded: LoadedConfig, env: jinja2.Environment, used: dict[str, set[str]], languages: list[str]
) -> list[Problem]:
    """Render each template in use with a context from the configuration itself: with StrictUndefined,
    a misspelt or missing name is found here by `validate`, not at send time."""
    from .changes import Change
    from .errors import TemplateProblem
    from .messages import mail_context, render_templates
    from .model import ActionItem, Minutes, Recipient, Responsible

    project = loaded.project
    meeting = next((m for m in project.meetings if m.minutes and m.minutes.final), None) or (
        project.meetings[0] if project.meetings else None
    )
    action = next(
        (a for m in project.meetings if m.minutes for a in m.minutes.action_items),
        # At the start of a year no minutes set an action item yet; the template is still checked,
        # with a sample item, so that a mistake in it is found now and not at the first reminder.
        ActionItem(
            id="sample",
            title=meeting.title if meeting else "sample",
            responsible=Responsible(person=project.settings.organizer.name),
            due=project.meeting_start(meeting).date() if meeting else project.settings.school_year.first_day,
        ),
    )
    # A summary goes out only once the minutes are final: check it against such minutes even before any.
    summarised = meeting
    if meeting is not None and not (meeting.minutes and meeting.minutes.final):
        summarised = meeting.model_copy(
            update={"minutes": Minutes(final=True, decisions=[meeting.title], action_items=[action])}
        )
    events = project.all_events()
    event = events[0] if events else None
    problems: list[Problem] = []
    for name, kinds in sorted(used.items()):
        for kind in sorted(kinds):
            if (meeting is None and kind != "event_reminder") or (kind == "event_reminder" and event is None):
                continue  # nothing in this configuration would ever render it
            for lang in languages:
                school = next(
                    (s for s in project.schools if project.language_of(s) == lang), project.schools[0]
                )
                # Once for a person of one school, once for one answering for two: templates speak of each.
                other = next(([s.id] for s in project.schools if s.id != school.id), [])
                roles = [(school.id,), *([(school.id, *other)] if other else [])]
                changes = [Change("place", "A", "B")] if kind == "update" else None
                try:
                    for ids in roles:
                        recipient = Recipient(
                            schools=ids, name=school.head.name, email=school.head.email, language=lang
                        )
                        context = mail_context(
                            project, kind, recipient, meeting=summarised if kind == "summary" else meeting,
                            action=action if kind == "action_reminder" else None,
                            event=event if kind == "event_reminder" else None, changes=changes,
                            feed_urls=dict.fromkeys(ids, str(project.settings.base_url)),
                            rsvp=_sample_links(project, meeting.id, recipient.email)
                            if meeting is not None and kind in ("invitation", "update", "rsvp_reminder")
                            else None,
                        )  # fmt: skip
                        render_templates(env, name, lang, context)
                except TemplateProblem as exc:
                    file, _, rest = str(exc).partition(":")
                    line, _, message = rest.partition(":")
                    if line.strip().isdigit():
                        problems.append(
                            Problem(Path(file), int(line), "", f"template error: {message.strip()}")
                        )
                    else:
                        problems.append(Problem(Path(name), None, "", f"template error: {exc}"))
    return problems
