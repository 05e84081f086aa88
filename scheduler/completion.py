"""Shell completion of kinds, meeting, event and school ids and mailing keys, read quietly from the config."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from .model import KINDS, Project

__all__ = ["complete_keys", "complete_kinds", "complete_schools", "complete_targets", "quiet_project"]


def _config_dir(ctx: Any) -> Path:
    """The --config of the command line being completed, else $CYCLOGRAM_CONFIG, else ./config."""
    root = ctx.find_root() if ctx is not None else None
    given = root.params.get("config") if root is not None and root.params else None
    return Path(given or os.environ.get("CYCLOGRAM_CONFIG") or "config")


def quiet_project(ctx: Any) -> Project | None:
    """The configuration's model, or None: a broken or missing configuration completes nothing, silently.

    Completion runs inside the user's shell at every Tab: nothing may be printed, nothing may raise.
    """
    from .config import load_config

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return load_config(_config_dir(ctx)).project
    except Exception:  # any failure of any kind: the shell gets no candidates, never a traceback
        return None
    finally:
        logging.disable(previous)


def _starting(values: list[str], incomplete: str) -> list[str]:
    return [v for v in dict.fromkeys(values) if v.startswith(incomplete)]


def complete_kinds(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """The mailing kinds (no configuration needed)."""
    return _starting(list(KINDS), incomplete)


def complete_targets(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """Meeting ids; for an event reminder, key event ids (the kind typed before decides)."""
    project = quiet_project(ctx)
    if project is None:
        return []
    kind = (ctx.params or {}).get("kind") if ctx is not None else None
    if kind == "event_reminder":
        return _starting([e.id for e in project.all_events()], incomplete)
    return _starting([m.id for m in project.meetings], incomplete)


def complete_schools(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """School ids (an address is typed, not completed)."""
    project = quiet_project(ctx)
    return [] if project is None else _starting([s.id for s in project.schools], incomplete)


def complete_keys(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """Keys of the mailings that may be held for review, as `plan --json` names them."""
    project = quiet_project(ctx)
    if project is None:
        return []
    from .clock import SystemClock
    from .plan import build_plan
    from .review import is_held

    # The plan's keys do not depend on the instant; the clock only marks past and upcoming.
    entries = build_plan(project, SystemClock().now())
    return _starting([e.key for e in entries if is_held(project, e)], incomplete)
