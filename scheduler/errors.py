"""The project's exceptions: the core raises them, the CLI turns them into messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigError",
    "CyclogramError",
    "DeliveryError",
    "Problem",
    "TemplateProblem",
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
    # Found by cross-checking the files (an unknown school, a shared address): listed after the problems
    # of the files themselves, which are often their root cause (a school whose id did not parse).
    follows: bool = False

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
            set(problems), key=lambda p: (p.follows, str(p.file), p.line or 0, p.path, p.message)
        )
        super().__init__(self._summary())

    def _summary(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the configuration:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class TemplateProblem(CyclogramError):
    """A template is missing or fails to render."""


class UnknownTargetError(CyclogramError):
    """A command named a meeting, school, team or mailing kind that does not exist."""


class DeliveryError(CyclogramError):
    """Mail could not be handed to the transport (configuration or connection problem)."""
