"""The project's exceptions: the core raises them, the CLI turns them into messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ConfigError",
    "CyclogramError",
    "DeliveryError",
    "Problem",
    "TemplateProblem",
    "UnknownNameError",
    "UnknownTargetError",
]


class CyclogramError(Exception):
    """Base of every error cyclogram reports to a user."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in the configuration: where it is and what is wrong."""

    file: Path
    line: int | None
    path: str
    message: str
    # 0: a file that could not be read at all; 1: a value; 2: found by cross-checking the files (an unknown
    # school, a shared address), listed after the problems of the files themselves, often their root cause.
    rank: int = field(default=1, compare=False)

    def __str__(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class ConfigError(CyclogramError):
    """The configuration is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(
            set(problems), key=lambda p: (p.rank, str(p.file), p.line or 0, p.path, p.message)
        )
        super().__init__(self._summary())

    def _summary(self) -> str:
        from .translation import ngettext

        n = len(self.problems)
        head = ngettext("{n} problem in the configuration:", "{n} problems in the configuration:", n).format(
            n=n
        )
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class TemplateProblem(CyclogramError):
    """A template is missing or fails to render."""


class UnknownTargetError(CyclogramError):
    """A command named a meeting, school, team, mailing kind or mailing that does not exist or has nothing to do."""


class UnknownNameError(UnknownTargetError):
    """A command-line mistake (exit 2): a mailing kind, meeting or school the configuration does not have."""


class DeliveryError(CyclogramError):
    """Mail could not be handed to the transport (configuration or connection problem)."""
