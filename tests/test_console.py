"""The service's console: one line for a finished year, zone-local log times, human durations, ports, SIGTERM."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import FixedClock
from scheduler.console import ZoneFormatter, human_duration
from scheduler.runner import Runner
from scheduler.store import SQLiteStore
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("delta", "en", "ru"),
    [
        (timedelta(hours=54109), "6 years", "6 лет"),
        (timedelta(days=800), "2 years", "2 года"),
        (timedelta(days=370), "12 months", "12 месяцев"),
        (timedelta(hours=26), "26 hours", "26 часов"),
        (timedelta(hours=6), "6 hours", "6 часов"),
        (timedelta(hours=21), "21 hours", "21 час"),
        (timedelta(minutes=10), "10 minutes", "10 минут"),
    ],
)
def test_durations_as_people_say_them(delta, en, ru):
    assert human_duration(delta, "en") == en
    assert human_duration(delta, "ru") == ru


def test_log_times_are_in_the_projects_zone():
    record = logging.LogRecord("cyclogram.run", logging.INFO, __file__, 1, "action=x", None, None)
    record.created = datetime(2020, 9, 11, 7, 0, tzinfo=UTC).timestamp()
    line = ZoneFormatter(ZoneInfo("Europe/Moscow")).format(record)
    assert line.startswith("2020-09-11T10:00:00+0300 INFO cyclogram.run action=x")


def test_after_a_finished_year_the_first_screen_says_one_line(config_copy, tmp_path, caplog):
    store = SQLiteStore(tmp_path / "var" / "state.db")
    lines: list[str] = []
    runner = Runner(
        config_copy, store, FixedClock(datetime(2021, 9, 10, 9, 0, tzinfo=UTC)), transport=None,
        echo=lines.append,
    )  # fmt: skip
    runner.service.load()
    with caplog.at_level(logging.INFO, logger="cyclogram"):
        actions = runner.catch_up()
    missed = [a for a in actions if a.what == "missed"]
    assert len(missed) > 20
    assert lines == [f"{len(missed)} past mailings were not sent; `cyclogram plan` shows them."]
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not any(m.startswith("action=missed ") for m in info)  # not a line each
    assert f"action=missed-summary count={len(missed)}" in info
    store.close()


def test_a_long_downtime_reads_in_years(config_copy, tmp_path):
    from scheduler.service import Service

    store = SQLiteStore(tmp_path / "var" / "state.db")
    service = Service(config_copy, store, FixedClock(datetime(2026, 11, 28, 9, 0, tzinfo=UTC)))
    service.load()
    details = [a.detail for a in service.due(catching_up=True) if a.what == "missed"]
    assert details and all(" h " not in d for d in details)
    summary = [d for d in details if "catch-up window" in d]
    assert all(re.match(r"\d+ years late", d) for d in summary), summary
    store.close()


def _env(config: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config), CYCLOGRAM_STATE=str(state), PYTHONUNBUFFERED="1",
               CYCLOGRAM_MAILDIR=str(state / "mail"))  # fmt: skip
    return env


@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_taken_port_is_one_line_naming_it(config_copy, tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "cli.py", "--now", "2020-09-01T10:00+03:00", command, "--port", str(port)],
            cwd=ROOT, env=_env(config_copy, tmp_path / "var"), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"port {port}" in errors[0] and "--port" in errors[0]


def test_serve_exits_0_on_sigterm_and_logs_in_the_projects_zone(config_copy, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "serve", "--port", "0"],
        cwd=ROOT, env=_env(config_copy, tmp_path / "var"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Serving "), first
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Stopped." in out


def test_run_logs_in_the_projects_zone(config_copy, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "--now", "2020-09-11T10:00+03:00", "run", "--no-serve"],
        cwd=ROOT, env=_env(config_copy, tmp_path / "var"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the first screen: the service is up
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    stamped = [
        line for line in err.splitlines() if re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ", line)
    ]
    assert stamped and all(line[19:24] == "+0300" for line in stamped), err
