"""Progress of long work: a bar on a terminal, a line every few seconds elsewhere, stdout left clean."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys

from scheduler.progress import BarProgress, LineProgress, NoProgress, progress_for
from scheduler.translation import use_language
from tests.conftest import EXAMPLE, ROOT


class Ticks:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_every_few_seconds_with_rate_and_time_left():
    clock, out = Ticks(), io.StringIO()
    progress = LineProgress("Sending", out, clock=clock, interval=5)
    progress.start(100)
    for _ in range(10):
        clock.t += 0.4
        progress.advance()
    assert out.getvalue() == ""  # four seconds: nothing yet
    clock.t += 1.0
    progress.advance()
    assert out.getvalue().splitlines() == ["Sending: 11/100 (2.2/s, 0:40 left)"]
    clock.t += 1.0
    progress.advance()
    assert len(out.getvalue().splitlines()) == 1  # the next one five seconds later
    progress.update(100)
    progress.finish()
    assert out.getvalue().splitlines()[-1].startswith("Sending: 100/100")


def test_short_work_off_a_terminal_says_nothing():
    out = io.StringIO()
    progress = LineProgress("Sending", out, clock=Ticks())
    progress.start(3)
    progress.advance(3)
    progress.finish()
    assert out.getvalue() == ""


def test_a_bar_on_a_terminal_redraws_in_place_in_the_console_language():
    clock, out = Ticks(), Terminal()
    progress = progress_for("Sending", out)
    assert isinstance(progress, BarProgress)
    progress.clock = clock
    progress.start(4)
    for _ in range(4):
        clock.t += 0.5
        progress.advance()
    progress.finish()
    text = out.getvalue()
    assert text.count("\r") == 6 and text.endswith("\n")
    assert "Sending [" + "#" * 28 + "] 4/4  2.0/s  0:00 left" in text
    use_language("ru")
    try:
        again = Terminal()
        bar = BarProgress("Отправка", again, clock=clock)
        bar.start(2)
        clock.t += 1
        bar.advance()
        assert "1/2  1.0/с  осталось 0:01" in again.getvalue()
    finally:
        use_language(None, chosen=False)


def test_no_progress_and_the_choice_off_a_terminal():
    assert isinstance(progress_for("x", io.StringIO()), LineProgress)
    quiet = NoProgress()
    quiet.start(3)
    quiet.advance()
    quiet.update(3)
    quiet.finish()


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(EXAMPLE), CYCLOGRAM_STATE=str(tmp_path / "var"))
    return env


def test_send_on_a_terminal_draws_a_bar_on_stderr(tmp_path):
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "--now", "2020-09-11T10:00+03:00", "send", "invitation",
         "heads-2020-09", "--yes"],
        env=_env(tmp_path), stdout=subprocess.PIPE, stderr=child, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    os.close(child)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout, _ = proc.communicate(timeout=60)
    os.close(main)
    assert proc.returncode == 0, seen
    text = seen.decode()
    assert "\rSending [" in text and "6/6" in text and "/s" in text and "left" in text, text
    assert "\r" not in stdout.decode() and "sent 6, failed 0" in stdout.decode()


def test_simulate_json_off_a_terminal_keeps_stdout_clean(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "simulate", "--from", "2020-09-01", "--to", "2020-10-01", "--json"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["delivered"] > 0
    assert "\r" not in done.stderr and "[#" not in done.stderr
