"""The organiser's view from the real server: the private page and feed, escaped, read-only, phone-sized."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import icalendar
import pytest
from click.testing import CliRunner

import cli
from scheduler.clock import FixedClock
from scheduler.config import load_config
from scheduler.organiser import organiser_feed_path, organiser_page_path, organiser_token, resolve_organiser
from scheduler.server import FeedServer
from scheduler.store import NewMessage, SQLiteStore
from scheduler.tokens import feed_secret
from tests.cdp import CHROMIUM, phone_shot

NOW = datetime(2020, 9, 9, 9, 0, tzinfo=UTC)  # two days before the seed meeting's invitation
EVIL = "<script>alert('x')</script>"


@pytest.fixture
def reviewed(config_copy: Path, edit) -> Path:
    edit("project.yaml", "  catch_up_hours: 24", "  catch_up_hours: 24\n  review: true")
    # Data reaches the page: a school with markup in its name, a long unbroken address.
    edit("participants.yaml", 'short_name: "СШ № 1"', f'short_name: "СШ № 1 {EVIL}"')
    return config_copy


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "var" / "state.db")
    yield s
    s.close()


def _failed_row(store: SQLiteStore) -> None:
    msg = NewMessage("m|x|0", "heads-2020-09/invitation", "invitation", "heads-2020-09",
                     "averyveryverylongaddress.of.a.head.teacher@school1.example.org", 0, b"x", "gcro@example.org")  # fmt: skip
    store.enqueue([msg], NOW)
    store.claim(NOW, 10)
    store.mark_failed(msg.id, NOW, f"550 5.1.1 {EVIL} mailbox unavailable")


async def _serve(config: Path, store: SQLiteStore) -> tuple[FeedServer, int]:
    server = FeedServer(store, FixedClock(NOW), config)
    server.update(load_config(config).project)
    return server, await server.start("127.0.0.1", 0)


def test_the_token_is_checked_and_revoked_with_the_secret():
    token = organiser_token("a")
    assert resolve_organiser("a", f"/organiser/{token}/") == "page"
    assert resolve_organiser("a", f"/organiser/{token}.ics") == "feed"
    assert resolve_organiser("b", f"/organiser/{token}/") is None  # a rotated secret revokes it
    assert resolve_organiser("a", f"/organiser/{token[:-1]}/") is None
    assert resolve_organiser("a", "/organiser/") is None
    assert len(token) >= 32


async def test_page_and_feed_over_http(reviewed, store):
    _failed_row(store)
    server, port = await _serve(reviewed, store)
    secret = feed_secret(store)
    before = (store.outbox_counts(), store.reviews(), store.mailing_states())
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.get(base + organiser_page_path(secret)) as resp:
                assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
                page = await resp.text()
            async with http.get(base + organiser_feed_path(secret)) as resp:
                assert resp.status == 200 and resp.content_type == "text/calendar"
                feed = await resp.read()
            for wrong in ("/organiser/nope/", "/organiser/nope.ics", "/organiser/all.ics", "/organiser/"):
                async with http.get(base + wrong) as resp:
                    assert resp.status == 404, wrong
            async with http.get(base + "/") as resp:
                index = await resp.text()
    finally:
        await server.stop()
    assert (store.outbox_counts(), store.reviews(), store.mailing_states()) == before  # a GET changes nothing
    assert EVIL not in page and "&lt;script&gt;" in page  # the server's reply, escaped
    assert 'id="failures"' in page and "mailbox unavailable" in page
    assert "heads-2020-09/invitation" in page  # the draft waiting for review, and in the coming weeks
    assert "Ждут проверки" in page and "Исходящие" in page
    assert organiser_token(secret) not in index  # never linked from the public page
    titles = {str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(feed).walk("VEVENT")}
    assert "Рабочий семинар сетевой команды: промежуточные результаты" in titles  # a team's own meeting too
    assert "Мастерская «Цифровая школа»" in titles


def test_feeds_urls_prints_the_organisers(reviewed, tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLOGRAM_FEED_SECRET", raising=False)
    out = CliRunner().invoke(
        cli.main, ["--config", str(reviewed), "--state", str(tmp_path / "v"), "feeds", "urls"]
    )
    assert out.exit_code == 0, out.output
    rows = [line.split("\t") for line in out.output.splitlines() if line.startswith("organiser")]
    assert [r[1] for r in rows] == ["page", "feed"]
    assert rows[0][2].startswith("https://cyclogram.example.org/organiser/") and rows[0][2].endswith("/")
    assert rows[1][3].startswith("webcal://cyclogram.example.org/organiser/")


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian package chromium is not installed")
@pytest.mark.parametrize("page", ["index", "organiser"])
async def test_readable_on_a_phone(reviewed, store, tmp_path, page):
    _failed_row(store)
    server, port = await _serve(reviewed, store)
    path = "/" if page == "index" else organiser_page_path(feed_secret(store))
    try:
        shot = await phone_shot(f"http://127.0.0.1:{port}{path}", tmp_path / "profile")
    finally:
        await server.stop()
    (tmp_path / f"{page}.png").write_bytes(shot.png)  # kept with the test's files for a human to look at
    assert shot.png.startswith(b"\x89PNG")
    assert shot.viewport == 375  # the viewport meta makes the phone lay it out at its own width
    assert shot.scroll <= shot.client, f"horizontal overflow: {shot.wide}"
    assert shot.wide == []
    if page == "organiser":
        assert "Исходящие" in shot.text and EVIL in shot.text  # shown as text, not run as script
    else:
        assert "https://cyclogram.example.org/project.ics" in shot.text
