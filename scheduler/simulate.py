"""A rehearsal of the year: the service's own planning and delivery, driven by a virtual clock."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from .clock import FixedClock
from .delivery import deliver
from .errors import CyclogramError
from .progress import NoProgress, Progress
from .service import Action, Service
from .store import StateStore
from .translation import _
from .validation import validate_all

__all__ = ["MARKER", "Rehearsal", "prepare_scratch", "simulate"]

# Left in every folder a rehearsal makes: the only folders it will ever empty again.
MARKER = ".cyclogram-simulation"


def prepare_scratch(path: Path, what: str, known: frozenset[str] = frozenset()) -> Path:
    """An empty folder for a rehearsal's `what`, made by a rehearsal: new, empty, or one made before.

    A folder holding anything a rehearsal did not make is refused, never emptied: it may be someone's mail.
    `known` names what an older rehearsal, from before the marker, left there.
    """
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CyclogramError(
            _("{path} is not a folder a rehearsal made; name a new folder for the {what}").format(
                path=path, what=_(what)
            )
        )
    if path.is_dir():
        entries = list(path.iterdir())
        ours = (path / MARKER).is_file() or (known and {e.name for e in entries} <= known)
        if entries and not ours:
            raise CyclogramError(
                _(
                    "{path} is not empty and was not made by `cyclogram simulate`: nothing in it is touched; "
                    "name a new or empty folder for the {what}"
                ).format(path=path, what=_(what))
            )
        for entry in entries:  # what an earlier rehearsal made: it starts from nothing again
            if entry.name == MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / MARKER).write_text("made by cyclogram simulate; emptied by the next rehearsal\n")
    except OSError as exc:
        raise CyclogramError(
            _("cannot make the rehearsal's folder {path}: {reason}").format(path=path, reason=exc)
        ) from None
    return path


@dataclass
class Rehearsal:
    """What a simulated period sent: the service's actions in order, and the outbox's final counts."""

    actions: list[Action] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    failed: int = 0


async def simulate(
    config_dir: Path,
    store: StateStore,
    transport: Any,
    start: date,
    end: date,
    *,
    on_action: Any = None,
    max_steps: int = 100_000,
    progress: Progress | None = None,
) -> Rehearsal:
    """Run the service from the start of `start` to the end of `end` on a virtual clock.

    At each instant something is planned (or an outbox retry is due) the clock jumps there, the service
    queues what is due exactly as `run` would, and the outbox delivers it through `transport`.
    """
    if end < start:
        raise CyclogramError(_("the simulation ends before it starts"))
    loaded = validate_all(config_dir)
    zone = loaded.project.zone()
    first = datetime.combine(start, time(0), tzinfo=zone)
    last = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    clock = FixedClock(first)
    service = Service(config_dir, store, clock, loaded=loaded, on_action=on_action)
    result = Rehearsal()
    progress = progress or NoProgress()
    progress.start((end - start).days + 1)  # days of the period, as the virtual clock passes them
    store.recover(clock.now())
    service.due(catching_up=True)  # what was planned before the start: caught up or reported missed
    for _step in range(max_steps):
        # The virtual clock does not move while delivering: retries wait for the next step instead.
        report = await deliver(store, transport, clock, wait_retries=False)
        result.delivered += report.sent
        result.failed += report.failed
        candidates = [t for t in (service.next_wake(), store.next_due()) if t is not None and t > clock.now()]
        if not candidates or min(candidates) >= last:
            break
        clock.set(min(candidates))
        progress.update((clock.now().date() - start).days)
        service.due()
    else:  # pragma: no cover - a guard against a plan that never ends
        raise CyclogramError(_("the simulation did not settle in {steps} steps").format(steps=max_steps))
    for entry in service.plan():
        if entry.state == "waiting" and entry.at < last:
            service.note("waiting", entry, _("its minutes are not final: the summary goes out when they are"))
    result.actions = service.actions
    result.counts = store.outbox_counts()
    return result
