"""The console's language: gettext catalogs (scheduler/locale), chosen by --lang, the locale, the project."""

from __future__ import annotations

import gettext as _gettext
import inspect
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "CONSOLE_LANGUAGES",
    "DOMAIN",
    "LOCALE_DIR",
    "N_",
    "_",
    "current_language",
    "extract_commands",
    "install_click",
    "language_from_env",
    "language_is_chosen",
    "localize_commands",
    "ngettext",
    "project_language",
    "use_language",
]

DOMAIN = "cyclogram"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
CONSOLE_LANGUAGES = ("ru", "en")
# The message ids are English; an English catalog exists so a missing translation is seen, not hidden.
_DEFAULT = "en"

_state: dict[str, Any] = {"language": _DEFAULT, "chosen": False}


@cache
def _catalog(language: str) -> _gettext.NullTranslations:
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def _(message: str) -> str:
    """The message in the console's language."""
    return _catalog(_state["language"]).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The message in the console's language, in the plural form for `n` (Russian has three)."""
    return _catalog(_state["language"]).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown (help texts, tables of texts)."""
    return message


def current_language() -> str:
    return str(_state["language"])


def language_is_chosen() -> bool:
    """True once --lang or the locale named the language (the project's own language then yields)."""
    return bool(_state["chosen"])


def use_language(language: str | None, chosen: bool = True) -> None:
    """Speak `language` from now on (English when it is not one the console speaks)."""
    _state["language"] = language if language in CONSOLE_LANGUAGES else _DEFAULT
    _state["chosen"] = chosen and language in CONSOLE_LANGUAGES


def language_from_env(environ: Mapping[str, str]) -> str | None:
    """The language the locale names, as POSIX reads it: LC_ALL, then LC_MESSAGES, then LANG.

    C and POSIX (and a language the console does not speak) say nothing: the project's language decides.
    """
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "").strip()
        if value:
            language = value.split(".")[0].split("@")[0].split("_")[0].lower()
            return language if language in CONSOLE_LANGUAGES else None
    return None


def install_click() -> None:
    """Click's own texts (Usage:, Options:, Error: Missing argument) from our catalog, in our language.

    Click calls the stdlib's global gettext; its modules' `_` and `ngettext` are pointed at ours instead,
    so `--lang` wins over the locale for them too.
    """
    for name, module in list(sys.modules.items()):
        if name != "click" and not name.startswith("click."):
            continue
        if getattr(module, "_", None) is _gettext.gettext:
            module._ = _  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is _gettext.ngettext:
            module.ngettext = ngettext  # type: ignore[attr-defined]


# What click shows of a command or an option besides click's own gettext texts.
_TEXTS = ("help", "short_help", "options_metavar", "subcommand_metavar")


def _walk(command: Any, seen: set[int] | None = None) -> Iterator[Any]:
    seen = seen if seen is not None else set()
    if id(command) in seen:
        return
    seen.add(id(command))
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk(sub, seen)


def _clean(text: str | None) -> str | None:
    """A docstring as click shows it: indentation removed, so the catalog's ids read as the help does."""
    return inspect.cleandoc(text) if text else text


def project_language(config_dir: Path) -> str | None:
    """The `language:` of project.yaml when it can be read; None for any problem (validate reports those)."""
    import yaml

    try:
        data = yaml.safe_load((config_dir / "project.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    language = data.get("language") if isinstance(data, dict) else None
    return language if language in CONSOLE_LANGUAGES else None


def localize_commands(root: Any) -> None:
    """Put every command's and option's help text into the console's language (the ids are kept)."""
    for command in _walk(root):
        # click makes each command's --help option once, in the language of that moment, and keeps it apart
        helper = getattr(command, "_help_option", None)
        if helper is not None:  # its text may already be a translation: name click's own id
            helper.__dict__.setdefault("_msgid_help", "Show this message and exit.")
        for owner in (command, *command.params, *([helper] if helper is not None else [])):
            for attr in _TEXTS:
                original = owner.__dict__.setdefault(f"_msgid_{attr}", _clean(getattr(owner, attr, None)))
                if original:
                    setattr(owner, attr, _(original))


def extract_commands(root: Any) -> Iterator[str]:
    """Every help text of a click command tree: the messages `localize_commands` looks up."""
    for command in _walk(root):
        for owner in (command, *command.params):
            for attr in _TEXTS:
                text = owner.__dict__.get(f"_msgid_{attr}", _clean(getattr(owner, attr, None)))
                if text:
                    yield text


def extract_cli(fileobj: Any, keywords: Any, comment_tags: Any, options: dict[str, Any]) -> Iterator[Any]:
    """A Babel extractor for cli.py: its `_()` calls, then the help texts of its command tree."""
    from babel.messages.extract import extract_python

    yield from extract_python(fileobj, keywords, comment_tags, options)
    root = str(Path(getattr(fileobj, "name", "cli.py")).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    import cli

    for text in extract_commands(cli.main):
        yield 0, None, text, []
