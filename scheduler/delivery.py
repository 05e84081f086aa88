"""The outbox worker: claim queued rows, hand them to the transport, record outcomes, retry with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .clock import Clock
from .errors import CyclogramError
from .store import OutboxRow, StateStore
from .transport import Connection, PermanentError, TransientError, Transport, TransportConfigError

__all__ = ["DeliveryBusyError", "DeliveryReport", "RateLimiter", "backoff_delay", "deliver"]


log = logging.getLogger("cyclogram.delivery")


class DeliveryBusyError(CyclogramError):
    """Another process holds the outbox's delivery lease."""


Sleep = Callable[[float], Awaitable[object]]
Progress = Callable[[OutboxRow, str, str], object]


@dataclass
class DeliveryReport:
    """What one run of the worker did; `pending` is what is still queued (e.g. waiting for a retry)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    recovered: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (row id, recipient, reason)
    pending: int = 0


def backoff_delay(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """base, 2·base, 4·base, ... after the 1st, 2nd, 3rd failed attempt; never more than cap."""
    return min(base * (2 ** max(attempts - 1, 0)), cap)


class RateLimiter:
    """At most `per_minute` messages a minute across all connections, paced by the given clock."""

    def __init__(self, per_minute: int | None, clock: Clock, sleep: Sleep):
        self.spacing = timedelta(minutes=1) / per_minute if per_minute else None
        self.clock = clock
        self.sleep = sleep
        self.next_at: datetime | None = None

    async def wait(self) -> None:
        if self.spacing is None:
            return
        now = self.clock.now()
        at = max(now, self.next_at or now)
        self.next_at = at + self.spacing  # reserve the slot before awaiting: workers never share one
        delay = (at - now).total_seconds()
        if delay > 0:
            await self.sleep(delay)


async def deliver(
    store: StateStore,
    transport: Transport,
    clock: Clock,
    *,
    concurrency: int = 4,
    rate_per_minute: int | None = None,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
    max_attempts: int = 6,
    backoff: timedelta = timedelta(seconds=15),
    max_backoff: timedelta = timedelta(minutes=30),
    wait_retries: bool = True,
    poll: timedelta = timedelta(seconds=5),
    sleep: Sleep = asyncio.sleep,
) -> DeliveryReport:
    """Deliver the outbox. Without `stop`: until nothing is queued (waiting for retries if `wait_retries`).
    With `stop`: keep serving, polling for new rows every `poll`, until the event is set.

    Rows a crash left in `sending` are queued again first. A sent row is never claimed again, so a
    (mailing, recipient, revision) the server accepted is not sent twice. The one window SMTP cannot
    close: a server that accepts and then loses the connection before the reply reaches us; such a
    row is retried, and the stable Message-ID lets clients drop the copy.
    Raises TransportConfigError (bad login, untrusted certificate) after putting the row back.
    """
    with store.delivery_lease() as mine:
        if not mine:
            raise DeliveryBusyError(
                "another cyclogram process (the service, or a send) is delivering from this outbox; "
                "what is queued goes out through it"
            )
        return await _deliver(
            store, transport, clock, concurrency=concurrency, rate_per_minute=rate_per_minute, stop=stop,
            progress=progress, max_attempts=max_attempts, backoff=backoff, max_backoff=max_backoff,
            wait_retries=wait_retries, poll=poll, sleep=sleep,
        )  # fmt: skip


async def _deliver(
    store: StateStore,
    transport: Transport,
    clock: Clock,
    *,
    concurrency: int,
    rate_per_minute: int | None,
    stop: asyncio.Event | None,
    progress: Progress | None,
    max_attempts: int,
    backoff: timedelta,
    max_backoff: timedelta,
    wait_retries: bool,
    poll: timedelta,
    sleep: Sleep,
) -> DeliveryReport:
    report = DeliveryReport(recovered=store.recover(clock.now()))
    limiter = RateLimiter(rate_per_minute, clock, sleep)
    progress = progress or (lambda row, outcome, detail: None)

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    async def worker() -> None:
        conn: Connection | None = None
        try:
            while not stopping():
                # The rate's slot first, then the claim: a row's lease starts when it can go at once.
                await limiter.wait()
                rows = store.claim(clock.now(), 1)
                if not rows:
                    return
                row = rows[0]
                if row.in_doubt:
                    # Another deliverer's lease ran out (it died, perhaps after the server took it).
                    report.recovered += 1
                    log.warning("action=in-doubt mailing=%s to=%s (its deliverer stopped; sending again)",
                                row.mailing, row.recipient)  # fmt: skip
                try:
                    if conn is None:
                        conn = await transport.connect()
                    reply = await conn.send(row.sender, row.recipient, row.message, row.id)
                except TransientError as exc:
                    now = clock.now()
                    if row.attempts >= max_attempts:
                        reason = f"gave up after {row.attempts} attempts: {exc}"
                        store.mark_failed(row.id, now, reason)
                        report.failed += 1
                        report.failures.append((row.id, row.recipient, reason))
                        progress(row, "failed", reason)
                    else:
                        later = now + backoff_delay(row.attempts, backoff, max_backoff)
                        store.mark_retry(row.id, now, str(exc), later)
                        report.retried += 1
                        progress(row, "retry", str(exc))
                except PermanentError as exc:
                    store.mark_failed(row.id, clock.now(), str(exc))
                    report.failed += 1
                    report.failures.append((row.id, row.recipient, str(exc)))
                    progress(row, "failed", str(exc))
                except TransportConfigError as exc:
                    store.mark_retry(row.id, clock.now(), str(exc), clock.now())
                    raise
                else:
                    store.mark_sent(row.id, clock.now(), reply)
                    report.sent += 1
                    progress(row, "sent", reply)
        finally:
            if conn is not None:
                await conn.close()

    while not stopping():
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, concurrency)):
                group.create_task(worker())
        due = store.next_due()
        if due is None and stop is None:
            break
        if stop is None and not wait_retries:
            break
        wait = (due - clock.now()).total_seconds() if due is not None else poll.total_seconds()
        if stop is not None:
            wait = min(wait, poll.total_seconds())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
        elif wait > 0:
            await sleep(wait)
    report.pending = store.outbox_counts().get("queued", 0)
    return report
