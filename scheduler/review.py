"""Review before sending: drafts of held mailings, approvals tied to the content, the organiser's digest."""

from __future__ import annotations

import hashlib
import html
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .changes import Change, describe_changes, meeting_snapshot
from .config import LoadedConfig
from .errors import UnknownTargetError
from .mailings import _recipients, _targets, outbox_id
from .messages import Rendered, build_message, mail_context, render_templates
from .model import KINDS, MeetingStatus, Project, Recipient
from .plan import PlanEntry, build_plan
from .store import NewMessage, ReviewState, StateStore
from .templating import make_environment
from .tokens import feed_secret, private_feed_url

__all__ = [
    "DIGEST_KIND",
    "POLL_SECONDS",
    "Draft",
    "approve",
    "change_entries",
    "change_may_go",
    "digest_message",
    "drafts",
    "gate",
    "hold",
    "is_held",
    "prepare",
    "review_enabled",
    "review_marks",
    "too_late",
]

log = logging.getLogger("cyclogram.review")

DIGEST_KIND = "review_digest"
# How often a running service looks for approvals made from the command line (another process).
POLL_SECONDS = 30.0
_OPEN = ("upcoming", "past", "due")  # plan states of a mailing that has not gone out nor been missed


@dataclass(frozen=True)
class Draft:
    """One held mailing as the organiser reviews it."""

    entry: PlanEntry
    state: str  # draft | approved | held | withdrawn
    fingerprint: str
    recipients: tuple[str, ...]
    subject: str
    preview: str
    changes: tuple[str, ...]  # what changed in the meeting since its last mailing

    def as_json(self) -> dict[str, Any]:
        e = self.entry
        return {
            "key": e.key,
            "kind": e.kind,
            "meeting": e.meeting,
            "event": e.event,
            "item": e.item,
            "at": e.at.isoformat(),
            "review": self.state,
            "recipients": list(self.recipients),
            "subject": self.subject,
            "changes": list(self.changes),
            "fingerprint": self.fingerprint,
        }


def review_enabled(project: Project) -> bool:
    """Whether any mailing of the project may be held (then the service also polls for approvals)."""
    cached = project.__dict__.get("_review_enabled")  # asked at every wake-up; the model is immutable
    if cached is None:
        policies = [project.settings.mailings, *(project.policy(m) for m in project.meetings if m.mailings)]
        cached = any(p.review or any(getattr(p, k).review for k in KINDS) for p in policies)
        project.__dict__["_review_enabled"] = cached
    return bool(cached)


def is_held(project: Project, entry: PlanEntry) -> bool:
    """Whether this automatic mailing waits for approval: its kind's `review`, else the policy's."""
    meeting = project.meeting(entry.meeting) if entry.meeting else None
    policy = project.policy(meeting)
    rule = getattr(policy, entry.kind)
    return bool(rule.review if rule.review is not None else policy.review)


def _render(
    loaded: LoadedConfig, entry: PlanEntry, store: StateStore, changes: list[Change] | None = None
) -> tuple[str, tuple[str, ...], str, str]:
    """The fingerprint of a mailing's rendered content, its recipients, and the first one's subject and text.

    Rendered without the calendar part, which would record a SEQUENCE: drafting must change nothing.
    """
    project = loaded.project
    secret = feed_secret(store)
    # A running service asks again at every wake-up; the content is a function of the model (a reload
    # makes a new one), the changes told and the feed secret: render each once per model.
    cache: dict[tuple[Any, ...], tuple[str, tuple[str, ...], str, str]]
    cache = project.__dict__.setdefault("_review_renders", {})
    ident = (entry.key, entry.deadline, repr(changes), secret, str(loaded.directory))
    if ident not in cache:
        cache[ident] = _render_now(loaded, entry, secret, changes)
    return cache[ident]


def _render_now(
    loaded: LoadedConfig, entry: PlanEntry, secret: str, changes: list[Change] | None
) -> tuple[str, tuple[str, ...], str, str]:
    project = loaded.project
    env = make_environment(loaded.directory)
    digest = hashlib.sha256()
    recipients: list[str] = []
    subject = text = ""
    for target in _targets(project, entry.kind, entry.meeting, entry, entry.at):
        rule = getattr(project.policy(target.meeting), target.kind)
        for r in _recipients(project, target):
            urls = {s: private_feed_url(project, secret, "school", s) for s in r.schools or (r.school,)}
            context = mail_context(
                project, target.kind, r, meeting=target.meeting, action=target.action, event=target.event,
                occurrence=target.occurrence, changes=changes, feed_urls=urls,
            )  # fmt: skip
            rendered = render_templates(env, rule.template or target.kind, r.language, context)
            for part in (r.email.lower(), rendered.subject, rendered.text, rendered.html):
                digest.update(part.encode())
                digest.update(b"\0")
            if not recipients:
                subject, text = rendered.subject, rendered.text
            recipients.append(r.email)
    return digest.hexdigest()[:32], tuple(recipients), subject, text


def _changes(project: Project, store: StateStore, entry: PlanEntry) -> tuple[str, ...]:
    if entry.meeting is None:
        return ()
    meeting = project.meeting(entry.meeting)
    told = store.snapshot(meeting.id)
    return tuple(
        f"{c.field}: {_short(c.old)} -> {_short(c.new)}"
        for c in describe_changes(told, meeting_snapshot(project, meeting))
    )


def _short(value: Any) -> str:
    return f"{len(value)} items" if isinstance(value, list) else str(value)


def _held_entries(loaded: LoadedConfig, store: StateStore, now: datetime, *, window: bool) -> list[PlanEntry]:
    project = loaded.project
    ahead = timedelta(days=project.settings.mailings.review_days)
    return [
        e
        for e in build_plan(project, now, store.mailing_states())
        if e.state in _OPEN
        and is_held(project, e)
        and not too_late(project, e, now)
        and (not window or e.at <= now + ahead)
    ]


def too_late(project: Project, entry: PlanEntry, now: datetime) -> bool:
    """Past any use: its meeting has begun, or it is later than the catch-up window allows.

    The service reports such a mailing missed at its next wake-up; approving it would send nothing.
    """
    if entry.deadline is not None and now >= entry.deadline:
        return True
    return now - entry.at > timedelta(hours=project.settings.mailings.catch_up_hours)


def _draft(loaded: LoadedConfig, store: StateStore, entry: PlanEntry, known: ReviewState | None) -> Draft:
    fingerprint, recipients, subject, text = _render(loaded, entry, store, _news(loaded, store, entry))
    state = known.state if known and known.state != "sent" else "draft"
    if state == "approved" and known is not None and known.fingerprint != fingerprint:
        state = "withdrawn"  # approved content is no longer what would go out
    preview = "\n".join(text.strip().splitlines()[:8])
    return Draft(
        entry, state, fingerprint, recipients, subject, preview, _changes(loaded.project, store, entry)
    )


def drafts(loaded: LoadedConfig, store: StateStore, now: datetime) -> list[Draft]:
    """Every held mailing due within `review_days` (or overdue) that has not gone out, as it would be sent."""
    known = store.reviews()
    entries = [*_held_entries(loaded, store, now, window=True), *change_entries(loaded, store, now)]
    return [_draft(loaded, store, e, known.get(e.key)) for e in entries]


def _find(loaded: LoadedConfig, store: StateStore, now: datetime, key: str) -> PlanEntry:
    for e in [*_held_entries(loaded, store, now, window=False), *change_entries(loaded, store, now)]:
        if e.key == key:
            return e
    states = store.mailing_states()
    if key in states:
        raise UnknownTargetError(f"mailing {key!r} is {states[key]} already; there is nothing to review")
    project = loaded.project
    for e in build_plan(project, now, states):
        if e.key == key and is_held(project, e) and too_late(project, e, now):
            raise UnknownTargetError(
                f"mailing {key!r} was due at {e.at:%Y-%m-%d %H:%M %Z}: it is too late to send it now "
                f"(after its meeting began or more than {project.settings.mailings.catch_up_hours} hours late)"
            )
    raise UnknownTargetError(
        f"no mailing {key!r} waits for review; `cyclogram review` lists the drafts and their keys"
    )


def approve(
    loaded: LoadedConfig, store: StateStore, now: datetime, keys: Iterable[str] = (), *, every: bool = False
) -> list[Draft]:
    """Approve the content each draft has now; an edit that changes it later withdraws the approval.

    Every key is checked before anything is approved: one wrong key approves nothing.
    """
    if every:
        chosen = [d for d in drafts(loaded, store, now) if d.state != "approved"]
    else:
        known = store.reviews()
        chosen = [
            _draft(loaded, store, _find(loaded, store, now, k), known.get(k)) for k in dict.fromkeys(keys)
        ]
    for d in chosen:
        store.set_review(d.entry.key, "approved", d.fingerprint, now)
    return chosen


def hold(loaded: LoadedConfig, store: StateStore, now: datetime, key: str) -> Draft:
    """Hold a mailing: it does not go out until approved again."""
    entry = _find(loaded, store, now, key)
    draft = _draft(loaded, store, entry, store.review(key))
    store.set_review(key, "held", draft.fingerprint, now)
    return draft


def gate(loaded: LoadedConfig, store: StateStore, entry: PlanEntry, now: datetime) -> datetime | None:
    """When the service may send a held mailing: the instant of its approval, or None (it waits).

    An approval of content that has changed since is withdrawn here, so it is never sent unseen.
    """
    known = store.review(entry.key)
    if known is None or known.state != "approved":
        return None
    fingerprint = _render(loaded, entry, store)[0]
    if fingerprint != known.fingerprint:
        store.set_review(entry.key, "withdrawn", fingerprint, now)
        log.warning(
            "action=review-withdrawn mailing=%s reason='its content changed after approval'", entry.key
        )
        return None
    return known.updated


def prepare(loaded: LoadedConfig, store: StateStore, now: datetime) -> list[Draft]:
    """Draft what falls due within `review_days`, withdraw approvals an edit outdated; return what is news.

    News is a new draft, a draft whose content changed, or a withdrawn approval: the digest tells of them.
    """
    news: list[Draft] = []
    known = store.reviews()
    for d in drafts(loaded, store, now):
        before = known.get(d.entry.key)
        if before is None or before.state == "sent":
            store.set_review(d.entry.key, "draft", d.fingerprint, now)
        elif d.state == "withdrawn" and before.state == "approved":
            store.set_review(d.entry.key, "withdrawn", d.fingerprint, now)
            log.warning(
                "action=review-withdrawn mailing=%s reason='its content changed after approval'", d.entry.key
            )
        elif before.state in ("draft", "withdrawn") and before.fingerprint != d.fingerprint:
            store.set_review(d.entry.key, before.state, d.fingerprint, now)
        else:
            continue
        news.append(d)
    return news


# --- updates and cancellations: drafted when an edit makes them due, not ahead of a time ----------------------


def _news(loaded: LoadedConfig, store: StateStore, entry: PlanEntry) -> list[Change] | None:
    """The changes an update or a cancellation tells of (what the schools were told, against now)."""
    if entry.kind not in ("update", "cancellation") or entry.meeting is None:
        return None
    project = loaded.project
    meeting = project.meeting(entry.meeting)
    return describe_changes(store.snapshot(meeting.id), meeting_snapshot(project, meeting))


def change_entries(loaded: LoadedConfig, store: StateStore, now: datetime) -> list[PlanEntry]:
    """The held updates and cancellations an edit has made due, each keyed `<meeting>/<kind>`.

    The same decision as the service's `react_to_changes`, so `review` lists what it would send.
    """
    project = loaded.project
    out: list[PlanEntry] = []
    for meeting in project.meetings:
        told = store.snapshot(meeting.id)
        if told is None:
            continue
        current = meeting_snapshot(project, meeting)
        if not describe_changes(told, current):
            continue
        if project.meeting_end(meeting) <= now and told.get("status") == current["status"]:
            continue
        cancelled = meeting.status is MeetingStatus.cancelled
        if cancelled and told.get("status") == MeetingStatus.cancelled.value:
            continue
        kind = "cancellation" if cancelled else "update"
        if not getattr(project.policy(meeting), kind).enabled:
            continue
        count = len(project.recipients(meeting.audience))
        entry = PlanEntry(now, kind, meeting.id, None, None, count, f"{meeting.id}/{kind}", None, "due")
        if is_held(project, entry):
            out.append(entry)
    return out


def change_may_go(
    loaded: LoadedConfig, store: StateStore, meeting: Any, kind: str, changes: list[Change], now: datetime
) -> bool:
    """Whether an update or cancellation may be sent now: not held, or approved as it would go out.

    Once sent, its approval is spent (`sent`): the next edit is a new draft to approve.
    """
    project = loaded.project
    key = f"{meeting.id}/{kind}"
    entry = PlanEntry(now, kind, meeting.id, None, None, 0, key, None, "due")
    if not review_enabled(project) or not is_held(project, entry):
        return True
    known = store.review(key)
    if known is None or known.state != "approved":
        return False
    fingerprint = _render(loaded, entry, store, changes)[0]
    if fingerprint != known.fingerprint:
        store.set_review(key, "withdrawn", fingerprint, now)
        log.warning("action=review-withdrawn mailing=%s reason='its content changed after approval'", key)
        return False
    store.set_review(key, "sent", fingerprint, now)
    return True


def review_marks(store: StateStore) -> dict[str, str]:
    """Each reviewed mailing's state, for the plan's table and JSON."""
    return {k: r.state for k, r in store.reviews().items()}


# --- the organiser's digest ----------------------------------------------------------------------------------

_WORDS = {
    "ru": {
        "subject": "На проверке рассылок: {n}",
        "intro": "Рассылки ждут вашей проверки перед отправкой ({n}, получателей: {r}): {kinds}.",
        "item": "{key} — {kind}, {at}, получателей: {r}",
        "state": "Состояние: {state}",
        "changes": "Изменилось с прошлой рассылки: {changes}",
        "subject_line": "Тема: {subject}",
        "how": "Посмотреть: cyclogram review. Одобрить: cyclogram approve КЛЮЧ (или --all). Задержать: cyclogram hold КЛЮЧ.",
        "kinds": {"invitation": "приглашение", "agenda": "повестка", "reminder": "напоминание",
                  "update": "изменения", "cancellation": "отмена", "summary": "итоги",
                  "action_reminder": "напоминание о сроке", "event_reminder": "напоминание о мероприятии"},
        "states": {"draft": "ждёт одобрения", "withdrawn": "одобрение снято: содержание изменилось",
                   "approved": "одобрено", "held": "задержано"},
    },
    "en": {
        "subject": "Mailings for review: {n}",
        "intro": "Mailings wait for your review before they go out ({n}, to {r} recipients): {kinds}.",
        "item": "{key} — {kind}, {at}, to {r} recipients",
        "state": "State: {state}",
        "changes": "Changed since the last mailing: {changes}",
        "subject_line": "Subject: {subject}",
        "how": "See them: cyclogram review. Approve: cyclogram approve KEY (or --all). Hold: cyclogram hold KEY.",
        "kinds": {"action_reminder": "action reminder", "event_reminder": "event reminder"},
        "states": {"draft": "waits for approval", "withdrawn": "approval withdrawn: the content changed",
                   "approved": "approved", "held": "held"},
    },
}  # fmt: skip


def digest_message(loaded: LoadedConfig, news: list[Draft], now: datetime) -> NewMessage:
    """One message to the organiser: how many drafts wait, of which kinds, and a preview of each."""
    project = loaded.project
    settings = project.settings
    lang = settings.language
    w = _WORDS[lang]
    zone = project.zone()
    names = w["kinds"]
    kinds = ", ".join(f"{names.get(k, k)} × {n}" for k, n in Counter(d.entry.kind for d in news).items())
    total = sum(len(d.recipients) for d in news)
    text_lines = [w["intro"].format(n=len(news), r=total, kinds=kinds), ""]
    html_parts = [f"<p>{html.escape(text_lines[0])}</p>"]
    for d in news:
        e = d.entry
        head = w["item"].format(
            key=e.key,
            kind=names.get(e.kind, e.kind),
            at=f"{e.at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
            r=len(d.recipients),
        )
        lines = [
            w["state"].format(state=w["states"].get(d.state, d.state)),
            w["subject_line"].format(subject=d.subject),
        ]
        if d.changes:
            lines.append(w["changes"].format(changes="; ".join(d.changes)))
        text_lines += [head, *(f"  {x}" for x in lines), *(f"  | {x}" for x in d.preview.splitlines()), ""]
        html_parts.append(
            f"<h3>{html.escape(head)}</h3><p>{'<br>'.join(html.escape(x) for x in lines)}</p>"
            f'<pre style="white-space:pre-wrap;overflow-wrap:anywhere">{html.escape(d.preview)}</pre>'
        )
    text_lines.append(w["how"])
    html_parts.append(f"<p>{html.escape(w['how'])}</p>")
    rendered = Rendered(
        subject=w["subject"].format(n=len(news)),
        text="\n".join(text_lines) + "\n",
        html="\n".join(html_parts),
    )
    organizer = settings.organizer
    to = Recipient.model_construct(
        school="", schools=(), name=organizer.name, email=organizer.email, language=lang, person=None
    )
    ident = hashlib.sha256("\0".join(f"{d.entry.key}:{d.fingerprint}:{d.state}" for d in news).encode())
    mailing = f"review/{ident.hexdigest()[:16]}"  # the same news queues one digest, however often asked
    message = build_message(project, to, rendered, kind=DIGEST_KIND, mailing=mailing, revision=0, date=now)
    return NewMessage(
        id=outbox_id(mailing, organizer.email, 0),
        mailing=mailing,
        kind=DIGEST_KIND,
        meeting=None,
        recipient=organizer.email,
        revision=0,
        message=message,
        sender=organizer.email,
    )
