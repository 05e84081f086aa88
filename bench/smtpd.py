"""A test SMTP server for the benchmarks: records what it accepts, and can be slow, strict or faulty."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import signal
import ssl
import sys
import time
import zlib
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["main", "rejected"]


def rejected(address: str, pct: float) -> bool:
    """Whether the server rejects this recipient for good (the harness computes the same set)."""
    return pct > 0 and zlib.crc32(address.lower().encode()) % 10000 < pct * 100


class Recorder:
    """One JSON line per event, flushed at once so a killed client still leaves a full record."""

    def __init__(self, path: str | None):
        self.out = open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115

    def write(self, **event: Any) -> None:
        if self.out is not None:
            self.out.write(json.dumps({"t": time.time(), **event}) + "\n")


class Handler:
    def __init__(self, args: argparse.Namespace, rec: Recorder):
        self.args = args
        self.rec = rec
        self.rnd = random.Random(args.seed)
        self.mid = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)

    def _maybe_drop(self, server: SMTP, session: Session, phase: str) -> bool:
        if getattr(session, "drop_at", None) == phase:
            self.rec.write(ev="drop", phase=phase, peer=str(session.peer))
            server.transport.close()
            return True
        return False

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.args.pipelining:
            # As Postfix and Exim do by default: commands may come in groups (RFC 2920);
            # aiosmtpd reads them one after the other from its stream.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._maybe_drop(server, session, "rcpt"):
            return "421 4.4.2 connection dropped"
        if rejected(address, self.args.reject_pct):
            self.rec.write(ev="reject", rcpt=address)
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._maybe_drop(server, session, "data"):
            return "421 4.4.2 connection dropped"
        if self.args.fail_data and self.rnd.random() < self.args.fail_data:
            self.rec.write(ev="451", rcpt=envelope.rcpt_tos)
            return "451 4.3.0 temporary failure, try again later"
        body = envelope.original_content or b""
        found = self.mid.search(body[:8192])
        self.rec.write(
            ev="msg",
            rcpt=envelope.rcpt_tos,
            size=len(body),
            mid=found.group(1).decode("ascii", "replace") if found else None,
        )
        return "250 2.0.0 accepted"


class BenchSMTP(SMTP):
    """Adds a delay to every reply (a relay across a real network) and connection bookkeeping.

    The delay is the network's: a reply reaches the client `delay` after the server wrote it. A reply
    of several lines (EHLO) is one reply, and the replies to commands a client sent in one group
    (PIPELINING) travel back together, as they would over a real link; a client that waits for each
    reply pays the delay once per command.
    """

    delay = 0.0
    drop_pct = 0.0
    rnd = random.Random(0)
    rec: Recorder | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.rec is not None:
            self.rec.write(ev="open", peer=str(transport.get_extra_info("peername")))
        if self.drop_pct and self.rnd.random() < self.drop_pct:
            self.session.drop_at = self.rnd.choice(("rcpt", "data"))  # type: ignore[attr-defined]

    def connection_lost(self, error: Exception | None) -> None:
        if self.rec is not None:
            self.rec.write(ev="close")
        super().connection_lost(error)

    async def push(self, status: str) -> None:
        if not self.delay:
            await super().push(status)
            return
        loop = asyncio.get_running_loop()
        pending: list[bytes] = self.__dict__.setdefault("_pending", [])
        pending.append(status.encode("utf-8") + b"\r\n")
        if status[3:4] == "-":
            return  # more lines of the same reply follow
        # A group's replies leave when its last one is due: never sooner than a real link would bring it
        self._due = loop.time() + self.delay
        if b"\n" in self._reader._buffer:  # type: ignore[attr-defined]
            return  # the client sent more commands with this one: their replies go back together
        await asyncio.sleep(max(0.0, self._due - loop.time()))
        out, pending[:] = b"".join(pending), []
        self._writer.write(out)
        await self._writer.drain()


def _authenticator(user: str, password: str) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == user
            and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return check


async def serve(args: argparse.Namespace) -> None:
    rec = Recorder(args.record)
    handler = Handler(args, rec)
    BenchSMTP.delay = args.delay_ms / 1000
    BenchSMTP.drop_pct = args.drop
    BenchSMTP.rnd = random.Random(args.seed + 1)
    BenchSMTP.rec = rec
    kwargs: dict[str, Any] = {"hostname": "localhost", "data_size_limit": 0, "timeout": 60}
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs.update(
            auth_required=True,
            auth_require_tls=bool(args.tls_cert),
            authenticator=_authenticator(user, password),
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BenchSMTP(handler, **kwargs), "127.0.0.1", args.port, backlog=512
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=args.lifetime)
    server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    p.add_argument("--record", help="JSON-lines file of what happened")
    p.add_argument("--delay-ms", type=float, default=0, help="delay before every reply")
    p.add_argument("--fail-data", type=float, default=0, help="share of DATA answered 451")
    p.add_argument("--drop", type=float, default=0, help="share of connections dropped mid-transaction")
    p.add_argument("--reject-pct", type=float, default=0, help="percent of recipients rejected with 550")
    p.add_argument("--tls-cert", help="offer (and require) STARTTLS with this certificate")
    p.add_argument("--tls-key")
    p.add_argument("--auth", help="require AUTH with USER:PASSWORD")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--no-pipelining", dest="pipelining", action="store_false", help="do not offer PIPELINING in EHLO"
    )
    p.add_argument("--lifetime", type=float, default=3600, help="exit after this many seconds at the latest")
    args = p.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
