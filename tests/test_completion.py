"""Shell completion: commands, kinds, meeting, event and school ids; a broken configuration completes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

import cli
from scheduler.completion import complete_kinds, complete_schools, complete_targets
from tests.conftest import EXAMPLE, ROOT


def _ctx(config: Path, **params: str) -> click.Context:
    root = click.Context(cli.main, info_name="cyclogram")
    root.params = {"config": config}
    ctx = click.Context(cli.send, parent=root, info_name="send")
    ctx.params = dict(params)
    return ctx


def test_the_functions():
    assert complete_kinds(None, None, "a") == ["agenda", "action_reminder"]
    assert complete_targets(_ctx(EXAMPLE, kind="invitation"), None, "") == [
        "heads-2020-09", "network-seminar-2021-01", "summing-up-2021-05",
    ]  # fmt: skip
    events = complete_targets(_ctx(EXAMPLE, kind="event_reminder"), None, "")
    assert "consultations" in events and "team-passports" in events  # approved in minutes, too
    assert complete_schools(_ctx(EXAMPLE), None, "sch") == ["school-1", "school-2", "school-37"]


def test_a_broken_configuration_completes_nothing_and_says_nothing(tmp_path, capsys):
    broken = tmp_path / "config"
    broken.mkdir()
    (broken / "project.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    assert complete_targets(_ctx(broken, kind="invitation"), None, "") == []
    assert complete_schools(_ctx(tmp_path / "missing"), None, "") == []
    assert capsys.readouterr() == ("", "")


def _complete(words: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    if config is not None:
        env["CYCLOGRAM_CONFIG"] = str(config)
    parts = words.split(" ")
    env.update(_CYCLOGRAM_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    return subprocess.run(
        [sys.executable, "cli.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _values(out: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("cyclogram pl", ["plan"]),
        ("cyclogram send rem", ["reminder"]),
        ("cyclogram send invitation he", ["heads-2020-09"]),
        ("cyclogram preview event_reminder cons", ["consultations"]),
        ("cyclogram send invitation heads-2020-09 --only gym", ["gymnasium-3"]),
        ("cyclogram preview agenda heads-2020-09 --school lyc", ["lyceum-86"]),
    ],
)
def test_through_the_shell_protocol(words, expected):
    out = _complete(words, EXAMPLE)
    assert out.returncode == 0, out.stderr
    assert _values(out) == expected


def test_the_config_option_on_the_line_is_read(tmp_path):
    out = _complete(f"cyclogram --config {EXAMPLE} send invitation sum", config=tmp_path / "nothing")
    assert _values(out) == ["summing-up-2021-05"]


def test_through_the_shell_protocol_a_broken_configuration(tmp_path):
    (tmp_path / "project.yaml").write_text(": : :\n", encoding="utf-8")
    out = _complete("cyclogram send invitation ", tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "" and out.stderr == ""
