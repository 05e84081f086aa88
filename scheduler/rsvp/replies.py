"""What one received reply means for the roster: matched to a meeting and a person, checked, recorded."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import datetime

from ..model import Meeting, Project
from ..store import PARTSTATS, Answer, StateStore
from .itip import ParsedMail, Reply, parse_mail

__all__ = ["HANDLED", "LEFT", "NOT_A_REPLY", "Matcher", "Outcome"]

# Outcomes of one message. HANDLED ones are done with (moved to the done folder); LEFT ones stay where
# they are for a person to look at; a message without any REPLY is none of our business.
HANDLED = ("recorded", "unchanged", "stale")
LEFT = ("unknown-meeting", "unknown-attendee", "forged", "unsupported", "malformed")
NOT_A_REPLY = "not-a-reply"
_SEQUENCE = re.compile(rb"^SEQUENCE:(\d+)\r?$", re.M)
_IMIP_KINDS = ("invitation", "agenda", "update", "cancellation")


@dataclass
class Outcome:
    """What became of one message: the overall verdict and one line per reply for the report."""

    verdict: str
    lines: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)


class Matcher:
    """Matches replies against one configuration and records them; one per fetch (it caches lookups)."""

    def __init__(self, project: Project, store: StateStore, now: datetime):
        from ..calendar import uid_for

        self.project, self.store, self.now = project, store, now
        self._by_uid = {uid_for(project, "meeting", m.id).lower(): m for m in project.meetings}
        self._invited: dict[str, dict[str, str]] = {}
        self._sent: dict[tuple[str, str], int | None] = {}

    def invited(self, meeting: Meeting) -> dict[str, str]:
        """The addresses (lower case) the meeting's mail goes to."""
        if meeting.id not in self._invited:
            self._invited[meeting.id] = {
                r.email.lower(): r.email for r in self.project.recipients(meeting.audience)
            }
        return self._invited[meeting.id]

    def sent_sequence(self, meeting: Meeting, attendee: str) -> int | None:
        """The highest SEQUENCE of the calendar messages delivered to `attendee` about the meeting."""
        key = (meeting.id, attendee)
        if key not in self._sent:
            sequences = [
                seq
                for row in self.store.sent_to(meeting.id, attendee)
                if row.kind in _IMIP_KINDS and (seq := _calendar_sequence(row.message)) is not None
            ]
            self._sent[key] = max(sequences) if sequences else None
        return self._sent[key]

    def apply(self, raw: bytes, source: str) -> Outcome:
        """Parse one message and record every reply in it that checks out."""
        parsed = parse_mail(raw)
        if not parsed.replies:
            if parsed.problems:
                return Outcome("malformed", list(parsed.problems))
            return Outcome(NOT_A_REPLY)
        verdicts: list[str] = []
        out = Outcome("recorded")
        for reply in parsed.replies:
            verdict, line, answer = self._one(parsed, reply, source)
            verdicts.append(verdict)
            out.lines.append(line)
            if answer is not None:
                out.answers.append(answer)
        out.lines.extend(parsed.problems)
        left = [v for v in verdicts if v in LEFT]
        # A damaged copy beside a good one (Gmail and Thunderbird send the calendar twice) is noted in
        # the lines; the message still counts as handled when every reply in it was.
        out.verdict = left[0] if left else next(v for v in HANDLED if v in verdicts)
        return out

    def _one(self, parsed: ParsedMail, reply: Reply, source: str) -> tuple[str, str, Answer | None]:
        meeting = self._by_uid.get(reply.uid.lower())
        what = f"{reply.attendee} {reply.partstat} for {reply.uid}"
        if meeting is None:
            return "unknown-meeting", f"{what}: no meeting has this UID", None
        invited = self.invited(meeting)
        if reply.attendee not in invited:
            return "unknown-attendee", f"{what}: {reply.attendee} was not invited to {meeting.id}", None
        if parsed.spoofed is not None:
            return "forged", f"{what}: the receiving server found the sender forged ({parsed.spoofed})", None
        if parsed.sender != reply.attendee:
            return (
                "forged",
                f"{what}: sent from {parsed.sender or 'no valid From'}, not by the attendee; not counted",
                None,
            )
        if reply.partstat not in PARTSTATS:
            return "unsupported", f"{what}: PARTSTAT {reply.partstat} is not an answer cyclogram counts", None
        latest = self.sent_sequence(meeting, reply.attendee)
        if latest is not None and reply.sequence is not None and reply.sequence < latest:
            return (
                "stale",
                f"{what}: answers SEQUENCE {reply.sequence}, older than the {latest} last sent; ignored",
                None,
            )
        at = min(reply.stamp or parsed.date or self.now, self.now)  # a client's clock ahead of ours
        answer = Answer(meeting.id, reply.attendee, reply.partstat, at, "imap", reply.sequence, source)
        changed = self.store.record_answer(answer)
        verdict = "recorded" if changed else "unchanged"
        return verdict, f"{what} ({meeting.id}): {verdict}", answer


def _calendar_sequence(message: bytes) -> int | None:
    msg = email.message_from_bytes(message, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found = _SEQUENCE.search(data)
                if found:
                    return int(found.group(1))
    return None
