"""Compose a mailing: who gets it, one rendered message each, ready for the outbox in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import mime
from .changes import Change, describe_changes, meeting_snapshot
from .config import LoadedConfig
from .errors import CyclogramError, UnknownNameError, UnknownTargetError
from .messages import (
    IMIP_METHODS,
    build_message,
    finish_rendered,
    personal_context,
    render_templates,
    shared_context,
)
from .model import KINDS, MEETING_KINDS, ActionItem, KeyEvent, Meeting, MeetingStatus, Project, Recipient
from .plan import PlanEntry, build_plan, entry_recipients, mailing_key
from .splice import SkeletonCache, split_personal
from .store import NewMessage, StateStore
from .templating import mail_template_names, make_environment
from .tokens import feed_secret, private_feed_url
from .translation import _

__all__ = [
    "ANNOUNCING",
    "ANSWERABLE",
    "Queued",
    "Target",
    "UnknownRecipientError",
    "check_only",
    "compose",
    "count_recipients",
    "entries_for",
    "filter_recipients",
    "iter_compose",
    "outbox_id",
    "queue",
    "resolve_meeting",
]

# Kinds that tell the schools what the meeting is; after them, the snapshot records what they were told.
ANNOUNCING = ("invitation", "agenda", "update", "cancellation")
# Kinds whose mail carries the person's answer links (Yes / No / Maybe).
ANSWERABLE = ("invitation", "update", "rsvp_reminder")


@dataclass(frozen=True)
class Target:
    """What one mailing is about (a meeting, an action item of a meeting, or a key event occurrence)."""

    key: str
    kind: str
    meeting: Meeting | None
    action: ActionItem | None = None
    event: KeyEvent | None = None
    occurrence: datetime | None = None


def outbox_id(mailing: str, recipient: str, revision: int) -> str:
    """The outbox row of one (mailing, recipient, revision): the unit that is delivered exactly once."""
    return f"{mailing}|{recipient.lower()}|{revision}"


def resolve_meeting(project: Project, meeting_id: str) -> Meeting:
    try:
        return project.meeting(meeting_id)
    except KeyError:
        known = ", ".join(m.id for m in project.meetings) or _("none")
        raise UnknownNameError(
            _("no meeting {id!r}; known meetings: {known}").format(id=meeting_id, known=known)
        ) from None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownNameError(
            _("unknown mailing kind {kind!r}; known kinds: {known}").format(kind=kind, known=", ".join(KINDS))
        )


class UnknownRecipientError(UnknownNameError):
    """`--only` names no school and no address of the configuration: a mistake on the command line."""


def _some(ids: Iterable[str], limit: int = 10) -> str:
    """A few ids for a message: a network of a thousand schools should not fill the terminal."""
    listed = list(dict.fromkeys(ids))
    more = _(" and {n} more").format(n=len(listed) - limit) if len(listed) > limit else ""
    return (", ".join(listed[:limit]) or _("none")) + more


def check_only(project: Project, only: str | None) -> None:
    """Refuse an `only` that is neither a school id nor an address in participants.yaml."""
    if only is None:
        return
    wanted = only.strip().lower()
    if any(s.id == wanted for s in project.schools):
        return
    addresses = {c.email.lower() for s in project.schools for c in (s.head, *s.contacts)}
    addresses |= {t.contact.email.lower() for t in project.teams if t.contact}
    if wanted in addresses:
        return
    raise UnknownRecipientError(
        _("{only!r} is neither a school id nor an address in participants.yaml (schools: {schools})").format(
            only=only, schools=_some(s.id for s in project.schools)
        )
    )


def filter_recipients(project: Project, recipients: list[Recipient], only: str | None) -> list[Recipient]:
    """Narrow to one school (by id) or one mailbox (by address).

    A school narrows to the mailboxes that answer for it, each still getting their one message that names
    all their schools of this mailing (the same message whichever of them it was asked for by).
    """
    if only is None:
        return recipients
    check_only(project, only)
    wanted = only.strip().lower()
    picked = [r for r in recipients if wanted in (r.schools or (r.school,)) or r.email.lower() == wanted]
    if not picked:
        schools = _some(s for r in recipients for s in (r.schools or (r.school,)))
        raise UnknownTargetError(
            _("{only!r} does not receive this mailing (it goes to the schools: {schools})").format(
                only=only, schools=schools
            )
        )
    if any(s.id == wanted for s in project.schools):
        # The school's head first: `preview --school` shows the message its head gets.
        head = project.school(wanted).head.email.lower()
        picked.sort(key=lambda r: r.email.lower() != head)
    return picked


def entries_for(project: Project, kind: str, target: str, now: datetime) -> list[PlanEntry]:
    """Plan entries of an action or event reminder for a meeting (its action items) or a key event."""
    entries = [e for e in build_plan(project, now) if e.kind == kind and target in (e.meeting, e.event)]
    if kind == "event_reminder":
        coming = [e for e in entries if e.deadline is None or e.deadline >= now]
        entries = coming[:1]  # the next occurrence, not the whole year
    if not entries:
        known = {m.id for m in project.meetings} | {e.id for e in project.all_events()}
        error = UnknownTargetError if target in known else UnknownNameError
        raise error(_("no {kind} is planned for {target!r}").format(kind=kind, target=target))
    return entries


def _targets(
    project: Project, kind: str, meeting_id: str | None, entry: PlanEntry | None, now: datetime
) -> list[Target]:
    if entry is not None:
        meeting = resolve_meeting(project, entry.meeting) if entry.meeting else None
        action = event = occurrence = None
        if entry.kind == "action_reminder" and meeting is not None and meeting.minutes:
            action = next((a for a in meeting.minutes.action_items if a.id == entry.item), None)
            if action is None:
                raise UnknownTargetError(f"no action item {entry.item!r} in the minutes of {meeting.id!r}")
        if entry.kind == "event_reminder":
            event = next((e for e in project.all_events() if e.id == entry.event), None)
            if event is None:
                raise UnknownTargetError(f"no key event {entry.event!r}")
            occurrence = entry.deadline
        return [Target(entry.key, entry.kind, meeting, action, event, occurrence)]
    if meeting_id is None:
        raise UnknownTargetError(f"a {kind} mailing needs a meeting")
    if kind in MEETING_KINDS:
        return [Target(mailing_key(kind, meeting_id), kind, resolve_meeting(project, meeting_id))]
    targets: list[Target] = []
    for e in entries_for(project, kind, meeting_id, now):
        targets.extend(_targets(project, kind, None, e, now))
    return targets


def _recipients(project: Project, target: Target) -> list[Recipient]:
    if target.kind == "action_reminder" and target.meeting is not None and target.action is not None:
        entry = PlanEntry(
            target.occurrence or datetime.min, "action_reminder", target.meeting.id, None, target.action.id,
            0, target.key, None, "due",
        )  # fmt: skip
        return entry_recipients(project, entry)
    if target.event is not None:
        return project.recipients(target.event.audience)
    assert target.meeting is not None
    return project.recipients(target.meeting.audience)


def _check_meeting(kind: str, meeting: Meeting) -> None:
    """Refuse a mailing that contradicts the meeting's file, before anything is rendered."""
    cancelled = meeting.status == MeetingStatus.cancelled
    if kind == "cancellation" and not cancelled:
        raise CyclogramError(
            f"meeting {meeting.id!r} is not cancelled: "
            "set `status: cancelled` in its file, then send the cancellation"
        )
    if kind in ("invitation", "agenda", "reminder", "update", "rsvp_reminder") and cancelled:
        raise CyclogramError(f"meeting {meeting.id!r} is cancelled: send a cancellation instead of a {kind}")
    if kind == "summary" and not (meeting.minutes and meeting.minutes.final):
        raise CyclogramError(
            f"the minutes of {meeting.id!r} are not final: "
            "set `minutes.final: true` before sending the summary"
        )


def _feed_urls(loaded: LoadedConfig, store: StateStore) -> Callable[[str], str]:
    """Each school's private feed URL, for the mail to carry."""
    secret = feed_secret(store)
    return lambda school_id: private_feed_url(loaded.project, secret, "school", school_id)


def _documents(
    loaded: LoadedConfig, store: StateStore, meeting: Meeting | None, kind: str
) -> tuple[list[mime.Part], list[dict[str, Any]]]:
    """The meeting's documents for one mailing: MIME parts of those attached, and what the text says."""
    if meeting is None or kind not in MEETING_KINDS:
        return [], []
    from .documents import documents_of, plan_documents

    if not documents_of(meeting, kind):
        return [], []
    planned = plan_documents(loaded.directory, loaded.project, meeting, kind, feed_secret(store))
    parts = [mime.attachment(p.content_type, p.name, p.data) for p in planned if p.data is not None]
    return parts, [p.context() for p in planned]


def _answer_links(loaded: LoadedConfig, store: StateStore) -> Callable[[str, str], dict[str, str]]:
    """Each person's signed answer links for a meeting, for the mail to carry."""
    from .rsvp.links import answer_urls

    secret = feed_secret(store)
    return lambda meeting_id, email: answer_urls(loaded.project, secret, meeting_id, email)


def _revision(store: StateStore, key: str, recipient: str, base: int, resend: bool) -> int:
    if not resend:
        return base
    existing = [r.revision for r in store.outbox(mailing=key) if r.recipient.lower() == recipient.lower()]
    return max([base - 1, *existing]) + 1


def compose(
    loaded: LoadedConfig,
    kind: str,
    *,
    meeting: str | None = None,
    entry: PlanEntry | None = None,
    store: StateStore,
    now: datetime,
    only: str | None = None,
    changes: list[Change] | None = None,
    resend: bool = False,
) -> list[NewMessage]:
    """Every message of one mailing (or of a plan entry), rendered; see `iter_compose`."""
    return list(
        iter_compose(
            loaded, kind, meeting=meeting, entry=entry, store=store, now=now, only=only, changes=changes,
            resend=resend,
        )
    )  # fmt: skip


def count_recipients(
    loaded: LoadedConfig,
    kind: str,
    *,
    meeting: str,
    now: datetime,
    only: str | None = None,
    store: StateStore | None = None,
) -> int:
    """How many mailboxes a mailing reaches, without rendering anything (for a confirmation prompt).

    With `store`, an rsvp_reminder counts only those who have not answered (whom it goes to).
    """
    _check_kind(kind)
    project = loaded.project
    total = 0
    for target in _targets(project, kind, meeting, None, now):
        recipients = filter_recipients(project, _recipients(project, target), only)
        if store is not None and target.kind == "rsvp_reminder" and target.meeting is not None:
            from .rsvp.attendance import not_answered

            silent = not_answered(store, target.meeting.id, [r.email for r in recipients])
            recipients = [r for r in recipients if r.email.lower() in silent]
        total += len(recipients)
    return total


def iter_compose(
    loaded: LoadedConfig,
    kind: str,
    *,
    meeting: str | None = None,
    entry: PlanEntry | None = None,
    store: StateStore,
    now: datetime,
    only: str | None = None,
    changes: list[Change] | None = None,
    resend: bool = False,
) -> Iterator[NewMessage]:
    """Render the messages of one mailing one by one; consumed by `queue`, all or nothing.

    Raises UnknownTargetError for a wrong kind, meeting or `only`, TemplateProblem for a template that
    fails, HeaderInjectionError for a value that would break a header; nothing is queued in those cases.
    An `update` with nothing changed since the schools were last told returns no messages.
    """
    _check_kind(entry.kind if entry else kind)
    project = loaded.project
    env = make_environment(loaded.directory)
    feed_url = _feed_urls(loaded, store)
    answer_links = _answer_links(loaded, store)
    for target in _targets(project, entry.kind if entry else kind, meeting, entry, now):
        m = target.meeting
        if m is not None and target.kind in MEETING_KINDS:
            _check_meeting(target.kind, m)
        recipients = filter_recipients(project, _recipients(project, target), only)
        if target.kind == "rsvp_reminder" and m is not None:
            from .rsvp.attendance import not_answered

            silent = not_answered(store, m.id, [r.email for r in recipients])
            recipients = [r for r in recipients if r.email.lower() in silent]
        todo = changes
        if target.kind == "update":
            assert m is not None
            if todo is None:
                before = store.snapshot(m.id)
                if before is None:
                    raise CyclogramError(
                        f"nothing was announced about {m.id!r} yet: send the invitation first"
                    )
                todo = describe_changes(before, meeting_snapshot(project, m))
            if not todo and not resend:
                continue
        state = None
        method = IMIP_METHODS.get(target.kind)
        if method is not None:
            from .calendar import meeting_fingerprint, uid_for

            assert m is not None
            uid = uid_for(project, "meeting", m.id)
            state = store.event_state(uid, meeting_fingerprint(project, m), now)
        # An update or a cancellation is news each time: its revision is the event's SEQUENCE, so a second
        # move (or a cancel after an un-cancel) reaches everyone again, while a repeat of the same does not.
        base = state.sequence if target.kind in ("update", "cancellation") and state is not None else 0
        rule = getattr(project.policy(m), target.kind)
        attachments, documents = _documents(loaded, store, m, target.kind)
        templates: dict[str, bytes] = {}  # the calendar part per language, before it is addressed
        # What every reader of one language in one zone shares, built once; the templates rendered once
        # per group and shape where that is provably the same as per person (splice.py).
        shared: dict[tuple[str, str | None], dict[str, Any]] = {}
        skeletons = SkeletonCache(env)
        for r in recipients:
            revision = _revision(store, target.key, r.email, base, resend)
            urls = {s: feed_url(s) for s in r.schools or (r.school,)}  # every school the person answers for
            personal, local = personal_context(
                project, r, feed_urls=urls,
                rsvp=answer_links(m.id, r.email) if m is not None and target.kind in ANSWERABLE else None,
            )  # fmt: skip
            group = (r.language, local.key if local is not None else None)
            common = shared.get(group)
            if common is None:
                common = shared[group] = shared_context(
                    project, target.kind, r.language, local, meeting=m, action=target.action,
                    event=target.event, occurrence=target.occurrence, changes=todo, documents=documents,
                )  # fmt: skip
            name = rule.template or target.kind
            strings: list[str] = []
            shape = split_personal(personal, strings)
            skeleton = skeletons.get(tuple(mail_template_names(name, r.language)), group, common, shape)
            if skeleton is not None:
                rendered = finish_rendered(skeleton.fill(strings))
            else:
                rendered = render_templates(env, name, r.language, {**common, **personal})
            calendar = None
            if method is not None and state is not None and m is not None:
                from .imip import address_to, imip_template

                if r.language not in templates:
                    templates[r.language] = imip_template(
                        project, m, method=method, state=state, now=now, language=r.language, env=env,
                        secret=feed_secret(store),
                    )  # fmt: skip
                calendar = address_to(templates[r.language], r, method)
            msg = build_message(
                project, r, rendered, kind=target.kind, mailing=target.key, revision=revision,
                date=now, calendar=calendar, method=method, attachments=attachments,
            )  # fmt: skip
            yield (
                NewMessage(
                    id=outbox_id(target.key, r.email, revision),
                    mailing=target.key,
                    kind=target.kind,
                    meeting=m.id if m else None,
                    recipient=r.email,
                    revision=revision,
                    message=msg,
                    sender=project.settings.organizer.email,
                )
            )


@dataclass
class Queued:
    """What `queue` did: messages composed, how many were new to the outbox, and what they were about."""

    total: int = 0
    added: int = 0
    meetings: set[str] = field(default_factory=set)  # meetings the messages announced
    mailings: set[str] = field(default_factory=set)


def queue(
    store: StateStore,
    loaded: LoadedConfig,
    messages: Iterable[NewMessage],
    *,
    now: datetime,
    complete: bool = True,
) -> Queued:
    """Put composed messages in the outbox, streaming: one transaction, so a failure half-way (a template
    error at the 5,000th school) queues nothing, and only one message is held in memory at a time.
    Messages already there stay as they are.

    Afterwards the meetings announced are recorded as the schools now know them (the base of the next
    `update`), and, when the mailing went to everyone (`complete`), the plan marks it sent.
    """
    done = Queued()

    def noted(stream: Iterable[NewMessage]) -> Iterator[NewMessage]:
        for m in stream:
            done.total += 1
            done.mailings.add(m.mailing)
            if m.meeting and m.kind in ANNOUNCING:
                done.meetings.add(m.meeting)
            yield m

    done.added = store.enqueue(noted(messages), now)
    project = loaded.project
    for meeting_id in sorted(done.meetings):
        store.put_snapshot(meeting_id, meeting_snapshot(project, project.meeting(meeting_id)), now)
    if complete:
        for key in sorted(done.mailings):
            store.mark_mailing(key, "sent", now)
    return done
