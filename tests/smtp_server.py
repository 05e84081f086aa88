"""A real SMTP server for tests: aiosmtpd on a free port in its own thread, recording what it accepts."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Accepted", "Recorder", "SMTPServer"]


@dataclass
class Accepted:
    sender: str
    recipients: list[str]
    data: bytes

    def parse(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Recorder:
    """The handler: accepts, or misbehaves as a test scripts it.

    - `data_replies`: replies for successive DATA commands (None = accept), then accept;
    - `reject`: addresses refused at RCPT with 550;
    - `drop_at`: 1-based DATA numbers at which the server drops the connection without a reply;
    - `stall_at`: DATA numbers at which the server never answers (until the server stops);
    - `gate_at`: a DATA number at which the server sets `gate_reached` and waits, unanswered, until stop;
    - `drop_at_rcpt`: addresses at which the server drops the connection without a reply;
    - `busy`: addresses answered 421 at RCPT, the connection closed after the reply.

    It notes, for each MAIL FROM, whether the RCPT TO and DATA after it had already arrived before the
    server answered it (`grouped`: the client pipelined), and each RSET.
    """

    data_replies: list[str | None] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    drop_at: set[int] = field(default_factory=set)
    stall_at: set[int] = field(default_factory=set)
    gate_at: int | None = None
    drop_at_rcpt: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    grouped: list[bool] = field(default_factory=list)
    resets: int = 0
    sessions: int = 0  # open now
    peak: int = 0  # most open at once
    turned_away: int = 0  # sessions answered 421 for being over `max_sessions`
    accepted: list[Accepted] = field(default_factory=list)
    data_count: int = 0
    logins: list[str] = field(default_factory=list)
    gate_reached: threading.Event = field(default_factory=threading.Event)
    _release: asyncio.Event | None = None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        limit = getattr(server, "max_sessions", None)
        if limit is not None and getattr(server, "rank", 0) > limit:
            self.turned_away += 1
            # and closes the session after the reply, as Postfix and Exim do after a 421
            server.loop.call_soon(server.transport.close)
            return "421 4.7.0 Too many concurrent SMTP connections; please try again later"
        # Not yet answered: what the client sent after MAIL is in the stream only if it did not wait.
        waiting = bytes(server._reader._buffer)  # type: ignore[attr-defined]
        self.grouped.append(b"RCPT" in waiting.upper() and b"DATA" in waiting.upper())
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.resets += 1
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ):
        if address.lower() in self.drop_at_rcpt:
            server.transport.abort()
            return "250 OK (never seen)"
        if address.lower() in self.busy:
            server.loop.call_soon(server.transport.close)
            return "421 4.7.0 busy, closing the connection"
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_count += 1
        n = self.data_count
        if n in self.drop_at:
            server.transport.abort()
            return "250 OK (never seen)"
        if n in self.stall_at or n == self.gate_at:
            if n == self.gate_at:
                self.gate_reached.set()
            assert self._release is not None
            await self._release.wait()
            return "451 4.3.0 shutting down"
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if reply is not None:
                return reply
        self.accepted.append(Accepted(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 OK: queued"

    def by_recipient(self) -> dict[str, list[Accepted]]:
        out: dict[str, list[Accepted]] = {}
        for a in self.accepted:
            for r in a.recipients:
                out.setdefault(r.lower(), []).append(a)
        return out


class _TestSMTP(SMTP):
    """aiosmtpd's server, offering PIPELINING when asked and counting the sessions open at once."""

    pipelining = False
    max_sessions: int | None = None  # a MAIL FROM in a session beyond this many is answered 421
    recorder: Recorder

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None  # a second call is the STARTTLS upgrade
        super().connection_made(transport)
        if first:
            self.recorder.sessions += 1
            self.rank = self.recorder.sessions
            self.recorder.peak = max(self.recorder.peak, self.recorder.sessions)

    def connection_lost(self, error: Exception | None) -> None:
        self.recorder.sessions -= 1
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname: str) -> None:
        if not self.pipelining:
            await super().smtp_EHLO(hostname)
            return
        push = self.push

        async def with_pipelining(status: str) -> None:  # the last line of the reply names one more
            if status.startswith("250 "):
                await push("250-PIPELINING")
            await push(status)

        self.push = with_pipelining  # type: ignore[method-assign]
        try:
            await super().smtp_EHLO(hostname)
        finally:
            del self.push


class SMTPServer:
    """Start with `with SMTPServer(recorder) as s:`; `s.port` is the port the system gave us.

    `credentials` may be changed while it runs (a password fixed on the server's side).
    `pipelining` offers PIPELINING (RFC 2920); `max_sessions` answers 421 beyond that many at once.
    """

    def __init__(
        self,
        handler: Recorder,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        auth_require_tls: bool = True,
        data_size_limit: int | None = None,
        pipelining: bool = False,
        max_sessions: int | None = None,
    ):
        self.handler = handler
        self.pipelining = pipelining
        self.max_sessions = max_sessions
        self.auth_require_tls = auth_require_tls
        self.data_size_limit = data_size_limit
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.credentials = credentials
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any):
        ok = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        if ok:
            self.handler.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def _factory(self) -> Callable[[], SMTP]:
        kwargs: dict[str, Any] = {"hostname": "localhost"}
        if self.data_size_limit is not None:
            kwargs["data_size_limit"] = self.data_size_limit  # advertised as EHLO SIZE
        if self.tls_context is not None and not self.implicit_tls:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        if self.credentials is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.auth_require_tls,
                auth_exclude_mechanism=["LOGIN"],
            )
        handler, pipelining, max_sessions = self.handler, self.pipelining, self.max_sessions

        def make() -> SMTP:
            server = _TestSMTP(handler, **kwargs)
            server.recorder, server.pipelining, server.max_sessions = handler, pipelining, max_sessions
            return server

        return make

    async def _start(self) -> int:
        self.handler._release = asyncio.Event()
        server = await self.loop.create_server(
            self._factory(),
            host="127.0.0.1",
            port=0,
            ssl=self.tls_context if self.implicit_tls else None,
        )
        self.server = server
        return int(server.sockets[0].getsockname()[1])

    def __enter__(self) -> SMTPServer:
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def release(self) -> None:
        """Let stalled DATA commands finish (with a 451)."""
        if self.handler._release is not None:
            self.loop.call_soon_threadsafe(self.handler._release.set)

    def __exit__(self, *exc: object) -> None:
        self.release()

        async def stop() -> None:
            self.server.close()
            # Sessions a client left open (a refused login, a dropped client) end here, not at interpreter exit.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
