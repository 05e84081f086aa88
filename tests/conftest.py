"""Shared fixtures: a private copy of the example configuration, its state directory, a clock."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.clock import FixedClock
from scheduler.config import LoadedConfig, load_config

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


@pytest.fixture(scope="session")
def pg_base() -> str:
    """One PostgreSQL server for the session: $CYCLOGRAM_TEST_DATABASE_URL, else one started here.

    Where none can be had the PostgreSQL tests are skipped, except in CI (CI=true): there they fail.
    """
    import os

    from tests.pg_server import TEST_URL_ENV, start_server

    given = os.environ.get(TEST_URL_ENV, "").strip()
    if given:
        yield given
        return
    try:
        server = start_server()
    except (RuntimeError, OSError, KeyError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no PostgreSQL for the tests: {exc}")
        pytest.skip(f"no PostgreSQL for the tests ({exc}); set {TEST_URL_ENV} or install postgresql")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_base: str) -> str:
    """A URL whose connections see only a fresh schema of their own, dropped after the test."""
    import psycopg

    from tests.pg_server import schema_url

    url, schema = schema_url(pg_base)
    yield url
    with psycopg.connect(pg_base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
