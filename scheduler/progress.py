"""Progress of long work: a bar with rate and time left on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TextIO

from .translation import _

__all__ = ["BarProgress", "LineProgress", "NoProgress", "Progress", "progress_for"]


class Progress(Protocol):
    """What the core tells about long work; the command line chooses how it is shown."""

    def start(self, total: int) -> None: ...

    def update(self, done: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Says nothing (the service, the tests of the core)."""

    def start(self, total: int) -> None:
        pass

    def update(self, done: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


def _clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Counting:
    """Done out of total, and from the time taken the rate and the time left."""

    def __init__(self, label: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.label, self.stream, self.clock = label, stream, clock
        self.total = 0
        self.done = 0
        self.started = clock()

    def start(self, total: int) -> None:
        self.total, self.done, self.started = max(0, total), 0, self.clock()
        self._show(force=True)

    def update(self, done: int) -> None:
        self.done = min(max(done, self.done), self.total) if self.total else max(done, self.done)
        self._show()

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def left(self) -> str:
        rate = self.rate()
        return _clock_text((self.total - self.done) / rate) if rate > 0 else "?"

    def _show(self, force: bool = False) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError


class BarProgress(_Counting):
    """A bar redrawn in place (at most ten times a second): label, bar, done/total, rate, time left."""

    WIDTH = 28

    def __init__(self, label: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        super().__init__(label, stream, clock)
        self._drawn = float("-inf")

    def _show(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._drawn < 0.1 and self.done < self.total:
            return
        self._drawn = now
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = _("{label} [{bar}] {done}/{total}  {rate:.1f}/s  {left} left").format(
            label=self.label, bar=bar, done=self.done, total=self.total, rate=self.rate(), left=self.left()
        )
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        self._show(force=True)
        self.stream.write("\n")
        self.stream.flush()


class LineProgress(_Counting):
    """A line every `interval` seconds (a log, a pipe, a service manager), and one at the end if any was."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 5.0,
    ):
        super().__init__(label, stream, clock)
        self.interval = interval
        self._last = self.started
        self._lines = 0

    def start(self, total: int) -> None:
        super().start(total)
        self._last, self._lines = self.started, 0

    def _show(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._last < self.interval:
            return
        self._last = now
        self._write()

    def _write(self) -> None:
        self._lines += 1
        line = _("{label}: {done}/{total} ({rate:.1f}/s, {left} left)").format(
            label=self.label, done=self.done, total=self.total, rate=self.rate(), left=self.left()
        )
        self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self._lines:  # a short piece of work says nothing; a long one ends with where it ended
            self._write()


def progress_for(label: str, stream: TextIO) -> Progress:
    """A bar when `stream` is a terminal, else a line every few seconds."""
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return BarProgress(label, stream)
    return LineProgress(label, stream)
