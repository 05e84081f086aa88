"""The state from the command line: PostgreSQL for every command, damaged files, backup, restore, migrate."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from scheduler.store import SQLiteStore, open_url
from tests.conftest import EXAMPLE

NOW = "2020-09-11T10:00+03:00"


def _env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(EXAMPLE), CYCLOGRAM_STATE=str(state), **extra)
    return env


def _run(state: Path, *args: str, **extra: str):
    return CliRunner().invoke(main, ["--now", NOW, *args], env=_env(state, **extra), catch_exceptions=False)


# Every command that opens the state, with arguments that would otherwise succeed.
COMMANDS = [
    ["plan"],
    ["feeds", "build", "--out", "{tmp}/feeds"],
    ["feeds", "urls"],
    ["send", "invitation", "heads-2020-09", "--yes"],
    ["send", "invitation", "heads-2020-09", "--dry-run"],
    ["preview", "invitation", "heads-2020-09"],
    ["outbox"],
    ["outbox", "retry"],
    ["state", "backup", "{tmp}/backup.db"],
]


def _args(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


@pytest.mark.parametrize("damage", ["garbage", "empty", "torn"])
def test_a_damaged_state_file_is_a_message_from_every_command(tmp_path, damage):
    state = tmp_path / "var"
    assert _run(state, "send", "invitation", "heads-2020-09", "--yes").exit_code == 0
    db = state / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    elif damage == "empty":
        db.write_bytes(b"")
    else:  # the header survives, the pages after it are overwritten
        data = bytearray(db.read_bytes())
        data[4096:] = os.urandom(len(data) - 4096)
        db.write_bytes(bytes(data))
    before = db.read_bytes()
    for args in COMMANDS:
        result = _run(state, *_args(args, tmp_path))
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output and "sqlite3" not in result.output, result.output
        assert str(db) in result.output and "cyclogram state restore" in result.output, (args, result.output)
        if damage == "empty":
            assert "0 bytes" in result.output
    assert db.read_bytes() == before  # nothing was made afresh over it


def test_backup_and_restore(tmp_path):
    state = tmp_path / "var"
    assert _run(state, "send", "invitation", "heads-2020-09", "--yes").exit_code == 0
    urls = _run(state, "feeds", "urls").output
    backup = tmp_path / "backups" / "state.db"
    done = _run(state, "state", "backup", str(backup))
    assert done.exit_code == 0 and "6 outbox" in done.output, done.output
    (state / "state.db").write_bytes(b"")  # lost
    assert _run(state, "outbox").exit_code == 1
    restored = _run(state, "state", "restore", str(backup), "--yes")
    assert restored.exit_code == 0, restored.output
    assert _run(state, "feeds", "urls").output == urls  # the same secret: every private URL still works
    again = _run(state, "send", "invitation", "heads-2020-09", "--yes")
    assert "sent 0, failed 0, skipped 6" in again.output  # the record of what was sent came back


def test_restore_refuses_what_is_not_a_state_file(tmp_path):
    bad = tmp_path / "notes.db"
    sqlite3.connect(bad).execute("CREATE TABLE notes (x)").connection.commit()
    result = _run(tmp_path / "var", "state", "restore", str(bad), "--yes")
    assert result.exit_code == 1 and "not a cyclogram state store" in result.output
    missing = _run(tmp_path / "var", "state", "restore", str(tmp_path / "nope.db"), "--yes")
    assert missing.exit_code == 1 and "no such backup file" in missing.output
    assert not (tmp_path / "var" / "state.db").exists()


def test_restore_is_refused_while_a_service_delivers(tmp_path):
    state = tmp_path / "var"
    assert _run(state, "send", "invitation", "heads-2020-09", "--yes").exit_code == 0
    assert _run(state, "state", "backup", str(tmp_path / "b.db")).exit_code == 0
    store = SQLiteStore(state / "state.db")
    with store.delivery_lease() as mine:
        assert mine
        result = _run(state, "state", "restore", str(tmp_path / "b.db"), "--yes")
    store.close()
    assert result.exit_code == 1 and "stop it, then restore" in result.output


def test_every_command_works_on_postgresql(tmp_path, pg_url):
    state = tmp_path / "var"
    env = {"CYCLOGRAM_DATABASE_URL": pg_url}
    first = _run(state, "send", "invitation", "heads-2020-09", "--yes", **env)
    assert first.exit_code == 0 and "sent 6, failed 0, skipped 0" in first.output, first.output
    assert not (state / "state.db").exists()  # the state is in PostgreSQL
    second = _run(state, "send", "invitation", "heads-2020-09", "--yes", **env)
    assert "sent 0, failed 0, skipped 6" in second.output
    assert "sent: 6" in _run(state, "outbox", **env).output
    assert "sent" in _run(state, "plan", **env).output
    built = _run(state, "feeds", "build", "--out", str(tmp_path / "feeds"), **env)
    assert built.exit_code == 0, built.output
    urls = _run(state, "feeds", "urls", **env)
    assert urls.exit_code == 0 and urls.output == _run(state, "--database", pg_url, "feeds", "urls").output
    assert _run(state, "preview", "invitation", "heads-2020-09", **env).exit_code == 0
    assert _run(state, "state", "backup", str(tmp_path / "b.db"), **env).exit_code == 0
    restored = _run(state, "state", "restore", str(tmp_path / "b.db"), "--yes", **env)
    assert restored.exit_code == 0 and "6 outbox" in restored.output
    assert (
        "sent 0, failed 0, skipped 6"
        in _run(state, "send", "invitation", "heads-2020-09", "--yes", **env).output
    )
    retried = _run(state, "outbox", "retry", **env)
    assert retried.exit_code == 0 and "0 failed message(s) queued again" in retried.output
    assert _run(state, "feeds", "rotate-secret", "--yes", **env).exit_code == 0
    assert _run(state, "feeds", "urls", **env).output != urls.output  # the new secret, in the database


def test_a_wrong_database_url_is_a_message_without_the_password(tmp_path, pg_base):
    bad = "postgresql://cyclogram:hunter2@127.0.0.1:1/nowhere?connect_timeout=2"
    result = _run(tmp_path / "var", "outbox", CYCLOGRAM_DATABASE_URL=bad)
    assert result.exit_code == 1 and "cannot connect to PostgreSQL" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output
    odd = _run(tmp_path / "var", "--database", "mysql://x", "outbox")
    assert odd.exit_code == 1 and "not a state store URL" in odd.output


def test_migrate_to_postgresql_and_back(tmp_path, pg_url):
    state = tmp_path / "var"
    assert _run(state, "send", "invitation", "heads-2020-09", "--yes").exit_code == 0
    assert _run(state, "send", "reminder", "heads-2020-09", "--yes", "--only", "school-1").exit_code == 0
    source = open_url(f"sqlite:{state / 'state.db'}")
    before = list(source.dump())
    source.close()
    moved = _run(state, "state", "migrate", "--from", f"sqlite:{state / 'state.db'}", "--to", pg_url)
    assert moved.exit_code == 0, moved.output
    assert "hunter" not in moved.output and "8 outbox" in moved.output
    pg = open_url(pg_url)
    assert list(pg.dump()) == before
    pg.close()
    # The service on PostgreSQL knows what was sent: nothing goes twice.
    again = _run(state, "send", "invitation", "heads-2020-09", "--yes", CYCLOGRAM_DATABASE_URL=pg_url)
    assert "sent 0, failed 0, skipped 6" in again.output
    refused = _run(state, "state", "migrate", "--from", f"sqlite:{state / 'state.db'}", "--to", pg_url)
    assert refused.exit_code == 1 and "already holds state" in refused.output
    back = _run(state, "state", "migrate", "--from", pg_url, "--to", f"sqlite:{tmp_path / 'back.db'}")
    assert back.exit_code == 0, back.output
    copy = SQLiteStore(tmp_path / "back.db")
    assert [r for r in copy.dump() if r[0] != "mailings"] == [r for r in before if r[0] != "mailings"]
    copy.close()


def test_run_stops_delivering_loudly_when_its_state_file_vanishes(tmp_path):
    """The state folder deleted under a running service: an ERROR naming the file, nothing made afresh."""
    import selectors
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    state = tmp_path / "var"
    env = _env(state, CYCLOGRAM_SMTP_RETRY_SECONDS="1")
    env.pop("CYCLOGRAM_SMTP_HOST", None)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "--now", "2020-09-01T10:00+03:00", "run", "--no-serve"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)

    def wait_for(text: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = proc.stdout.readline().decode("utf-8", "replace")
                if not line:
                    return False
                seen.append(line)
                if text in line:
                    return True
        return False

    try:
        assert wait_for("still to come", 60), "".join(seen)
        shutil.rmtree(state)
        # The outbox worker's next claim (it polls every few seconds) finds the file gone.
        assert wait_for("deleted while cyclogram was running", 60), "".join(seen)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        seen.append(out.decode("utf-8", "replace"))
    text = "".join(seen)
    assert "ERROR" in text and str(state / "state.db") in text and "Traceback" not in text
    assert not (state / "state.db").exists()  # never a fresh store in its place
