"""The organiser's own view: a private page (outbox, drafts, coming weeks) and an all-items feed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .config import LoadedConfig
from .i18n import format_day
from .model import Project
from .plan import build_plan

if TYPE_CHECKING:
    from .store import StateStore

__all__ = [
    "COMING_DAYS",
    "organiser_context",
    "organiser_feed_path",
    "organiser_page_path",
    "organiser_token",
    "organiser_urls",
    "render_organiser",
    "resolve_organiser",
]

COMING_DAYS = 28  # the page's plan: the coming four weeks
_FAILURES_SHOWN = 50


def organiser_token(secret: str) -> str:
    """The organiser's token, from the feed secret: rotating it revokes the organiser's URLs too."""
    mac = hmac.new(secret.encode("utf-8"), b"organiser", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode("ascii").rstrip("=")


def organiser_page_path(secret: str) -> str:
    return f"/organiser/{organiser_token(secret)}/"


def organiser_feed_path(secret: str) -> str:
    return f"/organiser/{organiser_token(secret)}.ics"


def organiser_urls(project: Project, secret: str) -> tuple[str, str]:
    """(page URL, feed URL) under the project's base URL, as `feeds urls` prints them."""
    base = str(project.settings.base_url).rstrip("/")
    return base + organiser_page_path(secret), base + organiser_feed_path(secret)


def resolve_organiser(secret: str, path: str) -> str | None:
    """'page' or 'feed' when `path` is the organiser's with the right token (constant-time), else None."""
    if not path.startswith("/organiser/"):
        return None
    rest = path[len("/organiser/") :]
    if rest.endswith("/"):
        token, what = rest[:-1], "page"
    elif rest.endswith(".ics"):
        token, what = rest[: -len(".ics")], "feed"
    else:
        return None
    expected = organiser_token(secret).encode()
    return what if hmac.compare_digest(expected, token.encode("utf-8", "replace")) else None


def organiser_context(
    project: Project, store: StateStore, now: datetime, config_dir: Path | None
) -> dict[str, Any]:
    """What the page shows: outbox counts and failures, drafts waiting for review, the coming weeks."""
    from .review import drafts, review_enabled

    language = project.settings.language
    zone = project.zone()
    counts = store.outbox_counts()
    failed = store.outbox("failed")
    waiting: list[dict[str, Any]] = []
    if review_enabled(project) and config_dir is not None:
        loaded = LoadedConfig(directory=config_dir, project=project, meeting_files={})
        for d in drafts(loaded, store, now):
            if d.state != "approved":
                waiting.append(
                    {
                        "key": d.entry.key,
                        "kind": d.entry.kind,
                        "at": f"{d.entry.at.astimezone(zone):%Y-%m-%d %H:%M}",
                        "recipients": len(d.recipients),
                        "state": d.state,
                        "subject": d.subject,
                        "changes": list(d.changes),
                    }
                )
    horizon = now + timedelta(days=COMING_DAYS)
    coming = [
        {
            "day": format_day(e.at.astimezone(zone).date(), language),
            "time": f"{e.at.astimezone(zone):%H:%M}",
            "kind": e.kind,
            "about": e.meeting or e.event or "",
            "recipients": e.recipients,
            "state": e.state,
            "key": e.key,
        }
        for e in build_plan(project, now, store.mailing_states())
        if now <= e.at <= horizon or e.state in ("past", "due")
    ]
    return {
        "project": project,
        "language": language,
        "now": f"{now.astimezone(zone):%Y-%m-%d %H:%M %Z}",
        "counts": counts,
        "failed": [
            {
                "recipient": r.recipient,
                "mailing": r.mailing,
                "error": r.last_error or "",
                "at": f"{r.updated.astimezone(zone):%Y-%m-%d %H:%M}",
            }
            for r in failed[:_FAILURES_SHOWN]
        ],
        "failed_more": max(0, len(failed) - _FAILURES_SHOWN),
        "drafts": waiting,
        "coming": coming,
        "days": COMING_DAYS,
    }


def render_organiser(env: jinja2.Environment, context: dict[str, Any]) -> bytes:
    """The page, autoescaped like every HTML template of the environment."""
    return env.get_template("web/organiser.html").render(**context).encode("utf-8")
