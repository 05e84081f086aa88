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


# --- hostile clients (issue 10) ---------------------------------------------------------------------------


async def test_a_q_value_that_is_not_a_number_is_not_a_500(served: tuple[FeedServer, str]) -> None:
    _, base = served
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for header, gzipped in (("gzip;q=abc", True), ("gzip; q = 0", False), ("gzip;q=0.000", False),
                                ("identity, gzip;q=", True), ("gzip;level=1;q=0.5", True)):  # fmt: skip
            async with http.get(f"{base}/project.ics", headers={"Accept-Encoding": header}) as r:
                assert r.status == 200, header
                assert (r.headers.get("Content-Encoding") == "gzip") is gzipped, header


async def test_the_index_answers_304_to_its_own_last_modified(config_copy: Path, tmp_path: Path) -> None:
    clock = FixedClock(NOW.replace(microsecond=654321))  # a build time with a fraction of a second
    server = FeedServer(SQLiteStore(tmp_path / "state.db"), clock, config_copy)
    server.update(load_config(config_copy).project)
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/") as r:
                stamp = r.headers["Last-Modified"]
            async with http.get(f"http://127.0.0.1:{port}/", headers={"If-Modified-Since": stamp}) as r:
                assert r.status == 304
            async with http.get(
                f"http://127.0.0.1:{port}/", headers={"If-Modified-Since": "Mon, 14 Sep 2020 07:00:00 GMT"}
            ) as r:
                assert r.status == 200
    finally:
        await server.stop()


async def test_a_client_that_trickles_its_headers_is_cut_off(config_copy: Path, tmp_path: Path) -> None:
    server = FeedServer(SQLiteStore(tmp_path / "state.db"), FixedClock(NOW), config_copy)
    server.update(load_config(config_copy).project)
    server.head_timeout = 0.5
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /project.ics HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        # One header line now and then, never the blank line: the deadline closes the connection.
        closed = asyncio.get_running_loop().time()
        for _ in range(20):
            await asyncio.sleep(0.1)
            if reader.at_eof():
                break
            try:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
            except OSError:
                break
        try:
            rest = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            rest = b""
        assert rest == b""  # closed, no response
        assert asyncio.get_running_loop().time() - closed < 3
        writer.close()

        # A client that sends its request at once is served, and keep-alive still works.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):
            writer.write(b"HEAD /project.ics HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.7)  # idle between requests is the keep-alive timer's business
        writer.close()
    finally:
        await server.stop()


async def test_healthz_says_why_delivery_is_stopped(served: tuple[FeedServer, str]) -> None:
    server, base = served
    async with aiohttp.ClientSession() as http:
        server.health = lambda: "delivery stopped: the SMTP server refused the login: 535 5.7.8 no"
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 503 and "535" in await r.text()
        server.health = lambda: None
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200


async def test_the_watcher_survives_a_model_it_cannot_apply(config_copy: Path) -> None:
    seen: asyncio.Queue[str] = asyncio.Queue()
    stop = asyncio.Event()
    signal = _Signal(asyncio.get_running_loop())
    logging.getLogger("scheduler.watch").addHandler(signal)
    project = config_copy / "project.yaml"
    original = project.read_text(encoding="utf-8")

    def apply(loaded) -> None:
        name = loaded.project.settings.short_name or ""
        if name.startswith("Сломано"):
            raise ValueError("a line break in a name")  # what building the feeds met before the model rule
        seen.put_nowait(name)

    task = asyncio.create_task(watch_config(config_copy, apply, stop_event=stop, debounce_ms=50))
    try:
        for i in range(50):  # until the watcher, started in the background, has met the broken edit
            project.write_text(original.replace("Проектное управление", f"Сломано {i}"), encoding="utf-8")
            try:
                await asyncio.wait_for(signal.event.wait(), 0.5)
                break
            except TimeoutError:
                continue
        assert any("keeping the last good" in m for m in signal.messages)
        project.write_text(original.replace("Проектное управление", "Исправлено"), encoding="utf-8")
        assert await asyncio.wait_for(seen.get(), 10) == "Исправлено"  # still watching, later edits apply
    finally:
        logging.getLogger("scheduler.watch").removeHandler(signal)
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_malformed_request_is_one_warning_line_not_an_error_with_a_traceback(
    served: tuple[FeedServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, base = served
    port = int(base.rsplit(":", 1)[1])
    for raw in (
        b"GET /project.ics HTTP/1.1\r\nHost: x\r\nIf-None-Match: \x01\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert status.split()[1] == b"400", raw[:40]
    server_records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert server_records and all(r.levelname == "WARNING" and not r.exc_info for r in server_records)
