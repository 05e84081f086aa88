"""What the service says on the console: log times in the project's zone, durations as people say them."""

from __future__ import annotations

import errno
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta

from .errors import CyclogramError

__all__ = ["PortTakenError", "ZoneFormatter", "human_duration", "port_error", "setup_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def human_duration(delta: timedelta, language: str = "en") -> str:
    """ "2 years", "26 hours", "10 minutes"; Russian forms too («6 лет», «26 часов»).

    A unit is used from 1.5 of it up, so "26 hours late" stays exact where a day would round it.
    """
    return format_timedelta(delta, threshold=1.5, locale=language if language in ("ru", "en") else "en")


class ZoneFormatter(logging.Formatter):
    """Log times in the project's zone with its offset, as the organiser reads the plan."""

    def __init__(self, zone: ZoneInfo, fmt: str = LOG_FORMAT):
        super().__init__(fmt)
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, self.zone)
        return moment.strftime(datefmt or "%Y-%m-%dT%H:%M:%S%z")


def setup_logging(zone: ZoneInfo | None, verbose: bool = False) -> None:
    """Log to stderr, times in `zone` (UTC before a configuration names one)."""
    handler = logging.StreamHandler()
    handler.setFormatter(ZoneFormatter(zone or ZoneInfo("UTC")))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old.formatter, ZoneFormatter):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


class PortTakenError(CyclogramError, OSError):
    """The port to serve on is in use by another program (or not ours to take)."""


def port_error(exc: OSError, host: str, port: int) -> CyclogramError | None:
    """One line for a port that cannot be bound, naming it and how to choose another; None if not that."""
    if exc.errno == errno.EADDRINUSE:
        return PortTakenError(
            f"The port {port} on {host} is already in use by another program. "
            f"Choose another with --port (for example --port {port + 1 if port < 65535 else 8081}), "
            "or --port 0 for any free one."
        )
    if exc.errno == errno.EACCES:
        return PortTakenError(
            f"The port {port} on {host} needs administrator rights. Choose a port above 1023 with --port."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return PortTakenError(
            f"The address {host} does not belong to this machine. Choose another with --host."
        )
    return None
