"""Every command over hostile configurations and environments: a clear message and a sensible exit, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from scheduler.store import SQLiteStore
from tests.smtp_server import Recorder, SMTPServer

ROOT = Path(__file__).resolve().parent.parent
NOW = "2020-09-11T10:00+03:00"
SEED = "config/meetings/2020-09-25-heads.yaml"


def _replace(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(config: Path) -> None:
        path = config / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


def _write(relative: str, data: bytes | str) -> Callable[[Path], None]:
    def edit(config: Path) -> None:
        path = config / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.is_file():
            path.unlink()
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")

    return edit


def _symlink(relative: str, target: str) -> Callable[[Path], None]:
    def edit(config: Path) -> None:
        path = config / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)

    return edit


def _remove(relative: str) -> Callable[[Path], None]:
    def edit(config: Path) -> None:
        import shutil

        path = config / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return edit


PAYLOAD = "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}"
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(12)
)

# name -> (edit of a copy of the example, exit codes validate may give: 2 where the input is plainly wrong)
HOSTILE: dict[str, tuple[Callable[[Path], None], set[int]]] = {
    "bad-yaml": (_write("project.yaml", "name: [unclosed\n  short_name: {\n"), {2}),
    "binary-file": (_write("participants.yaml", bytes(range(256)) * 8), {2}),
    "latin1-file": (_write("cyclogram.yaml", "events: []\n# caf\xe9\n".encode("latin-1")), {0, 2}),
    "nul-byte-in-name": (_replace("participants.yaml", "Средняя школа № 2", "Средняя\x00школа"), {0, 2}),
    "line-break-in-name": (_replace("participants.yaml", '"Средняя школа № 2"', '"Средняя\\nшкола"'), {0, 2}),
    "u2028-in-team": (_replace("participants.yaml", "Сетевая команда", "Сетевая\u2028команда"), {0, 2}),
    "huge-title": (_replace(SEED[7:], "title: ", "title: " + "Я" * 20_000 + " "), {0, 2}),
    "impossible-date": (_replace(SEED[7:], "start: 2020-09-25 10:00", "start: 2021-02-30"), {2}),
    "impossible-datetime": (
        _replace(SEED[7:], "start: 2020-09-25 10:00", "start: 2021-02-30 10:00:00"),
        {2},
    ),
    "unknown-reference": (_replace("participants.yaml", "schools: [school-1,", "schools: [nowhere,"), {2}),
    "meeting-symlink-to-passwd": (_symlink("meetings/passwd.yaml", "/etc/passwd"), {2}),
    "template-sandbox-escape": (_write("templates/mail/ru/invitation.subject.txt", PAYLOAD), {2}),
    "template-symlink-to-passwd": (_symlink("templates/mail/ru/invitation.txt", "/etc/passwd"), {2}),
    "index-template-escape": (_write("templates/web/index.html", PAYLOAD), {2}),
    "ics-template-escape": (_write("templates/ics/ru/meeting.txt", PAYLOAD), {0, 1, 2}),
    "template-binary": (_write("templates/mail/ru/invitation.html", b"\xff\xfe\x00\x01"), {2}),
    "empty-project": (_write("project.yaml", ""), {2}),
    "empty-meeting": (_write("meetings/empty.yaml", ""), {0, 2}),
    "yaml-laughs": (_write("cyclogram.yaml", LAUGHS), {2}),
    "missing-meetings-folder": (_remove("meetings"), {0, 2}),
    "missing-project": (_remove("project.yaml"), {2}),
    "project-is-a-folder": (lambda c: (_remove("project.yaml")(c), (c / "project.yaml").mkdir()), {2}),
    "huge-school-year": (_replace("project.yaml", "start: 2020", "start: 99999999999999999999"), {2}),
}

COMMANDS: list[list[str]] = [
    ["validate"],
    ["plan"],
    ["plan", "--json"],
    ["send", "invitation", "heads-2020-09", "--dry-run"],
    ["send", "invitation", "heads-2020-09", "--yes"],
    ["preview", "invitation", "heads-2020-09"],
    ["preview", "invitation", "heads-2020-09", "--format", "html"],
    ["outbox"],
    ["outbox", "--json"],
    ["outbox", "retry"],
    ["feeds", "build", "--out", "{tmp}/feeds"],
    ["feeds", "urls"],
    ["simulate", "--from", "2020-09-01", "--to", "2020-10-31"],
    ["smtp-test", "--to", "someone@example.org"],
]


def _clean_env(tmp_path: Path) -> dict[str, str | None]:
    """No setting from the machine running the tests; delivery into a Maildir in the test's folder."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_MAILDIR=str(tmp_path / "mail"))
    return env


def _invoke(args: list[str], env: dict[str, str | None], stdin: str | None = None):
    return CliRunner().invoke(cli.main, args, env=env, input=stdin)


def _problems(result, args: list[str], allowed: set[int]) -> list[str]:
    found = []
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        found.append(f"{args}: raised {type(exc).__name__}: {exc}")
    if "Traceback" in result.output:
        found.append(f"{args}: printed a traceback")
    if "unexpected" in result.output:  # the CLI's last resort: a failure no core code reported clearly
        found.append(f"{args}: {result.output.strip().splitlines()[-1]}")
    if result.exit_code not in allowed:
        found.append(f"{args}: exit {result.exit_code}: {result.output[-300:]}")
    return found


# Configurations the model does not yet refuse with a located message (none left: impossible dates are).
MODEL_PENDING: set[str] = set()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n, marks=pytest.mark.xfail(reason="a located message for impossible dates", strict=False)
        )
        if n in MODEL_PENDING
        else n
        for n in sorted(HOSTILE)
    ],
)
def test_every_command_over_a_hostile_configuration(name, config_copy, tmp_path, monkeypatch):
    edit, validate_codes = HOSTILE[name]
    edit(config_copy)
    monkeypatch.chdir(tmp_path)  # where a template payload would leave its trace
    env = _clean_env(tmp_path)
    base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
    problems: list[str] = []
    for command in COMMANDS:
        args = [a.replace("{tmp}", str(tmp_path)) for a in command]
        result = _invoke(base + args, env)
        allowed = validate_codes if command == ["validate"] else {0, 1, 2}
        problems += _problems(result, args, allowed)
    assert not (tmp_path / "PWNED").exists(), "a template ran a shell command"
    for mail in (tmp_path / "mail" / "new").glob("*") if (tmp_path / "mail" / "new").is_dir() else []:
        assert b"root:x:0:0" not in mail.read_bytes(), "a template mailed /etc/passwd"
    counts = SQLiteStore(tmp_path / "var" / "state.db").outbox_counts() if (tmp_path / "var").is_dir() else {}
    assert counts.get("sending", 0) == 0
    assert not problems, "\n".join(problems)


def test_a_missing_configuration_folder_and_a_file_as_state(tmp_path):
    env = _clean_env(tmp_path)
    (tmp_path / "state-file").write_text("not a folder")
    for args in (
        ["--config", str(tmp_path / "nowhere"), "validate"],
        ["--config", str(tmp_path / "nowhere"), "plan"],
        ["--config", str(ROOT / "config"), "--state", str(tmp_path / "state-file"), "outbox"],
        ["--config", str(ROOT / "config"), "--state", str(tmp_path / "state-file"), "feeds", "urls"],
    ):
        result = _invoke(args, env)
        assert result.exit_code in (1, 2) and not _problems(result, args, {1, 2}), result.output


# --- hostile environments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CYCLOGRAM_SMTP_PORT", "99999"),
        ("CYCLOGRAM_SMTP_PORT", "-1"),
        ("CYCLOGRAM_SMTP_PORT", "abc"),
        ("CYCLOGRAM_SMTP_TIMEOUT", "-5"),
        ("CYCLOGRAM_SMTP_SECURITY", "ssl3"),
        ("CYCLOGRAM_SMTP_ALLOW_PLAIN_AUTH", "perhaps"),
        ("CYCLOGRAM_SMTP_CONCURRENCY", "1e9"),
        ("CYCLOGRAM_SMTP_RETRY_SECONDS", "10000000000000000000000"),
        ("CYCLOGRAM_SMTP_RATE", "-3"),
    ],
)
def test_a_bad_setting_is_named_before_anything_is_queued(variable, value, config_copy, tmp_path):
    env = _clean_env(tmp_path)
    env.update({"CYCLOGRAM_SMTP_HOST": "127.0.0.1", "CYCLOGRAM_SMTP_SECURITY": "none", variable: value})
    base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
    commands = [["send", "invitation", "heads-2020-09", "--yes"], ["outbox", "retry"]]
    if variable not in ("CYCLOGRAM_SMTP_CONCURRENCY", "CYCLOGRAM_SMTP_RETRY_SECONDS", "CYCLOGRAM_SMTP_RATE"):
        commands.append(["smtp-test", "--to", "a@example.org"])  # it delivers one message, no outbox
    for args in commands:
        result = _invoke(base + args, env)
        assert result.exit_code == 1, result.output
        assert variable in result.output and not _problems(result, args, {1}), result.output
    store = SQLiteStore(tmp_path / "var" / "state.db")
    assert store.outbox() == []  # refused before anything was queued
    store.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_send_with_a_refused_login_prints_one_line_and_leaves_nothing_in_sending(config_copy, tmp_path):
    env = _clean_env(tmp_path)
    recorder = Recorder()
    with SMTPServer(recorder, credentials=("user", "right"), auth_require_tls=False) as server:
        env.update(CYCLOGRAM_SMTP_HOST="127.0.0.1", CYCLOGRAM_SMTP_PORT=str(server.port),
                   CYCLOGRAM_SMTP_SECURITY="none", CYCLOGRAM_SMTP_USERNAME="user",
                   CYCLOGRAM_SMTP_PASSWORD="wrong", CYCLOGRAM_SMTP_ALLOW_PLAIN_AUTH="1")  # fmt: skip
        base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
        result = _invoke([*base, "send", "invitation", "heads-2020-09", "--yes"], env)
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert (
            len(errors) == 1
            and "refused the login: 535" in errors[0]
            and "6 message(s) stay queued" in errors[0]
        )
        assert not _problems(result, ["send"], {1}) and "wrong" not in result.output
        outbox = _invoke([*base, "outbox"], env)
        assert outbox.output.startswith("Delivery is stopped: the SMTP server refused the login: 535")
        store = SQLiteStore(tmp_path / "var" / "state.db")
        assert store.outbox_counts().get("sending", 0) == 0 and store.outbox_counts()["queued"] == 6
        store.close()

        server.credentials = ("user", "wrong")  # put right on the server's side: the queue goes out
        again = _invoke([*base, "outbox", "retry"], env)
        assert again.exit_code == 0, again.output
    assert len(recorder.accepted) == 6


def test_the_next_send_says_how_many_messages_were_in_doubt(config_copy, tmp_path):
    env = _clean_env(tmp_path)
    base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
    store = SQLiteStore(tmp_path / "var" / "state.db")
    result = _invoke([*base, "send", "invitation", "heads-2020-09", "--only", "school-1", "--yes"], env)
    assert result.exit_code == 0, result.output
    with store._tx() as db:  # as a process killed in the middle of two transactions leaves them
        db.execute("UPDATE outbox SET status = 'sending'")
    store.close()
    result = _invoke([*base, "send", "invitation", "heads-2020-09", "--yes"], env)
    assert result.exit_code == 0, result.output
    assert "2 message(s) were in doubt after an unclean stop" in result.output


# --- rehearsals (simulate) --------------------------------------------------------------------------------


def test_simulate_never_empties_a_folder_it_did_not_make(config_copy, tmp_path):
    env = _clean_env(tmp_path)
    precious = tmp_path / "Maildir"
    (precious / "cur").mkdir(parents=True)
    (precious / "cur" / "letter-from-mum").write_text("keep me")
    base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
    args = ["simulate", "--from", "2020-09-01", "--to", "2020-09-30"]
    result = _invoke(base + args + ["--maildir", str(precious)], env)
    assert result.exit_code == 1 and "not made by `cyclogram simulate`" in result.output
    assert (precious / "cur" / "letter-from-mum").read_text() == "keep me"

    fresh = tmp_path / "rehearsal"
    delivered = []
    for _ in range(2):  # a folder a rehearsal made is emptied by the next one, not refused
        result = _invoke(base + args + ["--maildir", str(fresh)], env)
        assert result.exit_code == 0, result.output
        delivered.append(len(list((fresh / "new").iterdir())))
    assert delivered[0] == delivered[1] > 0

    other = tmp_path / "other-state"  # a state folder whose simulation/ someone else made
    (other / "simulation").mkdir(parents=True)
    (other / "simulation" / "notes.txt").write_text("mine")
    result = _invoke(["--config", str(config_copy), "--state", str(other), "--now", NOW, *args], env)
    assert result.exit_code == 1 and (other / "simulation" / "notes.txt").read_text() == "mine"


def test_simulate_reaches_nobody_unless_told_and_says_where_first(config_copy, tmp_path):
    env = _clean_env(tmp_path)
    recorder = Recorder()
    with SMTPServer(recorder) as server:
        env.update(CYCLOGRAM_SMTP_HOST="127.0.0.1", CYCLOGRAM_SMTP_PORT=str(server.port),
                   CYCLOGRAM_SMTP_SECURITY="none")  # fmt: skip
        base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
        args = ["simulate", "--from", "2020-09-01", "--to", "2020-09-30"]
        result = _invoke(base + args, env)
        assert result.exit_code == 0, result.output
        rehearsed = len(list((tmp_path / "var" / "simulation" / "mail" / "new").iterdir()))
        first = result.output.splitlines()[0]
        assert first.startswith("Rehearsal: the mail goes into the rehearsal's Maildir")
        assert "nothing is sent to anyone" in first
        assert recorder.accepted == [] and not (tmp_path / "mail").exists()  # nor the real Maildir

        result = _invoke(base + args + ["--deliver"], env, stdin="n\n")
        assert result.exit_code == 1 and recorder.accepted == []  # not confirmed: nothing goes
        assert result.output.splitlines()[0].startswith("Rehearsal: the mail goes for real, through SMTP")

        result = _invoke(base + args + ["--deliver", "--yes"], env)
        assert result.exit_code == 0, result.output
    assert len(recorder.accepted) == rehearsed > 0


# --- templates ----------------------------------------------------------------------------------------------


def test_a_template_cannot_run_code_or_read_outside_its_folder(config_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = _clean_env(tmp_path)
    base = ["--config", str(config_copy), "--state", str(tmp_path / "var"), "--now", NOW]
    HOSTILE["template-sandbox-escape"][0](config_copy)
    result = _invoke([*base, "validate"], env)
    assert result.exit_code == 2 and "invitation.subject.txt:1" in result.output and "unsafe" in result.output
    assert not (tmp_path / "PWNED").exists()

    _remove("templates")(config_copy)
    HOSTILE["template-symlink-to-passwd"][0](config_copy)
    result = _invoke([*base, "validate"], env)
    assert result.exit_code == 2
    assert "invitation.txt" in result.output and "outside the templates/ folder" in result.output
    result = _invoke([*base, "send", "invitation", "heads-2020-09", "--yes"], env)
    assert result.exit_code == 1 and "outside the templates/ folder" in result.output
    assert not (tmp_path / "mail").exists() or not any((tmp_path / "mail").rglob("*.*"))


# --- the long-running commands, as processes --------------------------------------------------------------


def _briefly(commands: list[list[str]], env: dict[str, str], seconds: float = 4.0) -> list[tuple[int, str]]:
    """Start long-running commands side by side, let them work a few seconds (or end by themselves), then
    stop them with SIGTERM; each one's exit code and output."""
    procs = [
        subprocess.Popen(
            [sys.executable, "cli.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in commands
    ]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.1)
    results = []
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        results.append((proc.returncode, out))
    return results


@pytest.mark.parametrize(
    "name",
    ["bad-yaml", "line-break-in-name", "template-sandbox-escape", "index-template-escape", "empty-project"],
)
def test_run_and_serve_over_a_hostile_configuration(name, config_copy, tmp_path):
    HOSTILE[name][0](config_copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config_copy), CYCLOGRAM_STATE=str(tmp_path / "var"),
               CYCLOGRAM_MAILDIR=str(tmp_path / "mail"), PYTHONUNBUFFERED="1")  # fmt: skip
    for code, out in _briefly([["--now", NOW, "run", "--port", "0"], ["serve", "--port", "0"]], env):
        assert "Traceback" not in out, out
        assert code in (0, 1, 2, -signal.SIGTERM), out
