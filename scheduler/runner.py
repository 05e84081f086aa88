"""`cyclogram run`: one asyncio process with the scheduler, the outbox, the feed server and the config watch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from .clock import Clock
from .delivery import DeliveryBusyError, deliver
from .errors import CyclogramError
from .service import Service
from .store import StateStore

__all__ = ["Runner"]

log = logging.getLogger("cyclogram.run")

BUSY_RETRY_SECONDS = 5.0


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

    def __post_init__(self) -> None:
        self.service = Service(self.config_dir, self.store, self.clock)
        self.stop = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        self.error: CyclogramError | None = None

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
            self.port = await self.server.start(self.host, self.port)
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.start()
        self.greet(project)

        self.service.due(catching_up=True)
        self.service.react_to_changes()
        tasks = [
            asyncio.create_task(self._loop(), name="cyclogram-loop"),
            asyncio.create_task(self._deliver(), name="cyclogram-outbox"),
        ]
        if self.watch:
            tasks.append(asyncio.create_task(self._watch(), name="cyclogram-watch"))
        tasks.append(asyncio.create_task(self._answers(), name="cyclogram-answers"))
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
        if self.error is not None:
            raise self.error
        return self.sent

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

    # -- the loop -------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        """Queue what is due whenever a job fires or the configuration changes; re-plan the jobs."""
        while not self.stop.is_set():
            self._schedule()
            await self._wake.wait()
            self._wake.clear()
            if not self.stop.is_set():
                self.service.due()

    async def _deliver(self) -> None:
        """The outbox worker: delivers what is queued (retries included) until told to stop."""
        while not self.stop.is_set():
            try:
                report = await deliver(
                    self.store, self.transport, self.clock, stop=self.stop, **self.delivery,
                    progress=lambda row, outcome, detail: log.info(
                        "action=%s mailing=%s to=%s%s", outcome, row.mailing, row.recipient,
                        f" reply={detail!r}" if outcome != "sent" else "",
                    ),
                )  # fmt: skip
            except DeliveryBusyError:
                # A `send` from the command line holds the outbox; take it over when it is done.
                log.info("action=outbox-wait reason='another process is delivering'")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=BUSY_RETRY_SECONDS)
                continue
            except (
                CyclogramError
            ) as exc:  # e.g. a refused login: stop, every row stays queued for the next run
                log.error("action=outbox-stopped error=%r", str(exc))
                self.error = exc
                self.stop.set()
                return
            if report.recovered:
                log.info("action=recover rows=%d (left in sending by an interrupted run)", report.recovered)
            self.sent += report.sent
            self.failed += report.failed

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
        self._scheduler.add_job(
            self._wake.set,
            DateTrigger(run_date=at),
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
        if not self.service.reload():
            return
        self.service.react_to_changes()
        self.service.due()
        if self.server is not None:
            self.server.update(self.service.project)
        self._wake.set()

    async def _watch(self) -> None:
        from watchfiles import awatch

        with contextlib.suppress(asyncio.CancelledError):
            async for _changes in awatch(self.config_dir, stop_event=self.stop, debounce=400, recursive=True):
                log.info("action=config-changed")
                self._reload()
