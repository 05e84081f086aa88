"""The mail commands end to end: Maildir by default, a real SMTP server, a kill mid-delivery, outbox."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

from click.testing import CliRunner

from cli import main
from tests.conftest import EXAMPLE, ROOT
from tests.smtp_server import Recorder, SMTPServer

NOW = "2020-09-11T10:00+03:00"
HEADS = {
    "head@school1.example.org", "deputy@school1.example.org", "head@school2.example.org",
    "head@gym3.example.org", "head@lyceum86.example.org", "head@school37.example.org",
}  # fmt: skip


def _env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(EXAMPLE), CYCLOGRAM_STATE=str(state), **extra)
    return env


def _run(state: Path, *args: str, **extra: str):
    return CliRunner().invoke(main, ["--now", NOW, *args], env=_env(state, **extra), catch_exceptions=False)


def test_send_into_maildir_once(tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLOGRAM_SMTP_HOST", raising=False)
    monkeypatch.chdir(tmp_path)
    first = _run(tmp_path / "var", "send", "invitation", "heads-2020-09", "--yes")
    assert first.exit_code == 0, first.output
    assert "Maildir" in first.output and "sent 6, failed 0, skipped 0" in first.output
    box = mailbox.Maildir(tmp_path / "var" / "mail", create=False)
    got = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
    assert sorted(str(m["To"].addresses[0].addr_spec) for m in got) == sorted(HEADS)
    assert all(any(p.get_content_type() == "text/calendar" for p in m.walk()) for m in got)
    second = _run(tmp_path / "var", "send", "invitation", "heads-2020-09", "--yes")
    assert second.exit_code == 0 and "sent 0, failed 0, skipped 6" in second.output
    assert len(box) == 6


def test_wrong_targets_are_messages_not_tracebacks(tmp_path):
    for args, text, code in [
        (["send", "invitation", "nope", "--yes"], "no meeting 'nope'", 1),
        (["send", "postcard", "heads-2020-09", "--yes"], "unknown mailing kind", 1),
        (["preview", "invitation", "heads-2020-09", "--school", "school-99"], "neither a school", 2),
    ]:
        result = _run(tmp_path / "var", *args)
        assert result.exit_code == code and text in result.output and "Traceback" not in result.output


def test_preview_dry_run_and_outbox(tmp_path):
    text = _run(tmp_path / "var", "preview", "invitation", "heads-2020-09", "--school", "school-37")
    assert text.exit_code == 0 and "Dear Ms Smith," in text.output
    eml = _run(tmp_path / "var", "preview", "agenda", "heads-2020-09", "--format", "eml")
    assert "text/calendar" in eml.output
    dry = _run(tmp_path / "var", "send", "reminder", "heads-2020-09", "--dry-run")
    assert "6 to send" in dry.output
    out = _run(tmp_path / "var", "outbox", "--json")
    assert json.loads(out.output)["counts"]["sent"] == 0


def test_rejected_address_fails_then_retry(tmp_path):
    rec = Recorder(reject={"head@school2.example.org"})
    with SMTPServer(rec) as server:
        smtp = {"CYCLOGRAM_SMTP_HOST": "127.0.0.1", "CYCLOGRAM_SMTP_PORT": str(server.port)}
        result = _run(tmp_path / "var", "send", "summary", "heads-2020-09", "--yes", **smtp)
        assert result.exit_code == 1
        assert "failed: head@school2.example.org: 550" in result.output
        out = _run(tmp_path / "var", "outbox", **smtp)
        assert "failed: 1" in out.output and "550 5.1.1" in out.output
        rec.reject.clear()
        retry = _run(tmp_path / "var", "outbox", "retry", **smtp)
        assert retry.exit_code == 0 and "sent 1" in retry.output
        probe = _run(tmp_path / "var", "smtp-test", "--to", "me@example.org", **smtp)
        assert probe.exit_code == 0
    assert {r: len(v) for r, v in rec.by_recipient().items() if r in HEADS} == dict.fromkeys(HEADS, 1)


def test_killed_mid_delivery_then_rerun_gives_each_one_copy(tmp_path):
    rec = Recorder(gate_at=3)
    with SMTPServer(rec) as server:
        env = _env(tmp_path / "var", CYCLOGRAM_SMTP_HOST="127.0.0.1", CYCLOGRAM_SMTP_PORT=str(server.port),
                   CYCLOGRAM_SMTP_CONCURRENCY="1")  # fmt: skip
        cmd = [
            sys.executable,
            str(ROOT / "cli.py"),
            "--now",
            NOW,
            "send",
            "invitation",
            "heads-2020-09",
            "--yes",
        ]
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert rec.gate_reached.wait(60), "the send never reached the third message"
            proc.send_signal(signal.SIGKILL)  # mid-transaction: DATA sent, no reply yet
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert len(rec.accepted) == 2
        server.release()
        rec.gate_at = None
        again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "skipped 6" in again.stdout
    assert {r: len(v) for r, v in rec.by_recipient().items()} == dict.fromkeys(HEADS, 1)
