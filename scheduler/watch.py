"""Watch the configuration directory and hand each valid new model to a callback."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import awatch

from .config import LoadedConfig, load_config
from .errors import CyclogramError

__all__ = ["reload_config", "watch_config"]

log = logging.getLogger(__name__)

OnChange = Callable[[LoadedConfig], Awaitable[None] | None]


def reload_config(directory: Path) -> LoadedConfig | None:
    """Load the configuration again; a broken edit is logged and gives None (the last good one stays)."""
    try:
        return load_config(directory)
    except CyclogramError as exc:
        log.error("configuration change ignored, keeping the last good one:\n%s", exc)
        return None
    except Exception:  # a half-written file can trip the loader anywhere; the service must not stop
        log.exception("configuration change ignored, keeping the last good one")
        return None


async def watch_config(
    directory: Path,
    on_change: OnChange,
    *,
    stop_event: asyncio.Event | None = None,
    debounce_ms: int = 300,
    force_polling: bool | None = None,
) -> None:
    """Until `stop_event` is set: after each batch of file changes, reload and call `on_change` if valid.

    Nothing an edit holds stops the watch: a refused model is logged at ERROR with its problems and the
    last good one stays; a later good edit is applied.
    """
    stop_event = stop_event or asyncio.Event()
    while not stop_event.is_set():
        try:
            async for changes in awatch(
                directory, stop_event=stop_event, debounce=debounce_ms, force_polling=force_polling,
                recursive=True,
            ):  # fmt: skip
                log.info("configuration changed (%d file(s)), reloading", len(changes))
                loaded = reload_config(directory)
                if loaded is not None:
                    await _apply(on_change, loaded)
            return
        except Exception:  # the folder vanished, the watch failed: say so and watch again
            log.exception("watching %s failed; watching again", directory)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=2)


async def _apply(on_change: OnChange, loaded: LoadedConfig) -> None:
    try:
        result = on_change(loaded)
        if inspect.isawaitable(result):
            await result
    except CyclogramError as exc:
        log.error("could not apply the new configuration, keeping the last good one: %s", exc)
    except Exception:
        log.exception("could not apply the new configuration, keeping the last good one")
