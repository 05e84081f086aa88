"""Answers from calendar clients: replies in each client's shape, read from a real Dovecot over IMAP."""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import re
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from imapclient import IMAPClient

from cli import main
from scheduler.clock import FixedClock
from scheduler.config import load_config
from scheduler.server import FeedServer
from scheduler.store import SQLiteStore
from tests.imap_server import ImapServer, dovecot_available, run_dovecot

REPLIES = Path(__file__).parent / "data" / "replies"
MEETING = "heads-2020-09"
SENT = "2020-09-11T10:00+03:00"
MOVED = "2020-09-15T10:00+03:00"
FETCHED = "2020-09-21T10:00+03:00"


@pytest.fixture
def dovecot() -> Iterator[ImapServer]:
    if not dovecot_available():
        if os.environ.get("CI") == "true":
            pytest.fail("Dovecot (Debian package dovecot-imapd) is required in CI")
        pytest.skip("Dovecot (Debian package dovecot-imapd) is not installed")
    with run_dovecot() as server:
        yield server


def _env(config: Path, state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config), CYCLOGRAM_STATE=str(state), **extra)
    return env


def _run(config: Path, state: Path, now: str, *args: str, **extra: str):
    result = CliRunner().invoke(main, ["--now", now, *args], env=_env(config, state, **extra))
    assert "Traceback" not in result.output, result.output
    return result


def _append(server: ImapServer, names: list[str], folder: str = "INBOX") -> None:
    with IMAPClient(server.host, server.port, ssl=False) as client:
        client.login(server.username, server.password)
        for name in names:
            client.append(folder, (REPLIES / name).read_bytes())


def _folder(server: ImapServer, folder: str) -> list[bytes]:
    with IMAPClient(server.host, server.port, ssl=False) as client:
        client.login(server.username, server.password)
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        return [d[b"RFC822"] for d in client.fetch(uids, ["RFC822"]).values()] if uids else []


def _links(state: Path, email: str) -> dict[str, str]:
    """The answer links in the newest mail that reached `email`, read from the delivered Maildir."""
    found: dict[str, str] = {}
    for raw in mailbox.Maildir(state / "mail", create=False):
        msg = message_from_bytes(raw.as_bytes(), policy=policy.default)
        if msg["To"].addresses[0].addr_spec != email:
            continue
        text = msg.get_body(("plain",)).get_content()
        for word in ("yes", "no", "maybe"):
            m = re.search(rf"https://cyclogram\.example\.org(/rsvp/[^\s/]+/[^\s/]+/{word})\b", text)
            if m:
                found[word] = m.group(1)
    return found


async def _answer_by_link(config: Path, state: Path, path: str) -> int:
    """POST the answer as the page's button does, on the real HTTP server."""
    store = SQLiteStore(state / "state.db")
    server = FeedServer(store, FixedClock(datetime.fromisoformat("2020-09-20T09:00+03:00")), config)
    server.update(load_config(config).project)
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}{path}") as page:
                assert page.status == 200
                assert '<form method="post"' in await page.text()
            async with http.post(f"http://127.0.0.1:{port}{path}", allow_redirects=False) as posted:
                return posted.status
    finally:
        await server.stop()
        store.close()


def _send_invitation_and_update(config: Path, state: Path) -> None:
    sent = _run(config, state, SENT, "send", "invitation", MEETING, "--yes")
    assert sent.exit_code == 0, sent.output
    path = config / "meetings" / "2020-09-25-heads.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("start: 2020-09-25 10:00", "start: 2020-09-25 10:30"), encoding="utf-8")
    update = _run(config, state, MOVED, "send", "update", MEETING, "--yes")
    assert update.exit_code == 0 and "sent 6" in update.output, update.output


def test_link_and_client_answers_show_in_attendance_once(config_copy, tmp_path, dovecot):
    state = tmp_path / "var"
    _send_invitation_and_update(config_copy, state)
    links = _links(state, "head@school37.example.org")
    assert set(links) == {"yes", "no", "maybe"}
    assert asyncio.run(_answer_by_link(config_copy, state, links["yes"])) == 303

    _append(dovecot, [
        "outlook.eml", "gmail.eml", "apple.eml", "thunderbird.eml",
        "forged.eml", "spoofed.eml", "stale.eml", "unknown-meeting.eml", "malformed.eml",
    ])  # fmt: skip
    imap = dovecot.env(CYCLOGRAM_IMAP_DONE_FOLDER="Cyclogram/Done")
    fetched = _run(config_copy, state, FETCHED, "rsvp", "fetch", **imap)
    assert fetched.exit_code == 0, fetched.output
    assert "4 message(s) left in place" in fetched.output
    assert "the receiving server found the sender forged (dmarc=fail)" in fetched.output
    assert (
        "forged" in fetched.output and "unknown-meeting" in fetched.output and "malformed" in fetched.output
    )

    roster = json.loads(_run(config_copy, state, FETCHED, "attendance", MEETING, "--json").output)
    by_email = {a["email"]: a for a in roster["attendees"]}
    expected = {
        "head@school1.example.org": ("ACCEPTED", "imap"),  # Outlook
        "head@school2.example.org": ("DECLINED", "imap"),  # Gmail
        "head@gym3.example.org": ("TENTATIVE", "imap"),  # Apple Mail
        "head@lyceum86.example.org": ("ACCEPTED", "imap"),  # Thunderbird, not the spoofed DECLINED
        "head@school37.example.org": ("ACCEPTED", "link"),  # neither the forged nor the stale reply
        "deputy@school1.example.org": ("NEEDS-ACTION", None),
    }
    assert {e: (a["partstat"], a["via"]) for e, a in by_email.items()} == expected
    assert roster["counts"] == {"ACCEPTED": 3, "DECLINED": 1, "TENTATIVE": 1, "NEEDS-ACTION": 1}
    assert by_email["head@school1.example.org"]["at"] == "2020-09-16T08:15:02+00:00"  # the reply's DTSTAMP
    assert len(roster["attendees"]) == 6

    # Handled mail moved to the done folder (created), the rest left in the inbox for a person.
    assert len(_folder(dovecot, "Cyclogram.Done")) == 5
    left = _folder(dovecot, "INBOX")
    assert sorted(message_from_bytes(m)["Message-ID"] for m in left) == sorted(
        [
            "<forged.eml@example.org>",
            "<spoofed.eml@example.org>",
            "<unknown-meeting.eml@example.org>",
            "<malformed.eml@example.org>",
        ]
    )

    # Fetching again, and the same replies arriving again under new UIDs, count nothing twice.
    _append(dovecot, ["outlook.eml", "gmail.eml"])
    again = _run(config_copy, state, FETCHED, "rsvp", "fetch", **imap)
    assert again.exit_code == 0 and "2 unchanged" in again.output, again.output
    after = json.loads(_run(config_copy, state, FETCHED, "attendance", MEETING, "--json").output)
    assert after["counts"] == roster["counts"] and len(after["attendees"]) == 6


def test_a_reply_to_an_older_sequence_is_ignored_but_a_current_one_counts(config_copy, tmp_path, dovecot):
    state = tmp_path / "var"
    _send_invitation_and_update(config_copy, state)
    _append(dovecot, ["stale.eml"])
    fetched = _run(config_copy, state, FETCHED, "rsvp", "fetch", **dovecot.env())
    assert "1 stale" in fetched.output and "older than the 1 last sent" in fetched.output
    roster = json.loads(_run(config_copy, state, FETCHED, "attendance", MEETING, "--json").output)
    assert roster["counts"]["DECLINED"] == 0
    # Without a done folder the handled message stays where it is, and is not read again.
    assert len(_folder(dovecot, "INBOX")) == 1
    again = _run(config_copy, state, FETCHED, "rsvp", "fetch", **dovecot.env())
    assert "read 0 message(s)" in again.output


def test_imap_failures_are_messages(config_copy, tmp_path, dovecot):
    state = tmp_path / "var"
    wrong = dovecot.env(CYCLOGRAM_IMAP_PASSWORD="not-the-password")
    result = _run(config_copy, state, FETCHED, "rsvp", "fetch", **wrong)
    assert result.exit_code == 1 and "refused the login" in result.output
    assert "not-the-password" not in result.output
    bad = _run(config_copy, state, FETCHED, "rsvp", "fetch", **dovecot.env(CYCLOGRAM_IMAP_SECURITY="ssl3"))
    assert bad.exit_code == 1 and "CYCLOGRAM_IMAP_SECURITY must be one of" in bad.output
    unset = _run(config_copy, state, FETCHED, "rsvp", "fetch")
    assert unset.exit_code == 1 and "CYCLOGRAM_IMAP_HOST" in unset.output
    folder = _run(config_copy, state, FETCHED, "rsvp", "fetch", **dovecot.env(CYCLOGRAM_IMAP_FOLDER="Nope"))
    assert folder.exit_code == 1 and "cannot open the IMAP folder 'Nope'" in folder.output


def _run_service_until(config: Path, state: Path, env_extra: dict[str, str], pattern: str) -> tuple[int, str]:
    """Start `cyclogram run`, wait for a log line, stop it with SIGTERM; (exit code, stderr)."""
    import signal
    import subprocess
    import sys
    import threading

    from tests.conftest import ROOT

    env = _env(config, state, CYCLOGRAM_MAILDIR=str(state / "mail"), PYTHONUNBUFFERED="1", **env_extra)
    proc = subprocess.Popen(
        [sys.executable, "cli.py", "--now", FETCHED, "run", "--no-serve"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    lines = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if pattern in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
        lines.append(rest)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(lines)


def test_the_service_reads_the_mailbox_when_imap_is_set(config_copy, tmp_path, dovecot):
    state = tmp_path / "var"
    _append(dovecot, ["outlook.eml"])
    code, err = _run_service_until(config_copy, state, dovecot.env(), "action=answers-fetched")
    assert code == 0 and "Traceback" not in err, err
    assert "action=answers-on" in err and "read 1 message(s): 1 recorded" in err
    assert dovecot.password not in err
    store = SQLiteStore(state / "state.db")
    assert [(a.email, a.partstat, a.via) for a in store.answers(MEETING)] == [
        ("head@school1.example.org", "ACCEPTED", "imap")
    ]
    store.close()


def test_an_unreachable_mailbox_is_an_error_line_not_a_stop(config_copy, tmp_path, dovecot):
    state = tmp_path / "var"
    closed = dovecot.env(CYCLOGRAM_IMAP_PASSWORD="wrong")
    code, err = _run_service_until(config_copy, state, closed, "action=answers-failed")
    assert code == 0 and "Traceback" not in err, err
    assert " ERROR " in next(line for line in err.splitlines() if "action=answers-failed" in line)
    assert "refused the login" in err and "Stopped." not in err.split("action=answers-failed")[0]


def test_tls_and_starttls_check_the_servers_certificate(config_copy, tmp_path):
    import trustme

    if not dovecot_available():
        if os.environ.get("CI") == "true":
            pytest.fail("Dovecot (Debian package dovecot-imapd) is required in CI")
        pytest.skip("Dovecot (Debian package dovecot-imapd) is not installed")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pem = (cert.cert_chain_pems[0].bytes(), cert.private_key_pem.bytes())
    state = tmp_path / "var"
    with run_dovecot(tls=pem) as server:
        _append(server, ["outlook.eml"])
        starttls = server.env(CYCLOGRAM_IMAP_SECURITY="starttls", CYCLOGRAM_IMAP_CA_FILE=str(ca_file))
        result = _run(config_copy, state, FETCHED, "rsvp", "fetch", **starttls)
        assert result.exit_code == 0 and "1 recorded" in result.output, result.output
        assert server.tls_port is not None
        implicit = server.env(
            CYCLOGRAM_IMAP_SECURITY="tls", CYCLOGRAM_IMAP_PORT=str(server.tls_port),
            CYCLOGRAM_IMAP_CA_FILE=str(ca_file),
        )  # fmt: skip
        result = _run(config_copy, state, FETCHED, "rsvp", "fetch", **implicit)
        assert result.exit_code == 0 and "read 0 message(s)" in result.output, result.output
        untrusted = {**implicit, "CYCLOGRAM_IMAP_CA_FILE": ""}
        refused = _run(config_copy, state, FETCHED, "rsvp", "fetch", **untrusted)
        assert (
            refused.exit_code == 1 and "cannot connect" in refused.output and "certificate" in refused.output
        )
