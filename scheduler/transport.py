"""Hand messages to the world: SMTP through aiosmtplib, or a Maildir when no SMTP host is configured."""

from __future__ import annotations

import asyncio
import contextlib
import functools
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
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    MAX_RESPONSE_LENGTH,
    PERIOD_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)

from .errors import DeliveryError
from .translation import _

__all__ = [
    "ENV",
    "SECURITY",
    "Connection",
    "MaildirTransport",
    "PermanentError",
    "SMTPSettings",
    "SMTPTransport",
    "SessionPool",
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
    # How many sessions may be open at once, adapted to what the server accepts; None: no limit of its own
    pool: SessionPool | None

    async def connect(self) -> Connection: ...


class SessionPool:
    """How many SMTP sessions the relay takes at once, learnt while sending (additive increase,
    multiplicative decrease, as TCP does).

    It starts at `start` and grows by one after each round of messages (one per open session) that
    went without a refusal and replied about as fast as the fastest round seen, never beyond `maximum`.
    A 421 reply ("too many connections", "try again later", a greeting that turns us away) or a refused
    connection while others are open halves it (once for the sessions opened together), and it then
    grows back only to one below the number that was refused, until PROBE_ROUNDS calm rounds later
    it tries one more. The delivery workers above the limit park without holding a row.
    """

    PROBE_ROUNDS = 50

    def __init__(self, maximum: int, start: int = 4):
        self.maximum = max(1, maximum)
        self.limit = min(self.maximum, max(1, start))
        self.ceiling = self.maximum  # below the size the server refused, once it has
        self.open = 0  # sessions connected now
        self.best: float | None = None  # fastest mean seconds per message over a round
        self._round: list[float] = []
        self._calm = 0  # rounds since the last refusal, or since the ceiling was last raised
        self._changed: asyncio.Event | None = None

    def bound(self, maximum: int) -> None:
        """Never more than `maximum` sessions (the workers there are to use them)."""
        self.maximum = max(1, maximum)
        self.limit = min(self.limit, self.maximum)

    def admits(self, index: int) -> bool:
        """Whether worker `index` (0-based) may send now."""
        return index < self.limit

    async def changed(self) -> None:
        """Wait until the limit changes or `wake` is called."""
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()

    def wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def succeeded(self, seconds: float) -> None:
        """A message went through in `seconds` (MAIL FROM to the final reply)."""
        self._round.append(seconds)
        if len(self._round) < self.limit:
            return
        mean = sum(self._round) / len(self._round)
        self._round = []
        if self.best is None or mean < self.best:
            self.best = mean
        self._calm += 1
        if self._calm >= self.PROBE_ROUNDS and self.ceiling < self.maximum:
            # A refusal long ago may have been a busy moment of the relay's: try one more again.
            self.ceiling += 1
            self._calm = 0
        # "About as fast": more sessions that only queue behind each other (at the relay, or on our
        # own CPU) would add load and no speed.
        if mean <= 1.5 * self.best and self.limit < min(self.maximum, self.ceiling):
            self.limit += 1
            self.wake()

    def refused(self, *, connected: bool = True) -> None:
        """The server turned a session away (`connected`: after it was counted open): take fewer at once."""
        at = self.open if connected else self.open + 1  # sessions at once, the refused one included
        self.ceiling = min(self.ceiling, max(1, at - 1))
        if at <= self.limit:
            self.limit = max(1, min(self.limit // 2, self.ceiling))
        else:  # opened before an earlier refusal lowered the limit: that one decrease is enough
            self.limit = min(self.limit, self.ceiling)
        self._round = []
        self._calm = 0
        self.wake()


def _turned_away(exc: BaseException) -> bool:
    """A reply that says too many sessions, or come back later: a 421, which closes the session."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]  # a 421 at RCPT TO
    code = getattr(exc, "code", None)
    if code == 421:
        return True
    text = str(exc).lower()
    return code is not None and 400 <= code < 500 and "too many" in text and "connection" in text


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
            raise TransportConfigError(
                _("{name}={value} is not a port: give 1 to 65535").format(name=ENV["port"], value=self.port)
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise TransportConfigError(
                _("{name}={value} must be a positive number of seconds").format(
                    name=ENV["timeout"], value=self.timeout
                )
            )
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            raise TransportConfigError(
                _("{name}={value!r} is not a readable file").format(name=ENV["ca_file"], value=self.ca_file)
            )
        if self.security not in SECURITY:
            raise TransportConfigError(
                _("{name}={value!r} is not one of {choices}").format(
                    name=ENV["security"], value=self.security, choices=", ".join(SECURITY)
                )
            )
        if bool(self.username) != bool(self.password):
            raise TransportConfigError(
                _("set both {user} and {password}, or neither").format(
                    user=ENV["username"], password=ENV["password"]
                )
            )
        if self.username and self.security == "none" and not self.allow_plain_auth:
            raise TransportConfigError(
                _(
                    "refusing to send the SMTP password over an unencrypted connection: "
                    "set {security}=starttls or tls (or {plain}=1 for a server on this host)"
                ).format(security=ENV["security"], plain=ENV["allow_plain_auth"])
            )


def _tls_context(settings: SMTPSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ca_file)


def _classify(exc: BaseException, where: str = "") -> DeliveryError:
    """Sort a failure into retry-later, never-retry, or stop-everything."""
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(
        exc.__cause__, (ConnectionRefusedError, socket.gaierror)
    ):
        # Nobody listens there, or the name does not resolve: a setting to fix, not a message to retry.
        return TransportConfigError(
            _("cannot connect to the SMTP server {where}: {reason}").format(where=where, reason=exc.__cause__)
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TransportConfigError(
            _("the SMTP server refused the login: {code} {reply}").format(code=exc.code, reply=exc.message)
        )
    if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        return TransportConfigError(
            _("the SMTP server's certificate is not trusted ({reason}); set {name} to its CA bundle").format(
                reason=exc, name=ENV["ca_file"]
            )
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

    def __init__(self, settings: SMTPSettings, pool: SessionPool | None = None):
        self.settings = settings
        self.pool = pool
        self.client: aiosmtplib.SMTP | None = None
        self._counted = False  # in pool.open

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
        try:
            await client.connect()
        except aiosmtplib.SMTPConnectError as exc:
            pool = self.pool
            if pool is not None and pool.open > 0 and isinstance(exc.__cause__, ConnectionRefusedError):
                # Others are connected, so someone listens: the server refuses one more session.
                pool.refused(connected=False)
                # A row's reason, as the server's replies are: in English, like the other retries'.
                raise TransientError(
                    f"the SMTP server refused one more connection: {exc.__cause__}"
                ) from None
            raise
        if self.pool is not None and not self._counted:
            self.pool.open += 1
            self._counted = True
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
            started = time.monotonic()
            errors: Mapping[str, aiosmtplib.SMTPResponse] = {}
            if self.client.supports_extension("pipelining"):
                reply = await _pipelined_sendmail(self.client, sender, recipient, message, options)
            else:
                errors, reply = await self.client.sendmail(sender, [recipient], message, mail_options=options)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if self.pool is not None and _turned_away(exc):
                self.pool.refused(connected=self._counted)
            await self.close()
            raise _classify(exc, where) from None
        if self.pool is not None and not errors:
            self.pool.succeeded(time.monotonic() - started)
        if errors:  # one recipient per message, so this is that recipient's refusal
            await self.close()
            code, text = next(iter(errors.values()))
            raise (PermanentError if code >= 500 else TransientError)(f"{code} {text}")
        return reply

    async def close(self) -> None:
        client, self.client = self.client, None
        if self._counted and self.pool is not None:
            self.pool.open -= 1
            self._counted = False
        if client is None:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), timeout=self.settings.timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


class _PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, keeping every reply of a group of commands sent together (RFC 2920).

    The base keeps one reply per read and drops bytes that arrive while no read waits: right for one
    command at a time, but the replies to a pipelined group arrive together and would be lost.
    """

    grouped = False

    def data_received(self, data: bytes) -> None:
        waiter = self._response_waiter
        if self.grouped and waiter is not None and (waiter.done() or not self._response_pending):
            if len(self._buffer) + len(data) > MAX_RESPONSE_LENGTH:
                # A server flooding replies nobody asked for: end the session, the read sees it lost.
                if self.transport is not None:
                    self.transport.close()
                return
            self._buffer.extend(data)  # the next read of the group takes it from the buffer, in order
            return
        super().data_received(data)

    async def read_grouped(self, timeout: float | None) -> aiosmtplib.SMTPResponse:
        """The next reply of the group: one already in the buffer, else the next to arrive."""
        response = self._read_response_from_buffer()
        if response is not None:
            return response
        return await self.read_response(timeout=timeout)


# aiosmtplib's quoting, which refuses an address that could smuggle a parameter or a command; the
# sender is the same for a whole mailing, so its answer is kept.
_quoted = functools.lru_cache(maxsize=256)(quote_address)


def _crlf(message: bytes) -> bytes:
    """The message as DATA carries it, every line ending in CRLF (aiosmtplib's normalisation).

    A composed message already is: three counts (C loops) show it, instead of a regular expression
    run over every line ending of a 20 kB message.
    """
    crlf = message.count(b"\r\n")
    if message.count(b"\r") == crlf == message.count(b"\n"):
        return message if message.endswith(b"\r\n") else message + b"\r\n"
    return normalize_message_line_endings(message)


def _data(message: bytes) -> bytes:
    """What follows DATA: the message in CRLF lines, a dot doubled at the start of a line, then the end."""
    data = _crlf(message)
    if data.startswith(b".") or b"\n." in data:
        data = PERIOD_REGEX.sub(b"..", data)
    return data + b".\r\n"


async def _pipelined_sendmail(
    client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes, options: list[str]
) -> str:
    """One transaction in two round trips where the server offers PIPELINING (RFC 2920).

    MAIL FROM, RCPT TO and DATA go in one write; their replies are read in order and each is checked
    as aiosmtplib's sendmail checks it, raising the same exceptions, so a refusal is classified as
    before. After a refusal the session is reset (RSET); the caller drops it anyway.
    """
    protocol = client.protocol
    if protocol is None or protocol._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    if not isinstance(protocol, _PipeliningProtocol):
        # The same object, with a data_received that keeps replies arriving together (see above).
        protocol.__class__ = _PipeliningProtocol
    assert isinstance(protocol, _PipeliningProtocol)
    encoding = "utf-8" if any(o.lower() == "smtputf8" for o in options) else "ascii"
    mail_options = list(options)
    if client.supports_extension("size"):
        # RFC 1870: the octets as sent in DATA, line ends included (as aiosmtplib's sendmail counts them)
        mail_options.insert(0, f"size={len(_crlf(message))}")
    mail = [
        b"MAIL",
        b"FROM:" + _quoted(sender).encode(encoding),
        *(o.encode("ascii") for o in mail_options),
    ]
    rcpt = [b"RCPT", b"TO:" + _quoted(recipient).encode(encoding)]
    for arg in (*mail, *rcpt):
        if COMMAND_INJECTION_REGEX.search(arg):
            raise ValueError("Command arg contains a prohibited control character")
    group = b" ".join(mail) + b"\r\n" + b" ".join(rcpt) + b"\r\nDATA\r\n"
    timeout = client.timeout
    failure: aiosmtplib.SMTPException | None = None
    try:
        async with protocol._command_lock:
            protocol.grouped = True
            try:
                protocol._response_pending = True
                protocol.write(group)
                # Every reply of the group is read, whatever the first said: the session stays in
                # step. But a 421 closes the session (RFC 5321, 3.8): nothing more will come.
                replies: list[aiosmtplib.SMTPResponse] = []
                while len(replies) < 3 and not (replies and replies[-1].code == 421):
                    replies.append(await protocol.read_grouped(timeout))
            finally:
                protocol.grouped = False
            mail_reply, rcpt_reply, data_reply = (*replies, None, None)[:3]
            if mail_reply.code != 250:
                failure = aiosmtplib.SMTPSenderRefused(mail_reply.code, mail_reply.message, sender)
            elif rcpt_reply is not None and rcpt_reply.code not in (250, 251):
                failure = aiosmtplib.SMTPRecipientsRefused(
                    [aiosmtplib.SMTPRecipientRefused(rcpt_reply.code, rcpt_reply.message, recipient)]
                )
            elif data_reply is not None and data_reply.code != 354:
                failure = aiosmtplib.SMTPDataError(data_reply.code, data_reply.message)
            if replies[-1].code == 421:
                client.close()
                assert failure is not None
                raise failure
            assert data_reply is not None
            if data_reply.code == 354 and failure is not None:
                # A server that took DATA with no valid recipient: end it empty (RFC 2920, section 3.1).
                protocol._response_pending = True
                protocol.write(b".\r\n")
                await protocol.read_response(timeout=timeout)
            elif failure is None:
                body = _data(message)
                protocol._response_pending = True
                protocol.write(body)
                reply = await protocol.read_response(timeout=timeout)
                if reply.code != 250:
                    failure = aiosmtplib.SMTPDataError(reply.code, reply.message)
                else:
                    return reply.message
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()  # a lost or desynchronised session is not reused (as aiosmtplib does)
        raise
    with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
        await client.rset(timeout=timeout)
    assert failure is not None  # every path without one returned the server's reply
    raise failure


def _size_limit(client: aiosmtplib.SMTP) -> int | None:
    """The server's EHLO SIZE, if it gave a usable one (0 or no number: no stated limit)."""
    value = (client.esmtp_extensions.get("size") or "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


class SMTPTransport:
    def __init__(self, settings: SMTPSettings, pool: SessionPool | None = None):
        self.settings = settings
        self.pool: SessionPool | None = pool or SessionPool(maximum=100)
        auth = f", as {settings.username}" if settings.username else ""
        self.description = f"SMTP {settings.host}:{settings.port} ({settings.security}{auth})"

    async def connect(self) -> Connection:
        return _SMTPConnection(self.settings, self.pool)

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

    pool = None  # a folder takes as many writers as come

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
            raise TransportConfigError(
                _("cannot use the Maildir {path}: {reason}").format(path=self.path, reason=exc)
            ) from None
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
            raise TransientError(
                _("cannot write to the Maildir {path}: {reason}").format(path=self.path, reason=exc)
            ) from None

    async def close(self) -> None:
        return None


# --- configuration ----------------------------------------------------------------------------------------


_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
          "off": False, "": False}  # fmt: skip


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = (environ.get(name) or "").strip().lower()
    if value not in _FLAGS:
        raise TransportConfigError(
            _("{name}={value!r} is neither yes nor no (give 1 or 0)").format(name=name, value=value)
        )
    return _FLAGS[value]


def _number(environ: Mapping[str, str], name: str, kind: type[int] | type[float]) -> int | float | None:
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        what = (
            _("{name}={value!r} is not a whole number")
            if kind is int
            else _("{name}={value!r} is not a number")
        )
        raise TransportConfigError(what.format(name=name, value=text)) from None
    return value


def transport_from_env(environ: Mapping[str, str], maildir_default: str | os.PathLike[str]) -> Transport:
    """SMTP when CYCLOGRAM_SMTP_HOST is set, else the Maildir at CYCLOGRAM_MAILDIR or `maildir_default`."""
    host = (environ.get(ENV["host"]) or "").strip()
    if not host:
        maildir = Path(environ.get(ENV["maildir"]) or maildir_default)
        if maildir.exists() and not maildir.is_dir():
            raise TransportConfigError(
                _("{name}={value!r} is a file, not a folder").format(name=ENV["maildir"], value=str(maildir))
            )
        return MaildirTransport(maildir)
    if any(ch in host for ch in "\r\n\0 /"):
        raise TransportConfigError(
            _("{name}={value!r} is not a host name").format(name=ENV["host"], value=host)
        )
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
