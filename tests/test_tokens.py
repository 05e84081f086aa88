"""Private feed tokens: derived, URL-safe, long enough, revoked by rotating the secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from scheduler.config import LoadedConfig
from scheduler.store import SQLiteStore
from scheduler.tokens import (
    SECRET_ENV,
    feed_secret,
    feed_token,
    private_feed_url,
    rotate_secret,
    verify_token,
    webcal_url,
)


def test_secret_from_env_or_kept_in_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    store = SQLiteStore(tmp_path / "state.db")
    generated = feed_secret(store)
    assert len(generated) >= 32
    assert feed_secret(SQLiteStore(tmp_path / "state.db")) == generated  # survives a restart
    monkeypatch.setenv(SECRET_ENV, "from-the-environment")
    assert feed_secret(store) == "from-the-environment"


def test_token_is_urlsafe_and_at_least_128_bits() -> None:
    token = feed_token("s3cret", "school", "school-1")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert token == feed_token("s3cret", "school", "school-1")
    assert token != feed_token("s3cret", "school", "school-2")
    assert token != feed_token("s3cret", "team", "school-1")
    with pytest.raises(ValueError):
        feed_token("s3cret", "project", "x")


def test_verify_and_rotation_revokes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    store = SQLiteStore(tmp_path / "state.db")
    old = feed_secret(store)
    token = feed_token(old, "team", "network")
    assert verify_token(old, "team", "network", token)
    assert not verify_token(old, "team", "network", token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not verify_token(old, "team", "digital", token)
    assert not verify_token(old, "team", "network", "ё")
    new = rotate_secret(store)
    assert feed_secret(store) == new != old
    assert not verify_token(new, "team", "network", token)


def test_urls(example: LoadedConfig) -> None:
    p = example.project
    url = private_feed_url(p, "k", "school", "school-1")
    assert (
        url == f"https://cyclogram.example.org/schools/school-1/{feed_token('k', 'school', 'school-1')}.ics"
    )
    assert webcal_url(url) == "webcal://" + url.removeprefix("https://")


def test_rotate_secret_command_revokes_every_private_url(config_copy, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import cli

    monkeypatch.delenv("CYCLOGRAM_FEED_SECRET", raising=False)
    args = ["--config", str(config_copy), "--state", str(tmp_path / "var")]
    before = CliRunner().invoke(cli.main, [*args, "feeds", "urls"])
    rotated = CliRunner().invoke(cli.main, [*args, "feeds", "rotate-secret", "--yes"])
    after = CliRunner().invoke(cli.main, [*args, "feeds", "urls"])
    assert before.exit_code == rotated.exit_code == after.exit_code == 0
    old, new = before.output.splitlines(), after.output.splitlines()
    assert len(old) == len(new) == 9 and not set(old) & set(new)  # 5 schools, 2 teams, the organiser (2)
    refused = CliRunner().invoke(cli.main, [*args, "feeds", "rotate-secret", "--yes"],
                                 env={"CYCLOGRAM_FEED_SECRET": "x" * 32})  # fmt: skip
    assert refused.exit_code == 1 and "CYCLOGRAM_FEED_SECRET" in refused.output
