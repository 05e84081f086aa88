"""Plain-text reports for the terminal: the plan table."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .plan import PlanEntry

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from .service import Action

__all__ = ["plan_table", "timeline_table"]

_MARKS = {
    "past": "past",
    "upcoming": "to come",
    "waiting": "waits for minutes",
    "sent": "sent",
    "missed": "missed",
    "due": "due",
}


def plan_table(entries: list[PlanEntry], now: datetime, reviews: dict[str, str] | None = None) -> str:
    """A fixed-width table of plan entries, with a line where `now` falls.

    `reviews` gives the review state of each held mailing (by key); it is shown after the plan state.
    """
    rows = [("when", "kind", "about", "to", "state")]
    now_row: int | None = None
    for e in entries:
        if now_row is None and e.at > now:
            now_row = len(rows)
        about = e.meeting or f"event {e.event}"
        if e.item:
            about += f" [{e.item}]"
        rows.append(
            (
                e.at.strftime("%Y-%m-%d %H:%M %Z"),
                e.kind,
                about,
                str(e.recipients),
                _MARKS.get(e.state, e.state)
                + (f", review: {reviews[e.key]}" if reviews and e.key in reviews else ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        if i == now_row:
            lines.append(f"--- now: {now.astimezone(entries[0].at.tzinfo):%Y-%m-%d %H:%M %Z} ---")
        lines.append(
            "  ".join(
                c.ljust(w) if j < 4 else c for j, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    past = sum(e.state in ("past", "sent", "missed") for e in entries)
    lines.append(f"{len(entries)} mailings: {past} past, {len(entries) - past} still to come")
    return "\n".join(lines)


def timeline_table(actions: list[Action], zone: ZoneInfo) -> str:
    """What a rehearsal did, one line per action, in the project's time."""
    if not actions:
        return "Nothing was due in this period."
    lines = []
    for a in actions:
        detail = f"  ({a.detail})" if a.detail else ""
        lines.append(
            f"{a.at.astimezone(zone):%Y-%m-%d %H:%M %Z}  {a.what:<12} {a.kind:<15} {a.key}  "
            f"{a.recipients} recipient(s){detail}"
        )
    return "\n".join(lines)
