"""Hand messages to the world: SMTP through aiosmtplib, or a Maildir when no SMTP host is configured."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiosmtplib

from .errors import DeliveryError

__all__ = [
    "ENV",
    "SECURITY",
    "Connection",
    "MaildirTransport",
    "PermanentError",
    "SMTPSettings",
    "SMTPTransport",
    "TransientError",
    "Transport",
    "TransportConfigError",
    "transport_from_env",
]

ENV = {
    "host": "CYCLOGRAM_SMTP_HOST",
    "port": "CYCLOGRAM_SMTP_PORT",
    "security": "CYCLOGRAM_SMTP_SECURITY",
    "username": "CYCLOGRAM_SMTP_USERNAME",
    "password": "CYCLOGRAM_SMTP_PASSWORD",
    "allow_plain_auth": "CYCLOGRAM_SMTP_ALLOW_PLAIN_AUTH",
    "timeout": "CYCLOGRAM_SMTP_TIMEOUT",
    "ca_file": "CYCLOGRAM_SMTP_CA_FILE",
    "maildir": "CYCLOGRAM_MAILDIR",
}
SECURITY = ("none", "starttls", "tls")
_DEFAULT_PORT = {"none": 25, "starttls": 587, "tls": 465}


class TransientError(DeliveryError):
    """Worth another try later: a 4xx reply, a dropped connection, a timeout."""


class PermanentError(DeliveryError):
    """The server refused for good (5xx): retrying would get the same answer."""


class TransportConfigError(DeliveryError):
    """The transport itself cannot work (bad login, untrusted certificate, nobody listening): stop, fix."""


class Connection(Protocol):
    async def send(self, sender: str, recipient: str, message: bytes, key: str) -> str:
        """Deliver one message to one recipient; return the server's reply. `key` names the outbox row."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    description: str

    async def connect(self) -> Connection: ...


# --- SMTP -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    security: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line or a traceback
    timeout: float = 30.0
    ca_file: str | None = None
    allow_plain_auth: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise TransportConfigError(f"{ENV['port']}={self.port} is not a port: give 1 to 65535")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise TransportConfigError(
                f"{ENV['timeout']}={self.timeout} must be a positive number of seconds"
            )
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            raise TransportConfigError(f"{ENV['ca_file']}={self.ca_file!r} is not a readable file")
        if self.security not in SECURITY:
            raise TransportConfigError(
                f"{ENV['security']}={self.security!r} is not one of {', '.join(SECURITY)}"
            )
        if bool(self.username) != bool(self.password):
            raise TransportConfigError(f"set both {ENV['username']} and {ENV['password']}, or neither")
        if self.username and self.security == "none" and not self.allow_plain_auth:
            raise TransportConfigError(
                "refusing to send the SMTP password over an unencrypted connection: "
                f"set {ENV['security']}=starttls or tls "
                f"(or {ENV['allow_plain_auth']}=1 for a server on this host)"
            )


def _tls_context(settings: SMTPSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


def _classify(exc: BaseException, where: str = "") -> DeliveryError:
    """Sort a failure into retry-later, never-retry, or stop-everything."""
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(
        exc.__cause__, (ConnectionRefusedError, socket.gaierror)
    ):
        # Nobody listens there, or the name does not resolve: a setting to fix, not a message to retry.
        return TransportConfigError(f"cannot connect to the SMTP server {where}: {exc.__cause__}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TransportConfigError(f"the SMTP server refused the login: {exc.code} {exc.message}")
    if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        return TransportConfigError(
            f"the SMTP server's certificate is not trusted ({exc}); set {ENV['ca_file']} to its CA bundle"
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        code, text = first.code, first.message
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, exc.message
    else:
        return TransientError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    reply = f"{code} {text}".strip()
    if 500 <= code < 600:
        return PermanentError(reply)
    return TransientError(reply)


class _SMTPConnection:
    """One SMTP session, reused for many messages; reopened after any failure."""

    def __init__(self, settings: SMTPSettings):
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None

    async def _open(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            # "none" means none: no opportunistic STARTTLS that could fail on a half-configured server.
            start_tls=s.security == "starttls",
            tls_context=_tls_context(s) if s.security != "none" else None,
            timeout=s.timeout,
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:
            # Now rather than inside sendmail: its EHLO names the SIZE a message must fit.
            with contextlib.suppress(aiosmtplib.SMTPHeloError):
                await client.ehlo()
        if s.username:
            await client.login(s.username, s.password or "")
        return client

    async def send(self, sender: str, recipient: str, message: bytes, key: str) -> str:
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            if self.client is None:
                self.client = await self._open()
            limit = _size_limit(self.client)
            if limit and len(message) > limit:
                # Refused before MAIL FROM: the server said in its EHLO it would not take it (RFC 1870).
                raise PermanentError(
                    f"the message is {len(message)} octets; the SMTP server {where} accepts at most "
                    f"{limit} (its EHLO SIZE)"
                )
            # A UTF-8 mailbox (завуч@пример.рф) travels only where the server offers SMTPUTF8 (RFC 6531).
            options = [] if (sender + recipient).isascii() else ["SMTPUTF8"]
            if options and self.client.is_ehlo_or_helo_needed:
                await self.client.ehlo()  # its extensions are known only after EHLO
            if options and not self.client.supports_extension("smtputf8"):
                raise PermanentError(
                    f"the SMTP server does not offer SMTPUTF8, which the address {recipient} needs "
                    "(its local part is not ASCII); ask the school for an ASCII address"
                )
            if options and self.client.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            errors, reply = await self.client.sendmail(sender, [recipient], message, mail_options=options)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise _classify(exc, where) from None
        if errors:  # one recipient per message, so this is that recipient's refusal
            await self.close()
            code, text = next(iter(errors.values()))
            raise (PermanentError if code >= 500 else TransientError)(f"{code} {text}")
        return reply

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), timeout=self.settings.timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


def _size_limit(client: aiosmtplib.SMTP) -> int | None:
    """The server's EHLO SIZE, if it gave a usable one (0 or no number: no stated limit)."""
    value = (client.esmtp_extensions.get("size") or "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


class SMTPTransport:
    def __init__(self, settings: SMTPSettings):
        self.settings = settings
        auth = f", as {settings.username}" if settings.username else ""
        self.description = f"SMTP {settings.host}:{settings.port} ({settings.security}{auth})"

    async def connect(self) -> Connection:
        return _SMTPConnection(self.settings)

    async def check(self) -> None:
        """Connect and log in, send nothing: raises what a delivery would meet (TransportConfigError...)."""
        conn = _SMTPConnection(self.settings)
        try:
            conn.client = await conn._open()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _classify(exc, f"{self.settings.host}:{self.settings.port}") from None
        finally:
            await conn.close()


# --- Maildir ----------------------------------------------------------------------------------------------


class MaildirTransport:
    """Delivery into a Maildir (tmp/, new/, cur/): write in tmp, then rename into new (atomic).

    The file name carries a hash of the outbox row, so a row delivered just before a crash is found
    and not written twice: with a Maildir, exactly once holds even across a kill.
    """

    _counter = 0

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True):
        self.path = Path(path)
        self.description = f"Maildir {self.path}"
        self.durable = durable  # fsync each message; a rehearsal into a scratch Maildir need not
        self._tags: dict[str, str] | None = None  # outbox tag -> file name, read from disk once

    def _ensure(self) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        if self._tags is None:
            # One scan per run, not one per message: a year of mail is thousands of files. Only this
            # process delivers from the outbox meanwhile (the store's delivery lease), so it stays true.
            tags: dict[str, str] = {}
            for sub in ("new", "cur"):
                for p in (self.path / sub).iterdir():
                    tag = p.name.partition("Q")[2].partition(".")[0]
                    if tag:
                        tags[tag] = f"{sub}/{p.name}"
            self._tags = tags

    async def connect(self) -> Connection:
        try:
            await asyncio.to_thread(self._ensure)
        except OSError as exc:
            raise TransportConfigError(f"cannot use the Maildir {self.path}: {exc}") from None
        return self

    async def check(self) -> None:
        await self.connect()

    @staticmethod
    def tag(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    def delivered(self, key: str) -> Path | None:
        self._ensure()
        assert self._tags is not None
        found = self._tags.get(self.tag(key))
        return self.path / found if found else None

    def _write(self, message: bytes, key: str) -> str:
        found = self.delivered(key)
        if found is not None:
            return f"already in the Maildir as {found.name}"
        MaildirTransport._counter += 1
        now = time.time()
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        name = (
            f"{int(now)}.M{int(now * 1e6) % 1_000_000}P{os.getpid()}C{self._counter}Q{self.tag(key)}.{host}"
        )
        tmp, new = self.path / "tmp" / name, self.path / "new" / name
        data = message.replace(b"\r\n", b"\n")  # Maildir files use the local line end
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, new)
        assert self._tags is not None
        self._tags[self.tag(key)] = f"new/{name}"
        return f"delivered to {new}"

    async def send(self, sender: str, recipient: str, message: bytes, key: str) -> str:
        try:
            return await asyncio.to_thread(self._write, message, key)
        except OSError as exc:
            raise TransientError(f"cannot write to the Maildir {self.path}: {exc}") from None

    async def close(self) -> None:
        return None


# --- configuration ----------------------------------------------------------------------------------------


_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
          "off": False, "": False}  # fmt: skip


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = (environ.get(name) or "").strip().lower()
    if value not in _FLAGS:
        raise TransportConfigError(f"{name}={value!r} is neither yes nor no (give 1 or 0)")
    return _FLAGS[value]


def _number(environ: Mapping[str, str], name: str, kind: type[int] | type[float]) -> int | float | None:
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise TransportConfigError(f"{name}={text!r} is not {what}") from None
    return value


def transport_from_env(environ: Mapping[str, str], maildir_default: str | os.PathLike[str]) -> Transport:
    """SMTP when CYCLOGRAM_SMTP_HOST is set, else the Maildir at CYCLOGRAM_MAILDIR or `maildir_default`."""
    host = (environ.get(ENV["host"]) or "").strip()
    if not host:
        maildir = Path(environ.get(ENV["maildir"]) or maildir_default)
        if maildir.exists() and not maildir.is_dir():
            raise TransportConfigError(f"{ENV['maildir']}={str(maildir)!r} is a file, not a folder")
        return MaildirTransport(maildir)
    if any(ch in host for ch in "\r\n\0 /"):
        raise TransportConfigError(f"{ENV['host']}={host!r} is not a host name")
    security = (environ.get(ENV["security"]) or "").strip().lower()
    port = _number(environ, ENV["port"], int)
    timeout = _number(environ, ENV["timeout"], float)
    if not security:
        security = {465: "tls", 587: "starttls"}.get(port or 25, "none")
    if port is None:
        port = _DEFAULT_PORT.get(security, 25)
    return SMTPTransport(
        SMTPSettings(
            host=host,
            port=int(port),
            security=security,
            username=environ.get(ENV["username"]) or None,
            password=environ.get(ENV["password"]) or None,
            timeout=30.0 if timeout is None else float(timeout),
            ca_file=environ.get(ENV["ca_file"]) or None,
            allow_plain_auth=_flag(environ, ENV["allow_plain_auth"]),
        )
    )
