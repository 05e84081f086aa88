"""The README stays true: the generated configuration reference, every command and every variable."""

from __future__ import annotations

import re
from pathlib import Path

import click

import cli
from scheduler.reference import BEGIN, END, config_reference

README = Path(__file__).resolve().parent.parent / "README.md"


def _block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name}:begin[^>]*-->(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"README has no {name} block"
    return match.group(1)


def test_configuration_reference_is_current():
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert block.strip() == config_reference().strip(), "run: python -m scheduler.reference README.md"


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names += _commands(command, full + " ")
            if command.invoke_without_command:
                names.append(full)
        else:
            names.append(full)
    return names


def test_every_command_is_documented():
    block = _block("commands")
    missing = [c for c in _commands(cli.main) if f"`cyclogram {c}" not in block]
    assert not missing, f"README's command table lacks: {missing}"


def test_every_environment_variable_is_documented():
    block = _block("env")
    sources = Path(__file__).resolve().parent.parent.glob("scheduler/**/*.py")
    used = set()
    for path in sources:
        used |= set(re.findall(r"CYCLOGRAM_[A-Z_]+", path.read_text(encoding="utf-8")))
    missing = sorted(v for v in used if f"`{v}`" not in block)
    assert not missing, f"README's environment table lacks: {missing}"
