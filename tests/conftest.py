"""Shared fixtures: a private copy of the example configuration, its state directory, a clock."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.clock import FixedClock
from scheduler.config import LoadedConfig, load_config

# The tests read the console in English whatever the machine's locale (the example project is Russian);
# tests/test_translation.py sets a Russian locale where it checks the Russian console.
os.environ.pop("LC_ALL", None)
os.environ["LC_MESSAGES"] = "en_US.UTF-8"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config"


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A writable copy of the example configuration."""
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE, target)
    return target


@pytest.fixture
def edit(config_copy: Path) -> Callable[[str, str, str], Path]:
    """Replace text in a file of the copied configuration; fails if the text is not there."""

    def _edit(relative: str, old: str, new: str) -> Path:
        path = config_copy / relative
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return path

    return _edit


@pytest.fixture(scope="session")
def example() -> LoadedConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
def clock() -> FixedClock:
    """Ten days before the seed meeting."""
    return FixedClock(datetime(2020, 9, 15, 7, 0, tzinfo=UTC))
