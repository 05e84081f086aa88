"""SMTP against a real aiosmtpd server (faults, STARTTLS, AUTH) and the Maildir transport."""

from __future__ import annotations

import mailbox
import ssl

import pytest
import trustme

from scheduler.transport import (
    MaildirTransport,
    PermanentError,
    SMTPSettings,
    SMTPTransport,
    TransientError,
    TransportConfigError,
    transport_from_env,
)
from tests.smtp_server import Recorder, SMTPServer

MSG = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <x@example.org>\r\n\r\nbody\r\n"
)


async def _send(settings: SMTPSettings, to: str = "b@example.org") -> str:
    conn = await SMTPTransport(settings).connect()
    try:
        return await conn.send("a@example.org", to, MSG, "k")
    finally:
        await conn.close()


async def test_plain_delivery_and_connection_reuse():
    rec = Recorder()
    with SMTPServer(rec) as server:
        conn = await SMTPTransport(SMTPSettings("127.0.0.1", server.port)).connect()
        for i in range(3):
            reply = await conn.send("a@example.org", f"r{i}@example.org", MSG, str(i))
            assert reply.startswith("2.0.0") or "OK" in reply
        await conn.close()
    assert [a.recipients for a in rec.accepted] == [
        ["r0@example.org"],
        ["r1@example.org"],
        ["r2@example.org"],
    ]


async def test_faults_are_classified():
    rec = Recorder(data_replies=["451 4.3.0 Try again later"], reject={"gone@example.org"}, drop_at={3})
    with SMTPServer(rec) as server:
        s = SMTPSettings("127.0.0.1", server.port, timeout=5)
        with pytest.raises(TransientError, match="451"):
            await _send(s)
        with pytest.raises(PermanentError, match=r"550 5\.1\.1"):
            await _send(s, "gone@example.org")
        await _send(s)  # DATA #2 accepted
        with pytest.raises(TransientError):
            await _send(s)  # DATA #3: connection dropped
    assert len(rec.accepted) == 1


async def test_stalled_server_times_out():
    rec = Recorder(stall_at={1})
    with SMTPServer(rec) as server:
        with pytest.raises(TransientError, match=r"Timeout|timed out"):
            await _send(SMTPSettings("127.0.0.1", server.port, timeout=0.3))
        server.release()
    assert rec.accepted == []


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, str(ca_file)


async def test_starttls_with_auth(tls):
    server_ctx, ca_file = tls
    rec = Recorder()
    with SMTPServer(rec, tls_context=server_ctx, credentials=("user", "s3cret")) as server:
        ok = SMTPSettings("127.0.0.1", server.port, "starttls", "user", "s3cret", ca_file=ca_file)
        await _send(ok)
        with pytest.raises(TransportConfigError, match="refused the login"):
            await _send(
                SMTPSettings(
                    "127.0.0.1", server.port, "starttls", "user", "wrong", ca_file=ca_file, timeout=5
                )
            )
        with pytest.raises(TransportConfigError, match="not trusted"):
            await _send(SMTPSettings("127.0.0.1", server.port, "starttls", "user", "s3cret"))
    assert rec.logins == ["user"] and len(rec.accepted) == 1


def test_password_never_in_repr_and_no_plain_auth():
    s = SMTPSettings("h", 587, "starttls", "user", "s3cret")
    assert "s3cret" not in repr(s)
    with pytest.raises(TransportConfigError, match="unencrypted"):
        SMTPSettings("h", 25, "none", "user", "s3cret")
    SMTPSettings("h", 25, "none", "user", "s3cret", allow_plain_auth=True)
    env = {"CYCLOGRAM_SMTP_HOST": "h", "CYCLOGRAM_SMTP_USERNAME": "u", "CYCLOGRAM_SMTP_PASSWORD": "p"}
    with pytest.raises(TransportConfigError):
        transport_from_env(env, "var/mail")
    t = transport_from_env({**env, "CYCLOGRAM_SMTP_PORT": "587"}, "var/mail")
    assert isinstance(t, SMTPTransport) and t.settings.security == "starttls"
    with pytest.raises(TransportConfigError, match="SECURITY"):
        transport_from_env({"CYCLOGRAM_SMTP_HOST": "h", "CYCLOGRAM_SMTP_SECURITY": "ssl3"}, "x")


async def test_maildir_writes_once_per_row(tmp_path):
    t = transport_from_env({"CYCLOGRAM_MAILDIR": str(tmp_path / "md")}, tmp_path / "unused")
    assert isinstance(t, MaildirTransport)
    conn = await t.connect()
    await conn.send("a@example.org", "b@example.org", MSG, "row-1")
    again = await conn.send("a@example.org", "b@example.org", MSG, "row-1")
    await conn.send("a@example.org", "b@example.org", MSG, "row-2")
    assert "already" in again
    box = mailbox.Maildir(tmp_path / "md", create=False)
    assert sorted(m["Message-ID"] for m in box) == ["<x@example.org>"] * 2
    assert list((tmp_path / "md" / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CYCLOGRAM_SMTP_PORT", "99999", "is not a port"),
        ("CYCLOGRAM_SMTP_PORT", "-25", "is not a port"),
        ("CYCLOGRAM_SMTP_PORT", "0", "is not a port"),
        ("CYCLOGRAM_SMTP_PORT", "twenty-five", "is not a whole number"),
        ("CYCLOGRAM_SMTP_PORT", "25.5", "is not a whole number"),
        ("CYCLOGRAM_SMTP_TIMEOUT", "-3", "must be a positive number"),
        ("CYCLOGRAM_SMTP_TIMEOUT", "nan", "must be a positive number"),
        ("CYCLOGRAM_SMTP_TIMEOUT", "inf", "must be a positive number"),
        ("CYCLOGRAM_SMTP_TIMEOUT", "soon", "is not a number"),
        ("CYCLOGRAM_SMTP_SECURITY", "ssl", "is not one of none, starttls, tls"),
        ("CYCLOGRAM_SMTP_ALLOW_PLAIN_AUTH", "maybe", "neither yes nor no"),
        ("CYCLOGRAM_SMTP_CA_FILE", "/nonexistent/ca.pem", "is not a readable file"),
        ("CYCLOGRAM_SMTP_HOST", "mail.example.org\r\nX: y", "is not a host name"),
    ],
)
def test_every_smtp_setting_is_checked_and_named(variable, value, message, tmp_path):
    env = {"CYCLOGRAM_SMTP_HOST": "mail.example.org", variable: value}
    with pytest.raises(TransportConfigError, match=message) as caught:
        transport_from_env(env, tmp_path)
    assert variable in str(caught.value)


def test_a_maildir_setting_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TransportConfigError, match=r"CYCLOGRAM_MAILDIR.*is a file"):
        transport_from_env({"CYCLOGRAM_MAILDIR": str(tmp_path / "file")}, tmp_path)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CYCLOGRAM_SMTP_CONCURRENCY", "100000"),
        ("CYCLOGRAM_SMTP_RETRY_SECONDS", "99999999999999"),
        ("CYCLOGRAM_SMTP_MAX_ATTEMPTS", "-1"),
        ("CYCLOGRAM_SMTP_RATE", "fast"),
    ],
)
def test_every_delivery_setting_is_checked_and_named(variable, value):
    from scheduler.delivery import delivery_options
    from scheduler.errors import DeliveryError

    with pytest.raises(DeliveryError, match=variable):
        delivery_options({variable: value})
