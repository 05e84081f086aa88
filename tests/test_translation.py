"""The console's language: every message translated, the choice of language, Russian output end to end."""

from __future__ import annotations

import gettext
import importlib.machinery
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

import cli
from scheduler import translation
from scheduler.translation import DOMAIN, LOCALE_DIR, language_from_env
from tests.conftest import ROOT


def _catalogs_script():
    loader = importlib.machinery.SourceFileLoader("catalogs_script", str(ROOT / "scripts" / "catalogs"))
    spec = importlib.util.spec_from_loader("catalogs_script", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def extracted():
    return [m for m in _catalogs_script().extract() if m.id]


def _po(language: str):
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as f:
        return read_po(f, locale=language)


def _forms(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def _fields(text: str) -> set[str]:
    return set(re.findall(r"\{(\w*)[^{}]*\}", text)) | set(re.findall(r"%\((\w+)\)s", text))


def test_every_extracted_message_has_a_russian_translation_and_english_is_itself(extracted):
    ru, en = _po("ru"), _po("en")
    assert len(extracted) > 250  # the extractor found the code's messages and every help text
    untranslated = [m.id for m in extracted if ru.get(m.id) is None or not all(_forms(ru.get(m.id)))]
    assert untranslated == [], f"no Russian for {untranslated}: write it in the .po, then `make catalogs`"
    not_identity = [m.id for m in extracted if en.get(m.id) is None or en.get(m.id).string != m.id]
    assert not_identity == []


def test_translations_keep_every_placeholder(extracted):
    ru = _po("ru")
    for m in extracted:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        wanted = set().union(*(_fields(i) for i in ids))
        for form in _forms(ru.get(m.id)):
            # A plural form may leave the number out ("одна"), never name a field the code does not give.
            assert _fields(form) <= wanted, (m.id, form)
            if not isinstance(m.id, tuple):
                assert _fields(form) == wanted, (m.id, form)


def _key(value):
    return tuple(value) if isinstance(value, tuple | list) else value


def test_the_compiled_catalogs_are_those_of_the_po_files():
    for language in ("ru", "en"):
        po = _po(language)
        with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as f:
            mo = read_mo(f)

        def pairs(catalog):
            return {_key(m.id): _key(m.string) for m in catalog if m.id}

        assert pairs(po) == pairs(mo), f"{language}: the .mo is older than the .po: `make catalogs`"


def test_help_texts_of_every_command_are_extracted(extracted):
    ids = {m.id for m in extracted}
    assert set(translation.extract_commands(cli.main)) <= ids


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "ru_RU.UTF-8"}, "ru"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LC_ALL": "en_US.UTF-8", "LANG": "ru_RU.UTF-8"}, "en"),
        ({"LC_MESSAGES": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}, "ru"),
        ({"LC_ALL": "ru_RU", "LC_MESSAGES": "en_US.UTF-8"}, "ru"),
        ({"LANG": "ru"}, "ru"),
        ({"LANG": "C.UTF-8"}, None),
        ({"LANG": "POSIX"}, None),
        ({"LANG": "de_DE.UTF-8"}, None),
        ({}, None),
    ],
)
def test_the_locale_names_the_language(environ, language):
    assert language_from_env(environ) == language


def _russian_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYCLOGRAM_", "LC_", "LANGUAGE"))}
    env.update({"LANG": "ru_RU.UTF-8", **extra})
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_validate_under_a_russian_locale_prints_russian_root_cause_first(config_copy, edit):
    # The root cause: school-2's entry is wrong; the references to school-2 are its consequences.
    edit("participants.yaml", "  - id: school-2\n", "  - id: school-2\n    phone: 123\n")
    edit("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 10:00", "start: 25.09.2020 10:00")
    done = _cli(["--config", str(config_copy), "validate"], _russian_env())
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "2 ошибки в конфигурации:", done.stderr
    assert (
        "ожидается дата (например, 2021-01-28) или дата и время (например, 2021-01-28 10:00)" in done.stderr
    )
    assert "неизвестное поле (проверьте написание)" in done.stderr
    assert "от этого зависят" in done.stderr  # the references to school-2, counted on the cause
    assert "неизвестная школа" not in done.stderr and "Input should be" not in done.stderr
    assert "Traceback" not in done.stderr


def test_commands_and_click_speak_russian_under_a_russian_locale(tmp_path):
    env = _russian_env(CYCLOGRAM_STATE=str(tmp_path / "var"))
    ok = _cli(["validate"], env)
    assert ok.returncode == 0 and "OK: 5 школ, 2 команды, 3 совещания, 7 ключевых событий" in ok.stdout
    helped = _cli(["plan", "--help"], env)
    assert helped.stdout.startswith("Использование: cyclogram plan [ПАРАМЕТРЫ]")
    assert "Показать план рассылок на год" in helped.stdout and "Параметры:" in helped.stdout
    missing = _cli(["send"], env)
    assert missing.returncode == 2 and "Ошибка: Не указан аргумент 'KIND'." in missing.stderr
    unknown = _cli(["--now", "2020-09-11T10:00+03:00", "send", "postcard", "heads-2020-09", "--yes"], env)
    assert unknown.returncode == 2 and "неизвестный вид рассылки 'postcard'" in unknown.stderr
    backwards = _cli(["plan", "--from", "2021-01-01", "--to", "2020-09-01"], env)
    assert backwards.returncode == 2 and "--to раньше, чем --from" in backwards.stderr
    english = _cli(["--lang", "en", "plan", "--help"], env)
    assert english.stdout.startswith("Usage: cyclogram plan [OPTIONS]")
    # click makes --help's own line before --lang is read: it must still follow the chosen language
    for args in (["--lang", "en", "--help"], ["--lang", "en", "plan", "--help"]):
        shown = _cli(args, env).stdout
        assert "Show this message and exit." in shown and "Показать" not in shown


def test_without_a_locale_the_project_language_speaks(config_copy, edit, tmp_path):
    env = _russian_env(LANG="C.UTF-8", CYCLOGRAM_STATE=str(tmp_path / "var"))
    russian = _cli(["--config", str(config_copy), "validate"], env)
    assert "OK: 5 школ" in russian.stdout  # the example project is Russian
    assert _cli(["--config", str(config_copy), "--help"], env).stdout.startswith("Использование:")
    edit("project.yaml", "language: ru", "language: en")
    english = _cli(["--config", str(config_copy), "validate"], env)
    assert "OK: 5 schools" in english.stdout
    nothing = {k: v for k, v in env.items() if k != "LANG"}
    assert "OK: 5 schools" in _cli(["--config", str(config_copy), "validate"], nothing).stdout
    helped = _cli(["--config", str(config_copy / "nowhere"), "--help"], nothing)
    assert helped.stdout.startswith("Usage:")  # nothing says otherwise: English


def test_a_run_in_this_process_leaves_the_language_as_it_was():
    before = translation.current_language()
    result = CliRunner().invoke(cli.main, ["--lang", "ru", "--help"])
    assert "Использование:" in result.output
    assert translation.current_language() == before
    assert "Usage:" in CliRunner().invoke(cli.main, ["--help"], env={"LANG": "en_US.UTF-8"}).output


def test_the_catalog_domain_is_found_where_the_package_is():
    ru = gettext.translation(DOMAIN, LOCALE_DIR, languages=["ru"])
    assert ru.gettext("Usage:") == "Использование:"
    stream = io.StringIO()
    print(ru.ngettext("{n} school", "{n} schools", 21).format(n=21), file=stream)
    assert stream.getvalue() == "21 школа\n"
