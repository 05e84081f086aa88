"""What changed in a meeting since the schools were last told: a pure diff of two snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Meeting, Project

__all__ = ["Change", "describe_changes", "meeting_snapshot"]

# Fields whose change the invited schools must hear about, in the order a reader wants them.
WATCHED = ("status", "start", "end", "place", "online_url", "agenda", "title")


@dataclass(frozen=True)
class Change:
    """One field that moved: `field` is a key of WATCHED; old and new are snapshot values."""

    field: str
    old: Any
    new: Any


def meeting_snapshot(project: Project, meeting: Meeting) -> dict[str, Any]:
    """The part of a meeting that schools were told, as plain JSON-able data."""
    start, end = project.meeting_start(meeting), project.meeting_end(meeting)
    return {
        "title": meeting.title,
        "status": meeting.status.value,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "timezone": str(start.tzinfo),
        "place": meeting.place.one_line() if meeting.place else None,
        "online_url": str(meeting.online_url) if meeting.online_url else None,
        "agenda": [
            {
                "title": item.title,
                "start": item.start.strftime("%H:%M") if item.start else None,
                "end": item.end.strftime("%H:%M") if item.end else None,
                "speakers": [s.name for s in item.speakers],
            }
            for item in meeting.agenda
        ],
    }


def describe_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Change]:
    """The watched fields that differ between what was announced and what is planned now."""
    if old is None:
        return []
    return [Change(key, old.get(key), new.get(key)) for key in WATCHED if old.get(key) != new.get(key)]
