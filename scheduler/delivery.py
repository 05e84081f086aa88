"""The outbox worker: claim queued rows, hand them to the transport, record outcomes, retry with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock
from .errors import CyclogramError, DeliveryError
from .store import OutboxRow, StateStore
from .translation import _
from .transport import Connection, TransientError, Transport, TransportConfigError

__all__ = [
    "DELIVERY_ENV",
    "MAX_MESSAGE_BYTES",
    "STOPPED",
    "DeliveryBusyError",
    "DeliveryReport",
    "RateLimiter",
    "StoreFailure",
    "backoff_delay",
    "deliver",
    "delivery_options",
    "stopped_reason",
]

log = logging.getLogger("cyclogram.delivery")
log.addHandler(logging.NullHandler())  # the CLI prints its own lines; `run` configures logging

# Far above any real mailing (a letter with its calendar is a few dozen kB), below what servers refuse.
MAX_MESSAGE_BYTES = 20 * 2**20
# The last error of a row put back because the transport cannot work; `outbox` shows it as a stop.
STOPPED = "delivery stopped: "


class DeliveryBusyError(CyclogramError):
    """Another process holds the outbox's delivery lease."""


class StoreFailure(DeliveryError):
    """The state store could not record an outcome (locked past its timeout, gone, full)."""


def stopped_reason(rows: list[OutboxRow]) -> str | None:
    """Why delivery is stopped, if a queued row was put back by a configuration failure."""
    for row in rows:
        if row.status == "queued" and row.last_error and row.last_error.startswith(STOPPED):
            return row.last_error[len(STOPPED) :]
    return None


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
    concurrency: int = 16,
    rate_per_minute: int | None = None,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
    max_attempts: int = 6,
    backoff: timedelta = timedelta(seconds=15),
    max_backoff: timedelta = timedelta(minutes=30),
    wait_retries: bool = True,
    poll: timedelta = timedelta(seconds=5),
    sleep: Sleep = asyncio.sleep,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    on_recovered: Callable[[int], object] | None = None,
) -> DeliveryReport:
    """Deliver the outbox. Without `stop`: until nothing is queued (waiting for retries if `wait_retries`).
    With `stop`: keep serving, polling for new rows every `poll`, until the event is set.

    Rows a crash left in `sending` are queued again first (their count goes to `on_recovered` and
    the report: the server may have accepted them). A row is marked sent as soon as the server's reply
    is in, so a (mailing, recipient, revision) the server accepted is not sent twice, except a message in
    flight at a crash; it goes again with the same Message-ID, which lets clients drop the copy.
    Every failure is logged at ERROR with the server's reply. Raises TransportConfigError (bad login,
    untrusted certificate, refused connection) or StoreFailure after every worker has finished its
    own message and the claimed rows are back in the queue; never an ExceptionGroup.
    """
    with store.delivery_lease() as mine:
        if not mine:
            raise DeliveryBusyError(
                _(
                    "another cyclogram process (the service, or a send) is delivering from this outbox; "
                    "what is queued goes out through it"
                )
            )
        return await _deliver(
            store, transport, clock, concurrency=concurrency, rate_per_minute=rate_per_minute, stop=stop,
            progress=progress, max_attempts=max_attempts, backoff=backoff, max_backoff=max_backoff,
            wait_retries=wait_retries, poll=poll, sleep=sleep, max_message_bytes=max_message_bytes,
            on_recovered=on_recovered,
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
    max_message_bytes: int,
    on_recovered: Callable[[int], object] | None,
) -> DeliveryReport:
    try:
        recovered = store.recover(clock.now())
    except Exception as exc:
        raise _store_failure(exc) from exc
    report = DeliveryReport(recovered=recovered)
    if recovered:
        log.warning(
            "action=recover in_doubt=%d (left in `sending` by an unclean stop: the server may have "
            "accepted them; sent again with the same Message-ID)",
            recovered,
        )
        if on_recovered is not None:
            on_recovered(recovered)
    limiter = RateLimiter(rate_per_minute, clock, sleep)
    # The transport's own limit of sessions at once (SMTP: learnt from the relay); `concurrency` caps it.
    pool = getattr(transport, "pool", None)
    if pool is not None:
        pool.bound(concurrency)
    drained: list[bool] = []
    progress = progress or (lambda row, outcome, detail: None)
    # The first error that stops every worker; each worker ends its own transaction first, so a
    # configuration failure never cancels a message half-way through DATA.
    halted: list[CyclogramError] = []

    def stopping() -> bool:
        return bool(halted) or (stop is not None and stop.is_set())

    def halt(exc: CyclogramError) -> None:
        if not halted:
            halted.append(exc)

    def fail(row: OutboxRow, reason: str) -> None:
        store.mark_failed(row.id, clock.now(), reason)
        report.failed += 1
        report.failures.append((row.id, row.recipient, reason))
        log.error("action=failed mailing=%s to=%s reply=%r", row.mailing, row.recipient, reason)
        progress(row, "failed", reason)

    async def attempt(row: OutboxRow, conn: Connection | None) -> Connection | None:
        """One message: sent, retried later, failed for good, or the transport halts every worker."""
        size = len(row.message)
        if size > max_message_bytes:
            fail(row, f"the message is {_size(size)}, over the {_size(max_message_bytes)} cyclogram sends")
            return conn
        try:
            if conn is None:
                conn = await transport.connect()
            reply = await conn.send(row.sender, row.recipient, row.message, row.id)
        except DeliveryError as exc:
            error: DeliveryError = exc
        except Exception as exc:  # a transport that failed in a way it does not classify: try again later
            error = TransientError(f"{type(exc).__name__}: {exc}")
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            conn = None
        else:
            # Marked the moment the reply is in: the only window for a second copy is a crash between
            # the server's reply and this commit.
            store.mark_sent(row.id, clock.now(), reply)
            report.sent += 1
            progress(row, "sent", reply)
            return conn
        now = clock.now()
        if isinstance(error, TransportConfigError):
            store.mark_retry(row.id, now, f"{STOPPED}{error}", now)
            log.error("action=delivery-stopped reason=%r", str(error))
            halt(error)
        elif isinstance(error, TransientError) and row.attempts < max_attempts:
            later = now + backoff_delay(row.attempts, backoff, max_backoff)
            store.mark_retry(row.id, now, str(error), later)
            report.retried += 1
            log.error(
                "action=retry mailing=%s to=%s reply=%r next_attempt=%s",
                row.mailing, row.recipient, str(error), later.isoformat(timespec="seconds"),
            )  # fmt: skip
            progress(row, "retry", str(error))
        elif isinstance(error, TransientError):
            fail(row, f"gave up after {row.attempts} attempts: {error}")
        else:  # PermanentError, or any other refusal: retrying would get the same answer
            fail(row, str(error))
        return conn

    async def worker(index: int) -> None:
        conn: Connection | None = None
        row: OutboxRow | None = None
        try:
            while not stopping():
                if pool is not None and not pool.admits(index):
                    # More workers than sessions the server takes now: wait, holding neither row nor session.
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                        conn = None
                    if drained:
                        return
                    await pool.changed()
                    continue
                # The rate's slot first, then the claim: a row's lease starts when it can go at once.
                await limiter.wait()
                rows = store.claim(clock.now(), 1)
                if not rows:
                    drained.append(True)
                    return
                row = rows[0]
                if row.in_doubt:
                    # Another deliverer's lease ran out (it died, perhaps after the server took it).
                    report.recovered += 1
                    log.warning(
                        "action=in-doubt mailing=%s to=%s (its deliverer stopped; sending again, same Message-ID)",
                        row.mailing, row.recipient,
                    )  # fmt: skip
                conn = await attempt(row, conn)
                row = None
        except CyclogramError as exc:
            halt(exc)
        except asyncio.CancelledError:
            _put_back(store, row, clock.now(), "interrupted while sending")
            raise
        except Exception as exc:  # the state store failed (locked, gone, full): loud, never a traceback
            halt(_store_failure(exc))
        finally:
            if row is not None and halted:
                _put_back(store, row, clock.now(), str(halted[0]))
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            if pool is not None:
                pool.wake()  # a parked worker sees the run end

    while not stopping():
        drained.clear()
        workers = [asyncio.create_task(worker(index)) for index in range(max(1, concurrency))]
        await asyncio.gather(*workers)  # a worker never raises but to be cancelled
        if halted:
            break
        try:
            due = store.next_due()
        except Exception as exc:
            raise _store_failure(exc) from exc
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
    if halted:
        raise halted[0]
    try:
        report.pending = store.outbox_counts().get("queued", 0)
    except Exception as exc:
        raise _store_failure(exc) from exc
    return report


def _put_back(store: StateStore, row: OutboxRow | None, now: datetime, why: str) -> None:
    """Return a claimed row to the queue; if the store itself is failing, the next run's recover() will."""
    if row is None:
        return
    with contextlib.suppress(Exception):
        store.mark_retry(row.id, now, why, now)


def _store_failure(exc: Exception) -> DeliveryError:
    log.error("action=delivery-stopped reason='the state store failed' error=%r", f"{exc}")
    return StoreFailure(
        f"the state store failed ({type(exc).__name__}: {exc}); nothing more is sent until it works"
    )


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


# name, deliver()'s keyword, default, largest sensible value: a value beyond it is a typo, not a wish
DELIVERY_ENV = (
    ("CYCLOGRAM_SMTP_CONCURRENCY", "concurrency", 16, 100),
    ("CYCLOGRAM_SMTP_RATE", "rate_per_minute", None, 100_000),
    ("CYCLOGRAM_SMTP_MAX_ATTEMPTS", "max_attempts", 6, 100),
    ("CYCLOGRAM_SMTP_RETRY_SECONDS", "backoff", 15, 86_400),
)


def delivery_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """deliver()'s options from the environment; a zero, negative or absurd value is refused, not mended."""
    options: dict[str, Any] = {}
    for name, key, default, most in DELIVERY_ENV:
        text = (environ.get(name) or "").strip()
        if not text:
            options[key] = default
            continue
        try:
            value = int(text)
        except ValueError:
            raise DeliveryError(
                _("{name} must be a whole number, not {value!r}").format(name=name, value=text)
            ) from None
        if not 0 < value <= most:
            raise DeliveryError(
                _("{name} must be a positive whole number up to {most}, not {value}").format(
                    name=name, most=most, value=value
                )
            )
        options[key] = value
    options["backoff"] = timedelta(seconds=options["backoff"])
    return options
