"""The feed server on a real port: types, validators, 304s, HEAD, gzip, tokens, 404s; config reload."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from icalendar import Calendar

from scheduler.clock import FixedClock
from scheduler.config import load_config
from scheduler.server import FeedServer
from scheduler.store import SQLiteStore
from scheduler.watch import watch_config

NOW = datetime(2020, 9, 15, 7, 0, tzinfo=UTC)


@pytest.fixture
async def served(config_copy: Path, tmp_path: Path) -> AsyncIterator[tuple[FeedServer, str]]:
    server = FeedServer(SQLiteStore(tmp_path / "state.db"), FixedClock(NOW), config_copy)
    server.update(load_config(config_copy).project)
    port = await server.start("127.0.0.1", 0)
    assert port != 0
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


async def test_feed_headers_and_conditional_get(served: tuple[FeedServer, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        async with http.get(f"{base}/project.ics", headers={"Accept-Encoding": "identity"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
            assert "Content-Encoding" not in r.headers
            body = await r.read()
            etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
        assert Calendar.from_ical(body).walk("VEVENT")
        async with http.get(f"{base}/project.ics", headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and await r.read() == b""
        async with http.get(f"{base}/project.ics", headers={"If-Modified-Since": modified}) as r:
            assert r.status == 304
        async with http.get(f"{base}/project.ics", headers={"If-None-Match": '"other"'}) as r:
            assert r.status == 200
        async with http.get(
            f"{base}/project.ics", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        ) as r:
            assert r.status == 200
        async with http.head(f"{base}/project.ics", headers={"Accept-Encoding": "identity"}) as r:
            assert r.status == 200 and await r.read() == b""
            assert int(r.headers["Content-Length"]) == len(body) and r.headers["ETag"] == etag
        async with http.get(f"{base}/project.ics", headers={"Accept-Encoding": "gzip, deflate"}) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(await r.read()) == body
            gz_tag = r.headers["ETag"]
        async with http.get(
            f"{base}/project.ics", headers={"Accept-Encoding": "gzip", "If-None-Match": gz_tag}
        ) as r:
            assert r.status == 304


async def test_private_feeds_need_the_right_token(served: tuple[FeedServer, str]) -> None:
    server, base = served
    good = server.private_path("school", "lyceum-86")
    async with aiohttp.ClientSession() as http:
        async with http.get(base + good) as r:
            assert r.status == 200
            uids = {str(e["UID"]) for e in Calendar.from_ical(await r.read()).walk("VEVENT")}
            assert "action-heads-2020-09-article-lyceum@cyclogram.example.org" in uids
        async with http.get(base + server.private_path("team", "network")) as r:
            assert r.status == 200
        answers = []
        for path in (
            good[:-6] + ("x" if good[-5] != "x" else "y") + ".ics",  # wrong token
            server.private_path("school", "school-1").replace("school-1/", "lyceum-86/"),  # another school's
            "/schools/lyceum-86.ics",  # without a token
            "/schools/nobody/abc.ics",
            "/no/such/path",
        ):
            async with http.get(base + path) as r:
                answers.append((r.status, await r.read(), r.headers["Content-Type"]))
        assert len(set(answers)) == 1 and answers[0][0] == 404


async def test_index_healthz_and_public_meeting_feed(served: tuple[FeedServer, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{base}/meetings/heads-2020-09.ics") as r:
            assert r.status == 200
        async with http.get(f"{base}/") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
            html = await r.text()
        assert "webcal://cyclogram.example.org/project.ics" in html
        assert "https://cyclogram.example.org/meetings/heads-2020-09.ics" in html
        assert "/schools/" not in html.split('id="cyclogram"')[0].replace("/schools/ ", "")


async def test_update_swaps_model_and_sequence_rises(
    served: tuple[FeedServer, str], config_copy: Path, edit
) -> None:
    server, base = served
    edit("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 10:00", "start: 2020-09-25 10:30")
    server.update(load_config(config_copy).project)
    async with aiohttp.ClientSession() as http, http.get(f"{base}/meetings/heads-2020-09.ics") as r:
        ev = Calendar.from_ical(await r.read()).walk("VEVENT")[0]
    assert ev["SEQUENCE"] == 1 and ev["DTSTART"].dt.hour == 10 and ev["DTSTART"].dt.minute == 30


class _Signal(logging.Handler):
    """Sets an event when the watcher logs an error: no polling of log text."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.ERROR)
        self.loop, self.event, self.messages = loop, asyncio.Event(), []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.loop.call_soon_threadsafe(self.event.set)


async def test_watcher_reloads_and_keeps_last_good(config_copy: Path) -> None:
    seen: asyncio.Queue[str] = asyncio.Queue()
    stop = asyncio.Event()
    signal = _Signal(asyncio.get_running_loop())
    logging.getLogger("scheduler.watch").addHandler(signal)
    project = config_copy / "project.yaml"
    original = project.read_text(encoding="utf-8")
    task = asyncio.create_task(
        watch_config(
            config_copy,
            lambda loaded: seen.put_nowait(loaded.project.settings.short_name or ""),
            stop_event=stop,
            debounce_ms=50,
        )
    )
    try:
        # The watcher starts in the background: edit until it has noticed (normally the first time).
        name = ""
        for i in range(50):
            project.write_text(original.replace("Проектное управление", f"Новое имя {i}"), encoding="utf-8")
            try:
                name = await asyncio.wait_for(seen.get(), 0.5)
                break
            except TimeoutError:
                continue
        assert name.startswith("Новое имя")
        project.write_text(
            original.replace("timezone: Europe/Moscow", "timezone: Mars/Olympus"), encoding="utf-8"
        )
        await asyncio.wait_for(signal.event.wait(), 10)
        assert any("keeping the last good" in m for m in signal.messages)
        assert seen.empty()
    finally:
        logging.getLogger("scheduler.watch").removeHandler(signal)
        stop.set()
        await asyncio.wait_for(task, 10)
