"""`cyclogram run` as a process: SIGTERM in the middle of a delivery loses nothing and sends nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.smtp_server import Recorder, SMTPServer

ROOT = Path(__file__).resolve().parent.parent


def _env(port: int, config: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(
        CYCLOGRAM_CONFIG=str(config),
        CYCLOGRAM_STATE=str(state),
        CYCLOGRAM_SMTP_HOST="127.0.0.1",
        CYCLOGRAM_SMTP_PORT=str(port),
        CYCLOGRAM_SMTP_SECURITY="none",
        CYCLOGRAM_SMTP_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def test_sigterm_during_delivery_exits_cleanly_and_the_rest_goes_out_once(config_copy, tmp_path):
    state = tmp_path / "var"
    recorder = Recorder(gate_at=3)  # the third DATA hangs until we let it go
    with SMTPServer(recorder) as server:
        env = _env(server.port, config_copy, state)
        proc = subprocess.Popen(
            [sys.executable, "cli.py", "--now", "2020-09-11T10:00+03:00", "run", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert recorder.gate_reached.wait(60), "the service never reached the third message"
            proc.send_signal(signal.SIGTERM)
            server.release()  # the transaction in flight completes (with a 451: to be retried)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "Stopped. Delivered 2 message(s)" in out
        assert "action=shutdown" in err

        # The next run delivers the rest: the invitation's rows are still in the outbox, queued.
        again = subprocess.run(
            [sys.executable, "cli.py", "--now", "2020-09-11T10:05+03:00", "send", "invitation", "heads-2020-09",
             "--yes"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
    copies = Counter(a.recipients[0] for a in recorder.accepted)
    assert len(copies) == 6 and set(copies.values()) == {1}


def test_send_while_the_service_delivers_leaves_the_rows_to_it(config_copy, tmp_path):
    from click.testing import CliRunner

    import cli
    from scheduler.store import SQLiteStore

    state = tmp_path / "var"
    service_view = SQLiteStore(state / "state.db")
    env = {"CYCLOGRAM_MAILDIR": str(tmp_path / "mail"), "CYCLOGRAM_SMTP_HOST": ""}
    with service_view.delivery_lease() as held:
        assert held
        result = CliRunner().invoke(
            cli.main,
            ["--config", str(config_copy), "--state", str(state), "--now", "2020-09-11T10:00+03:00",
             "send", "invitation", "heads-2020-09", "--yes"],
            env=env,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "another cyclogram process" in result.output
    assert service_view.outbox_counts()["queued"] == 6  # nothing recovered from under the service
    assert not (tmp_path / "mail").exists() or not any((tmp_path / "mail" / "new").iterdir())
    service_view.close()


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    """Poll a condition the process should bring about; fail with its output if it dies or never does."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the service exited before {what}: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}: {proc.communicate()[1]}")


def test_an_edit_while_running_sends_the_update_by_itself(config_copy, tmp_path):
    import email
    from email import policy

    maildir = tmp_path / "mail"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config_copy), CYCLOGRAM_STATE=str(tmp_path / "var"),
               CYCLOGRAM_MAILDIR=str(maildir), PYTHONUNBUFFERED="1")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "--now", "2020-09-11T10:30+03:00", "run", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def delivered() -> list[email.message.EmailMessage]:
        new = maildir / "new"
        files = sorted(new.iterdir()) if new.is_dir() else []
        return [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]

    try:
        _wait_for(lambda: len(delivered()) == 6, proc, "the invitation caught up after downtime")
        seed = config_copy / "meetings" / "2020-09-25-heads.yaml"
        text = seed.read_text(encoding="utf-8")
        seed.write_text(text.replace("Б. Октябрьская, д.44/60", "ул. Советская, д.1"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: len(delivered()) == 12, proc, "the update after the edit")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    kinds = Counter(m["X-Cyclogram-Kind"] for m in delivered())
    assert kinds == {"invitation": 6, "update": 6}
    update = next(m for m in delivered() if m["X-Cyclogram-Kind"] == "update")
    body = update.get_body(("plain",)).get_content()
    assert "Б. Октябрьская, д.44/60" in body and "ул. Советская, д.1" in body
    assert "action=update" in err


def test_a_zero_concurrency_is_refused_not_mended(config_copy, tmp_path):
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(
        cli.main,
        ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", "2020-09-11T10:00+03:00",
         "send", "invitation", "heads-2020-09", "--yes"],
        env={"CYCLOGRAM_SMTP_CONCURRENCY": "0", "CYCLOGRAM_MAILDIR": str(tmp_path / "mail")},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "CYCLOGRAM_SMTP_CONCURRENCY must be a positive whole number" in result.output
    assert "Traceback" not in result.output
    from scheduler.store import SQLiteStore

    store = SQLiteStore(tmp_path / "var" / "state.db")
    assert store.outbox_counts()["queued"] == 0  # refused before anything was queued
    store.close()


def test_a_mailing_that_fails_half_way_queues_nothing(config_copy, tmp_path):
    from click.testing import CliRunner

    import cli
    from scheduler.store import SQLiteStore

    # Only the English-speaking school (the last recipient) hits the broken template.
    broken = config_copy / "templates" / "mail" / "en"
    broken.mkdir(parents=True)
    (broken / "invitation.subject.txt").write_text("{{ meeting.titel }}\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli.main,
        ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", "2020-09-11T10:00+03:00",
         "send", "invitation", "heads-2020-09", "--yes"],
        env={"CYCLOGRAM_MAILDIR": str(tmp_path / "mail")},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "invitation.subject.txt:1" in result.output and "titel" in result.output
    store = SQLiteStore(tmp_path / "var" / "state.db")
    assert store.outbox() == []  # the five Russian messages rendered before it were not queued either
    assert store.mailing_states() == {}
    store.close()


def test_the_service_waits_for_a_send_that_holds_the_outbox(config_copy, tmp_path):
    from scheduler.store import SQLiteStore

    maildir, log = tmp_path / "mail", tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config_copy), CYCLOGRAM_STATE=str(tmp_path / "var"),
               CYCLOGRAM_MAILDIR=str(maildir), PYTHONUNBUFFERED="1")  # fmt: skip
    other = SQLiteStore(tmp_path / "var" / "state.db")  # stands for a `cyclogram send` in progress
    lease = other.delivery_lease()
    assert lease.__enter__()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "cli.py", "--now", "2020-09-11T10:30+03:00", "run", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True,
        )  # fmt: skip
        try:
            _wait_for(
                lambda: "action=outbox-wait" in log.read_text(), proc, "the service to find the outbox busy"
            )
            assert not (maildir / "new").exists() or not any((maildir / "new").iterdir())
            lease.__exit__(None, None, None)
            _wait_for(lambda: len(list((maildir / "new").glob("*"))) == 6, proc, "delivery after the release")
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    other.close()
    assert proc.returncode == 0, log.read_text()


# --- a service that cannot deliver must say so, and recover (issue 10) ---------------------------------------


def _lines(stream, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_drill_a_refused_login_under_run_is_loud_then_fixed_delivers_everything_once(config_copy, tmp_path):
    import threading
    import time
    import urllib.error
    import urllib.request

    recorder = Recorder()
    with SMTPServer(recorder, credentials=("user", "rotated"), auth_require_tls=False) as server:
        env = _env(server.port, config_copy, tmp_path / "var")
        env.update(CYCLOGRAM_SMTP_USERNAME="user", CYCLOGRAM_SMTP_PASSWORD="s3cret",
                   CYCLOGRAM_SMTP_ALLOW_PLAIN_AUTH="1", CYCLOGRAM_SMTP_RETRY_SECONDS="1")  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "cli.py", "--now", "2020-09-11T10:00+03:00", "run", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out: list[str] = []
        err: list[str] = []
        for stream, sink in ((proc.stdout, out), (proc.stderr, err)):
            threading.Thread(target=_lines, args=(stream, sink), daemon=True).start()

        def health() -> tuple[int, str]:
            port = next(line.split(":")[-1].strip("/\n") for line in out if "Serving the feeds" in line)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        try:
            started = time.monotonic()
            _wait_for(lambda: any("ERROR" in e and "535" in e for e in err), proc, "an ERROR line", 30)
            assert time.monotonic() - started < 20
            _wait_for(lambda: any("Serving the feeds" in line for line in out), proc, "the feed server")
            status, text = health()
            assert status == 503 and "refused the login" in text and "535" in text
            assert "s3cret" not in "".join(err) + text  # the password never in a log line or an answer
            outbox = subprocess.run([sys.executable, "cli.py", "outbox"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=60)  # fmt: skip
            assert outbox.stdout.startswith("Delivery is stopped: the SMTP server refused the login: 535")

            server.credentials = ("user", "s3cret")  # the mailbox's password is put right
            proc.send_signal(signal.SIGHUP)  # try again at once rather than after the backoff
            _wait_for(lambda: len(recorder.accepted) == 6, proc, "delivery after the fix")
            _wait_for(lambda: health()[0] == 200, proc, "/healthz to recover")
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, "".join(err)
    assert "Traceback" not in "".join(err)
    copies = Counter(a.recipients[0] for a in recorder.accepted)
    assert len(copies) == 6 and set(copies.values()) == {1}


def test_jobs_fire_on_the_services_clock_not_the_wall_clock(config_copy, tmp_path):
    import asyncio
    from datetime import UTC, datetime, timedelta

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from scheduler.clock import FixedClock
    from scheduler.runner import Runner
    from scheduler.store import SQLiteStore

    shifted = FixedClock(datetime(2020, 9, 11, 6, 59, 57, tzinfo=UTC))  # 3 s before the invitation

    async def scheduled() -> list[tuple[str, datetime]]:
        runner = Runner(config_dir=config_copy, store=SQLiteStore(tmp_path / "state.db"), clock=shifted,
                        transport=None, watch=False)  # fmt: skip
        runner.service.load()
        runner._scheduler = AsyncIOScheduler(timezone="UTC")
        runner._scheduler.start(paused=True)
        runner._schedule()
        jobs = [(j.id, j.trigger.run_date) for j in runner._scheduler.get_jobs()]
        runner._scheduler.shutdown(wait=False)
        return jobs

    wall = datetime.now(UTC)
    jobs = dict(asyncio.run(scheduled()))
    invitation = jobs["heads-2020-09/invitation"]
    assert timedelta(seconds=2) < invitation - wall < timedelta(seconds=10)  # in 3 s, not in 2020
    agenda = jobs["heads-2020-09/agenda"]  # eleven days later on the shifted clock: as far on the wall
    assert abs((agenda - invitation) - timedelta(days=11)) < timedelta(seconds=2)


def test_a_run_on_a_shifted_clock_sends_when_its_time_comes_not_at_start(config_copy, tmp_path):
    import time

    maildir = tmp_path / "mail"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config_copy), CYCLOGRAM_STATE=str(tmp_path / "var"),
               CYCLOGRAM_MAILDIR=str(maildir), PYTHONUNBUFFERED="1")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "--now", "2020-09-11T09:59:56+03:00", "run", "--no-serve"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = time.monotonic()
    try:
        _wait_for(lambda: len(list((maildir / "new").glob("*"))) == 6, proc, "the invitation at its time")
        assert time.monotonic() - started > 3  # at 10:00 on the shifted clock, not at start
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.count("action=queued") == 1  # the job fired once, it did not spin


def test_an_edit_that_breaks_while_being_applied_keeps_the_last_good_model(config_copy, tmp_path, caplog):
    import asyncio

    from scheduler.clock import FixedClock
    from scheduler.runner import Runner
    from scheduler.store import SQLiteStore

    class Fragile:
        """A feed server that fails on the next model, as a name with a line break used to make it."""

        broken = False

        def update(self, project):
            if self.broken:
                raise ValueError("Line break in a name")

    async def scenario() -> Runner:
        runner = Runner(config_dir=config_copy, store=SQLiteStore(tmp_path / "state.db"),
                        clock=FixedClock(datetime_(2020, 9, 1)), transport=None, server=Fragile(), watch=False)  # fmt: skip
        runner.service.load()
        good = runner.service.project
        project = config_copy / "project.yaml"
        text = project.read_text(encoding="utf-8")
        runner.server.broken = True
        project.write_text(text.replace("Проектное управление", "Сломано"), encoding="utf-8")
        runner._reload()  # must not raise
        assert runner.service.project == good
        runner.server.broken = False
        project.write_text(text.replace("Проектное управление", "Исправлено"), encoding="utf-8")
        runner._reload()
        return runner

    runner = asyncio.run(scenario())
    assert runner.service.project.settings.short_name == "Исправлено"
    assert any(r.levelname == "ERROR" and "reload" in r.getMessage() for r in caplog.records)


def datetime_(year: int, month: int, day: int):
    from datetime import UTC, datetime

    return datetime(year, month, day, tzinfo=UTC)


def test_a_reload_that_trips_the_loader_anywhere_is_refused_loudly(
    config_copy, tmp_path, caplog, monkeypatch
):
    from scheduler import service as service_module
    from scheduler.clock import FixedClock
    from scheduler.service import Service
    from scheduler.store import SQLiteStore

    svc = Service(config_copy, SQLiteStore(tmp_path / "state.db"), FixedClock(datetime_(2020, 9, 1)))
    svc.load()

    def boom(directory):
        raise ValueError("day is out of range for month")

    monkeypatch.setattr(service_module, "validate_all", boom)
    assert svc.reload() is False
    assert svc.loaded is not None
    assert any(r.levelname == "ERROR" and "rejected" in r.getMessage() for r in caplog.records)
