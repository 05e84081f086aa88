"""`cyclogram run`: one asyncio process with the scheduler, the outbox, the feed server and the config watch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from .clock import Clock, SystemClock
from .console import port_error
from .delivery import DeliveryBusyError, deliver
from .errors import CyclogramError, DeliveryError
from .review import POLL_SECONDS, review_enabled
from .service import Action, Service, config_fingerprint
from .store import StateStore

__all__ = ["Runner"]

log = logging.getLogger("cyclogram.run")

BUSY_RETRY_SECONDS = 5.0
PEER_CHECK_SECONDS = 60.0  # how often an instance compares its configuration with the others'
# While delivery is stopped (a refused login, an untrusted certificate, a failing store), the transport is
# tried again after the delivery backoff, doubling up to this; SIGHUP or an edit tries at once.
MAX_STOPPED_RETRY = timedelta(minutes=5)


@dataclass
class Runner:
    """Wires the service to real time: APScheduler jobs from the plan, SIGHUP and file edits, SIGTERM."""

    config_dir: Path
    store: StateStore
    clock: Clock
    transport: Any
    server: Any = None  # a FeedServer, or None to run without serving feeds
    host: str = "127.0.0.1"
    port: int = 8080
    echo: Callable[[str], None] = print
    watch: bool = True
    delivery: dict[str, Any] = field(default_factory=dict)  # deliver()'s options: concurrency, rate...
    peer_check: float = PEER_CHECK_SECONDS
    review_poll: float = POLL_SECONDS  # how often to look for approvals made by another process

    def __post_init__(self) -> None:
        self.service = Service(self.config_dir, self.store, self.clock)
        self.stop = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        self.error: CyclogramError | None = None
        self.problem: str | None = None  # why delivery is stopped; /healthz answers 503 with it
        self._retry_now = asyncio.Event()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the number of messages delivered."""
        self.service.load()
        project = self.service.project
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)

        if self.server is not None:
            self.server.update(project)
            self.server.health = lambda: self.problem
            try:
                self.port = await self.server.start(self.host, self.port)
            except OSError as exc:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
                raise (port_error(exc, self.host, self.port) or exc) from None
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.start()
        self.greet(project)

        self._guarded("catch-up", self.catch_up)
        self._guarded("changes", self.service.react_to_changes)
        tasks = [
            asyncio.create_task(self._loop(), name="cyclogram-loop"),
            asyncio.create_task(self._deliver(), name="cyclogram-outbox"),
        ]
        if self.watch:
            tasks.append(asyncio.create_task(self._watch(), name="cyclogram-watch"))
        tasks.append(asyncio.create_task(self._answers(), name="cyclogram-answers"))
        tasks.append(asyncio.create_task(self._peers(), name="cyclogram-peers"))
        try:
            await self.stop.wait()
        finally:
            log.info("action=shutdown reason=signal (finishing the SMTP transactions in flight)")
            self._wake.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._scheduler.shutdown(wait=False)
            if self.server is not None:
                await self.server.stop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            log.info("action=stopped sent=%d failed=%d", self.sent, self.failed)
            self.echo(f"Stopped. Delivered {self.sent} message(s) in this run, {self.failed} failed.")
        if self.problem is not None:
            raise DeliveryError(f"delivery was stopped: {self.problem}")
        if self.error is not None:
            raise self.error
        return self.sent

    def _guarded(self, what: str, step: Callable[[], object]) -> bool:
        """Run one step of the service; a failure is logged loudly and the service goes on."""
        try:
            step()
        except CyclogramError as exc:
            log.error("action=%s result=failed error=%r", what, str(exc))
            return False
        except Exception:  # a bug must not silence the service: log it whole, keep serving
            log.exception("action=%s result=failed", what)
            return False
        return True

    def greet(self, project: Any) -> None:
        """Tell whoever started the service what it will do next, or how to rehearse a finished year."""
        now = self.clock.now()
        entries = self.service.plan(now)
        upcoming = [e for e in entries if e.state in ("upcoming", "waiting") and e.at > now]
        if self.server is not None:
            self.echo(f"Serving the feeds at http://{self.host}:{self.port}/")
        if upcoming:
            nxt = upcoming[0]
            self.echo(
                f"{len(upcoming)} mailing(s) still to come; next: {nxt.kind} about "
                f"{nxt.meeting or nxt.event} at {nxt.at:%Y-%m-%d %H:%M %Z} to {nxt.recipients} recipient(s). "
                "`cyclogram plan` shows them all."
            )
        else:
            year = project.settings.school_year
            self.echo(
                f"The school year {year.label()} has no mailing left to send. Rehearse it with:\n"
                f"  cyclogram simulate --from {year.first_day} --to {year.last_day}"
            )

    def catch_up(self) -> list[Action]:
        """What was due while the service was down: sent if still useful; the missed told in one line."""
        self.service.log_missed = False
        try:
            actions = self.service.due(catching_up=True)
        finally:
            self.service.log_missed = True
        missed = sum(a.what == "missed" for a in actions)
        if missed:
            log.info("action=missed-summary count=%d", missed)
            if missed == 1:
                self.echo("1 past mailing was not sent; `cyclogram plan` shows it.")
            else:
                self.echo(f"{missed} past mailings were not sent; `cyclogram plan` shows them.")
        return actions

    # -- the loop -------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        """Queue what is due whenever a job fires or the configuration changes; re-plan the jobs."""
        while not self.stop.is_set():
            self._schedule()
            # Approvals are made by `cyclogram approve` in another process: with review on, look again.
            poll = self.review_poll if review_enabled(self.service.project) else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)
            self._wake.clear()
            if not self.stop.is_set():
                self._guarded("due", self.service.due)

    def _in_doubt(self, n: int) -> None:
        self.echo(
            f"{n} message(s) were in doubt after an unclean stop (left in `sending`; the server may have "
            "accepted them): sending them again, with the same Message-ID."
        )

    def _progress(self, row: Any, outcome: str, detail: str) -> None:
        if outcome == "sent":
            self.sent += 1
            if self.problem is not None:
                log.info("action=delivery-resumed")
                self.problem = None
        elif outcome == "failed":
            self.failed += 1
        log.info(
            "action=%s mailing=%s to=%s%s", outcome, row.mailing, row.recipient,
            f" reply={detail!r}" if outcome != "sent" else "",
        )  # fmt: skip

    async def _deliver(self) -> None:
        """The outbox worker: delivers what is queued (retries included) until told to stop.

        A failure that stops delivery keeps the service up: it is logged at ERROR, shown by /healthz
        and `outbox`, and the transport is tried again with backoff until it works.
        """
        pause = self.delivery.get("backoff", timedelta(seconds=15))
        while not self.stop.is_set():
            try:
                if self.problem is not None and hasattr(self.transport, "check"):
                    await self.transport.check()  # raises while the setting is still wrong
                    log.info("action=delivery-resumed (the transport works again)")
                    self.problem = None
                await deliver(
                    self.store, self.transport, self.clock, stop=self.stop, **self.delivery,
                    progress=self._progress, on_recovered=self._in_doubt,
                )  # fmt: skip
                pause = self.delivery.get("backoff", timedelta(seconds=15))
                continue
            except DeliveryBusyError:
                # A `send` from the command line holds the outbox; take it over when it is done.
                log.info("action=outbox-wait reason='another process is delivering'")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=BUSY_RETRY_SECONDS)
                continue
            except CyclogramError as exc:  # a refused login, an untrusted certificate, a failing store
                self.problem = str(exc)
            except Exception as exc:  # a bug: loud, and the service stays up to serve and retry
                log.exception("action=outbox-failed")
                self.problem = f"{type(exc).__name__}: {exc}"
            log.error(
                "action=outbox-stopped reason=%r retry_in=%ds (every message stays queued)",
                self.problem, pause.total_seconds(),
            )  # fmt: skip
            await self._pause(pause)
            pause = min(pause * 2, MAX_STOPPED_RETRY)

    async def _pause(self, pause: timedelta) -> None:
        """Wait before trying a stopped transport again; SIGHUP or an edit ends the wait at once."""
        self._retry_now.clear()
        waits = [asyncio.create_task(self.stop.wait()), asyncio.create_task(self._retry_now.wait())]
        try:
            await asyncio.wait(waits, timeout=pause.total_seconds(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def _peers(self) -> None:
        """Compare this instance's configuration with the other live instances' on the same store.

        An edit reaches instances a moment apart, so only a difference seen on two checks in a row is
        reported, at ERROR: instances planning from different files tell the schools different facts.
        """
        instance = f"{socket.gethostname()}:{os.getpid()}"
        window = timedelta(seconds=3 * self.peer_check)
        reported: dict[str, str] = {}
        previous: dict[str, str] = {}
        while not self.stop.is_set():
            try:
                differ = self.service.check_peers(instance, window)
            except CyclogramError as exc:
                log.error("action=peer-check error=%r", str(exc))
                differ = {}
            for name, fp in differ.items():
                if previous.get(name) == fp and reported.get(name) != fp:
                    log.error(
                        "action=config-mismatch instance=%s its_config=%s this_config=%s (instances on one "
                        "store must run the same configuration: deploy the same files to every one)",
                        name, fp, config_fingerprint(self.service.project),
                    )  # fmt: skip
                    reported[name] = fp
            previous = differ
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.peer_check)

    def _schedule(self) -> None:
        """One APScheduler job per upcoming mailing, derived from the plan each time it may have changed."""
        assert self._scheduler is not None
        self._scheduler.remove_all_jobs()
        now = self.clock.now()
        for entry in self.service.plan(now):
            if entry.state == "upcoming" and entry.at > now:
                self._add_job(entry.key, entry.at)

    def _add_job(self, job_id: str, at: datetime) -> None:
        assert self._scheduler is not None
        # APScheduler keeps the wall clock; the service may run on a shifted one (`--now`). A job fires
        # when the service's clock reaches `at`: the same distance ahead on the wall clock.
        wall = SystemClock().now() + (at - self.clock.now())
        self._scheduler.add_job(
            self._wake.set,
            DateTrigger(run_date=wall),
            id=job_id,
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _answers(self) -> None:
        """Every few minutes, the invitation replies in the organiser's mailbox (when IMAP is set up)."""
        from .rsvp.imap import fetch_answers, imap_settings

        try:
            settings = imap_settings()
        except CyclogramError as exc:
            log.error("action=answers-off error=%r", str(exc))
            return
        if settings is None:
            return
        log.info("action=answers-on mailbox=%r every=%ds", settings.describe(), settings.interval)
        while not self.stop.is_set():
            try:
                report = await asyncio.to_thread(
                    fetch_answers, self.service.project, self.store, self.clock.now(), settings
                )
                log.info("action=answers-fetched %s", report.summary())
            except Exception as exc:  # a mailbox that is down must never stop the mailings
                log.error("action=answers-failed error=%r", str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=settings.interval)

    # -- edits ----------------------------------------------------------------------------------------
    def _on_hup(self) -> None:
        log.info("action=sighup")
        self._reload()

    def _reload(self) -> None:
        """Apply an edit; whatever it holds, the service keeps the last good model and keeps running."""
        self._retry_now.set()  # a stopped transport is tried again at once
        previous = self.service.loaded
        if not self.service.reload():
            return
        applied = self._guarded("reload-apply", self._apply)
        if not applied and previous is not None:
            log.error("action=reload result=rejected (keeping the last good configuration)")
            self.service.loaded = previous
        self._wake.set()

    def _apply(self) -> None:
        if self.server is not None:
            self.server.update(
                self.service.project
            )  # first: it builds every feed, so it meets bad data first
        self.service.react_to_changes()
        self.service.due()

    async def _watch(self) -> None:
        from watchfiles import awatch

        while not self.stop.is_set():
            try:
                async for _changes in awatch(
                    self.config_dir, stop_event=self.stop, debounce=400, recursive=True
                ):
                    log.info("action=config-changed")
                    self._reload()
                return
            except asyncio.CancelledError:
                return
            except Exception:  # e.g. the folder was removed and put back: watch again, loudly
                log.exception("action=watch result=failed (watching again)")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=BUSY_RETRY_SECONDS)
