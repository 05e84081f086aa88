"""The service's decisions: which mailings are due, missed or changed, on whatever clock it is given."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import review
from .changes import Change, describe_changes, meeting_snapshot
from .clock import Clock
from .config import LoadedConfig
from .console import human_duration
from .errors import ConfigError, CyclogramError
from .mailings import iter_compose, queue
from .model import Meeting, MeetingStatus, Project
from .plan import PlanEntry, build_plan
from .store import StateStore
from .translation import _, current_language
from .validation import validate_all

__all__ = ["Action", "Service", "config_fingerprint"]

log = logging.getLogger("cyclogram.service")


@dataclass(frozen=True)
class Action:
    """One thing the service did or decided, for the log and the simulation's timeline."""

    at: datetime
    what: str  # queued | missed | update | cancellation | waiting
    key: str
    kind: str
    meeting: str | None
    recipients: int
    detail: str = ""


@dataclass
class Service:
    """Holds the last good configuration and turns time passing and edits into queued mail.

    It only queues: the outbox delivers. So a crash after queueing loses nothing, and queueing the
    same mailing twice adds nothing (outbox rows are keyed by mailing, recipient and revision).
    """

    config_dir: Path
    store: StateStore
    clock: Clock
    loaded: LoadedConfig | None = None
    actions: list[Action] = field(default_factory=list)
    on_action: Callable[[Action], None] | None = None
    log_missed: bool = True  # off while `run` catches up: its first screen sums the missed up in one line

    @property
    def project(self) -> Project:
        if self.loaded is None:
            raise RuntimeError("the service has no configuration loaded")
        return self.loaded.project

    # -- configuration --------------------------------------------------------------------------------
    def load(self) -> LoadedConfig:
        """First load: a broken configuration is the caller's error to report."""
        self.loaded = validate_all(self.config_dir)
        return self.loaded

    def reload(self) -> bool:
        """Re-read after an edit; on error keep the last good model and say so. True if the model changed."""
        try:
            fresh = validate_all(self.config_dir)
        except ConfigError as exc:
            log.error(
                "action=reload result=rejected problems=%d (keeping the last good configuration)\n%s",
                len(exc.problems),
                exc,
            )
            return False
        except CyclogramError as exc:
            log.error("action=reload result=rejected (keeping the last good configuration): %s", exc)
            return False
        except Exception:  # a file half-written or hostile may trip the loader anywhere: refuse, keep going
            log.exception("action=reload result=rejected (keeping the last good configuration)")
            return False
        changed = self.loaded is None or fresh.project != self.project
        self.loaded = fresh
        log.info("action=reload result=%s", "changed" if changed else "unchanged")
        return changed

    # -- the plan -------------------------------------------------------------------------------------
    def plan(self, now: datetime | None = None) -> list[PlanEntry]:
        return build_plan(self.project, now or self.clock.now(), self.store.mailing_states())

    def next_wake(self, now: datetime | None = None) -> datetime | None:
        """The next instant something is planned: the scheduler's next job."""
        now = now or self.clock.now()
        entries = [e for e in self.plan(now) if e.state == "upcoming" and e.at > now]
        times = [e.at for e in entries]
        if review.review_enabled(self.project):  # a held mailing is drafted `review_days` ahead
            ahead = timedelta(days=self.project.settings.mailings.review_days)
            times += [e.at - ahead for e in entries if e.at - ahead > now and review.is_held(self.project, e)]
        return min(times) if times else None

    # -- what is due ----------------------------------------------------------------------------------
    def due(self, *, catching_up: bool = False) -> list[Action]:
        """Queue every mailing whose time has come; report the ones too late to be useful.

        On a normal wake-up everything due is on time. After downtime (`catching_up`), a mailing goes out
        only inside the policy's grace window and before its deadline (the meeting's start). A summary has no
        deadline (it is about a meeting that is over by nature): minutes made final late send it at once.
        """
        now = self.clock.now()
        grace = timedelta(hours=self.project.settings.mailings.catch_up_hours)
        # Drafts and the organiser's digest under one lock: of several instances, one tells the news.
        with self.store.mailing_lock("review/digest"):
            done: list[Action] = self._review(now)
        reviewing = review.review_enabled(self.project)
        for entry in self.plan(now):
            if entry.state != "past":
                continue
            # Several instances may fire the same job: the first composes under the mailing's lock, the
            # others then find it marked and add nothing (the outbox would drop their copies anyway).
            with self.store.mailing_lock(entry.key):
                if self.store.mailing_states().get(entry.key) is None:
                    action = self._due(entry, now, grace, catching_up, reviewing)
                    if action is not None:
                        done.append(action)
        return done

    def _due(
        self, entry: PlanEntry, now: datetime, grace: timedelta, catching_up: bool, reviewing: bool
    ) -> Action | None:
        late = now - entry.at
        too_late = entry.deadline is not None and now >= entry.deadline
        held = reviewing and review.is_held(self.project, entry)
        approved = review.gate(self.loaded, self.store, entry, now) if held and not too_late else None
        if held and approved is None and not too_late and late <= grace:
            return None  # a draft waits for its approval (`cyclogram approve`) while it can still go out
        # Approved after its time: it goes out only as a mailing caught up after downtime would.
        late_approval = approved is not None and approved > entry.at
        unapproved = held and approved is None
        if too_late or unapproved or ((catching_up or late_approval) and late > grace):
            self.store.mark_mailing(entry.key, "missed", now)
            reason = (
                _("its meeting has begun")
                if too_late
                else _("{late} late, beyond the catch-up window").format(late=_hours(late))
            )
            if unapproved:
                reason = (
                    _("it was not approved before its meeting began")
                    if too_late
                    else _("it was not approved within {grace} of its time").format(grace=_hours(grace))
                )
            return self._record(now, "missed", entry.key, entry.kind, entry.meeting, entry.recipients, reason)
        messages = iter_compose(self.loaded, entry.kind, entry=entry, store=self.store, now=now)
        queued = queue(self.store, self.loaded, messages, now=now)
        self.store.mark_mailing(entry.key, "sent", now)  # also when it reached nobody: it is done
        detail = _("{n} new").format(n=queued.added)
        if late > timedelta(minutes=5):
            detail += _(", {late} late").format(late=_hours(late))
        return self._record(now, "queued", entry.key, entry.kind, entry.meeting, queued.total, detail)

    def _review(self, now: datetime) -> list[Action]:
        """Draft the held mailings coming within `review_days`; tell the organiser what is new to review."""
        if not review.review_enabled(self.project):
            return []
        news = review.prepare(self.loaded, self.store, now)
        if not news:
            return []
        # The digest lists everything that waits (what is new prompts it), so one mail is the whole picture.
        fresh = {d.entry.key for d in news}
        waiting = [d for d in review.drafts(self.loaded, self.store, now) if d.state != "approved"]
        listed = sorted(waiting, key=lambda d: d.entry.key not in fresh) or news
        added = self.store.enqueue([review.digest_message(self.loaded, listed, now)], now)
        self.store.mark_notified([d.entry.key for d in news], now)
        detail = f"{len(news)} draft(s): " + ", ".join(d.entry.key for d in news)
        return [self._record(now, "digest", "review", review.DIGEST_KIND, None, added, detail)]

    # -- what changed ---------------------------------------------------------------------------------
    def react_to_changes(self) -> list[Action]:
        """Tell the invited schools about every meeting that moved or was cancelled since they were told."""
        now = self.clock.now()
        done: list[Action] = []
        for meeting in self.project.meetings:
            # What the schools were told is read under the meeting's lock: of several instances that see
            # the same edit, the first tells them and records it, the others then find nothing new.
            with self.store.mailing_lock(f"{meeting.id}/changes"):
                action = self._react(meeting, now)
            if action is not None:
                done.append(action)
        return done

    def _react(self, meeting: Meeting, now: datetime) -> Action | None:
        told = self.store.snapshot(meeting.id)
        if told is None:
            return None  # nobody has been invited yet: the invitation will carry the new facts
        current = meeting_snapshot(self.project, meeting)
        changes = describe_changes(told, current)
        if not changes:
            return None
        if self.project.meeting_end(meeting) <= now and told.get("status") == current["status"]:
            # Nothing is sent about a meeting that is over; keep the record straight for later edits.
            self.store.put_snapshot(meeting.id, current, now)
            return None
        cancelled = meeting.status is MeetingStatus.cancelled
        if cancelled and told.get("status") == MeetingStatus.cancelled.value:
            self.store.put_snapshot(meeting.id, current, now)
            return None
        kind = "cancellation" if cancelled else "update"
        rule = getattr(self.project.policy(meeting), kind)
        if rule.enabled and not review.change_may_go(self.loaded, self.store, meeting, kind, changes, now):
            return None  # held for review: the schools' record stays as it was until it goes out
        action = None
        if rule.enabled:
            messages = iter_compose(
                self.loaded, kind, meeting=meeting.id, store=self.store, now=now, changes=changes
            )
            queued = queue(self.store, self.loaded, messages, now=now, complete=False)
            detail = _("{n} new; ").format(n=queued.added) + _describe(changes)
            action = self._record(now, kind, f"{meeting.id}/{kind}", kind, meeting.id, queued.total, detail)
        self.store.put_snapshot(meeting.id, current, now)
        return action

    # -- instances sharing a store --------------------------------------------------------------------
    def check_peers(self, instance: str, seen_within: timedelta) -> dict[str, str]:
        """Record this instance's configuration fingerprint; return the live instances applying another.

        The caller says so loudly when a difference persists: instances on one store must plan from the
        same configuration, or each would tell the schools its own version of the facts.
        """
        now = self.clock.now()
        mine = config_fingerprint(self.project)
        others = self.store.note_instance(instance, mine, now)
        return {name: fp for name, (fp, seen) in others.items() if fp != mine and now - seen <= seen_within}

    def note(self, what: str, entry: PlanEntry, detail: str) -> Action:
        """Record a decision about a plan entry that queued nothing (e.g. a summary waiting for minutes)."""
        return self._record(
            self.clock.now(), what, entry.key, entry.kind, entry.meeting, entry.recipients, detail
        )

    def _record(
        self, at: datetime, what: str, key: str, kind: str, meeting: str | None, n: int, detail: str = ""
    ) -> Action:
        action = Action(at, what, key, kind, meeting, n, detail)
        self.actions.append(action)
        level = logging.INFO if self.log_missed or what != "missed" else logging.DEBUG
        log.log(
            level,
            "action=%s mailing=%s kind=%s recipients=%d%s",
            what,
            key,
            kind,
            n,
            f" detail={detail!r}" if detail else "",
        )
        if self.on_action:
            self.on_action(action)
        return action


def config_fingerprint(project: Project) -> str:
    """A short digest of the validated model: equal configurations, equal fingerprints."""
    return hashlib.sha256(project.model_dump_json().encode("utf-8")).hexdigest()[:16]


def _hours(delta: timedelta) -> str:
    return human_duration(delta, current_language())  # "2 years", not "54109 h"


def _describe(changes: list[Change]) -> str:
    return ", ".join(f"{c.field}: {_short(c.old)} -> {_short(c.new)}" for c in changes)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} items"
    return str(value)
