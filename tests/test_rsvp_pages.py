"""The answer pages on the real HTTP server: a GET never answers, the button's POST does, tokens hold."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scheduler.clock import FixedClock
from scheduler.config import load_config
from scheduler.rsvp.attendance import roster
from scheduler.rsvp.links import answer_path, roster_path
from scheduler.server import FeedServer
from scheduler.store import SQLiteStore
from scheduler.tokens import feed_secret, rotate_secret

CHROMIUM = Path("/usr/bin/chromium")
MEETING = "heads-2020-09"
RU = "head@school1.example.org"
EN = "head@school37.example.org"


class Site:
    def __init__(self, server: FeedServer, store: SQLiteStore, base: str, config: Path):
        self.server, self.store, self.base, self.config = server, store, base, config

    def path(self, email: str, answer: str | None = None, meeting: str = MEETING) -> str:
        return answer_path(feed_secret(self.store), meeting, email, answer)

    def answers(self) -> dict[str, str]:
        return {a.email: a.partstat for a in self.store.answers(MEETING)}


@pytest.fixture
async def site(config_copy: Path, tmp_path: Path) -> AsyncIterator[Site]:
    store = SQLiteStore(tmp_path / "state.db")
    server = FeedServer(store, FixedClock(datetime(2020, 9, 20, 7, 0, tzinfo=UTC)), config_copy)
    server.update(load_config(config_copy).project)
    port = await server.start("127.0.0.1", 0)
    try:
        yield Site(server, store, f"http://127.0.0.1:{port}", config_copy)
    finally:
        await server.stop()
        store.close()


async def test_a_get_shows_one_button_and_changes_nothing(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # a mail scanner following the link, a preview, the person
            async with http.get(site.base + site.path(RU, "yes")) as page:
                body = await page.text()
                assert page.status == 200 and page.headers["Referrer-Policy"] == "same-origin"
                assert page.headers["Cache-Control"] == "no-store"
        async with http.head(site.base + site.path(RU, "no")) as head:
            assert head.status == 200
    assert site.answers() == {}
    assert body.count('id="confirm"') == 1 and "Подтвердить ответ: Приду" in body
    assert '<html lang="ru">' in body and "Вы ещё не ответили" in body


async def test_the_post_records_and_the_page_says_so_in_the_persons_language(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(site.base + site.path(EN, "maybe"), allow_redirects=False) as posted:
            assert posted.status == 303
            location = posted.headers["Location"]
        assert site.answers() == {EN: "TENTATIVE"}
        async with http.get(site.base + location) as page:
            body = await page.text()
        assert '<html lang="en">' in body and "Answer recorded:" in body and "<strong>Maybe</strong>" in body
        assert 'data-partstat="TENTATIVE"' in body and "by link" in body
        # Changing the answer: the other two buttons are offered; a later POST wins.
        assert 'id="answer-yes"' in body and 'id="answer-no"' in body and 'id="answer-maybe"' not in body
        async with http.post(site.base + site.path(EN, "no")) as again:
            assert again.status == 200 and "<strong>No</strong>" in await again.text()
    assert site.answers() == {EN: "DECLINED"}


async def test_wrong_tokens_are_404_like_any_unknown_path(site: Site) -> None:
    good = site.path(RU, "yes")
    token = good.split("/")[3]
    bad_mac = good.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    other_person = site.path(EN, "yes").split("/")[3]
    cases = [
        bad_mac,
        f"/rsvp/{MEETING}/{other_person}/yes".replace(MEETING, "network-seminar-2021-01"),  # another meeting
        f"/rsvp/nope/{token}/yes",
        good.replace("/yes", "/perhaps"),
        f"/rsvp/{MEETING}/{token[:11]}/yes",
        "/rsvp/" + MEETING + "/%00%0a/yes",
    ]
    async with aiohttp.ClientSession() as http:
        async with http.get(site.base + "/no/such/path") as unknown:
            expected = (unknown.status, await unknown.read())
        for path in cases:
            async with http.get(site.base + path) as page:
                assert (page.status, await page.read()) == expected, path
            async with http.post(site.base + path) as posted:
                assert posted.status == 404, path
    assert site.answers() == {}


async def test_rotating_the_feed_secret_revokes_the_links(site: Site) -> None:
    old = site.path(RU, "yes")
    rotate_secret(site.store)
    site.server.update(load_config(site.config).project)
    async with aiohttp.ClientSession() as http:
        async with http.post(site.base + old) as posted:
            assert posted.status == 404
        async with http.post(site.base + site.path(RU, "yes"), allow_redirects=False) as fresh:
            assert fresh.status == 303
    assert site.answers() == {RU: "ACCEPTED"}


async def test_a_cross_site_form_is_refused(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        evil = {"Origin": "https://evil.example.net"}
        async with http.post(site.base + site.path(RU, "yes"), headers=evil) as posted:
            assert posted.status == 403
        async with http.post(
            site.base + site.path(RU, "yes"), headers={"Origin": site.base}, allow_redirects=False
        ) as same:
            assert same.status == 303
    assert site.answers() == {RU: "ACCEPTED"}


async def test_the_organisers_page_shows_the_counts_of_each_coming_meeting(site: Site) -> None:
    from scheduler.organiser import organiser_page_path

    async with aiohttp.ClientSession() as http:
        async with http.post(site.base + site.path(EN, "no"), allow_redirects=False) as posted:
            assert posted.status == 303
        async with http.get(site.base + organiser_page_path(feed_secret(site.store))) as page:
            body = await page.text()
            assert page.status == 200
    row = body.split(f'<tr data-meeting="{MEETING}">')[1].split("</tr>")[0]
    assert '<td class="DECLINED">1</td>' in row and '<td class="NEEDS-ACTION">5</td>' in row
    assert f'href="{roster_path(feed_secret(site.store), MEETING)}"' in row


async def test_a_person_of_two_schools_answers_for_both(site: Site, edit) -> None:
    edit("participants.yaml", "head@school2.example.org", RU)
    site.server.update(load_config(site.config).project)
    async with aiohttp.ClientSession() as http:
        async with http.get(site.base + site.path(RU, "yes")) as page:
            assert "Иванова Анна Петровна (СШ № 1, СШ № 2)" in await page.text()
        async with http.post(site.base + site.path(RU, "yes"), allow_redirects=False) as posted:
            assert posted.status == 303
        async with http.get(site.base + roster_path(feed_secret(site.store), MEETING)) as page:
            body = await page.text()
    assert body.count(f'<tr data-email="{RU}" data-partstat="ACCEPTED">') == 2
    assert '<li data-key="ACCEPTED"><strong>1</strong> придёт</li>' in body


async def test_names_are_escaped(site: Site, edit) -> None:
    edit("meetings/2020-09-25-heads.yaml", "title: ", "title: <script>alert(1)</script> ")
    site.server.update(load_config(site.config).project)
    async with aiohttp.ClientSession() as http, http.get(site.base + site.path(RU, "yes")) as page:
        body = await page.text()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_a_cancelled_meeting_takes_no_answers(site: Site, edit) -> None:
    edit("meetings/2020-09-25-heads.yaml", "audience: all", "audience: all\nstatus: cancelled")
    site.server.update(load_config(site.config).project)
    async with aiohttp.ClientSession() as http:
        async with http.get(site.base + site.path(RU, "yes")) as page:
            body = await page.text()
            assert "Встреча отменена" in body and 'id="confirm"' not in body
        async with http.post(site.base + site.path(RU, "yes")) as posted:
            assert posted.status == 409
    assert site.answers() == {}


async def test_the_organisers_roster_page(site: Site, edit) -> None:
    edit("participants.yaml", "Jane Smith", "Jane <b>Smith</b>")
    site.server.update(load_config(site.config).project)
    async with aiohttp.ClientSession() as http:
        async with http.post(site.base + site.path(EN, "yes"), allow_redirects=False) as posted:
            assert posted.status == 303
        path = roster_path(feed_secret(site.store), MEETING)
        async with http.get(site.base + path) as page:
            body = await page.text()
            assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
        assert '<li data-key="ACCEPTED"><strong>1</strong> придёт</li>' in body
        assert '<li data-key="NEEDS-ACTION"><strong>5</strong> нет ответа</li>' in body
        assert "Jane &lt;b&gt;Smith&lt;/b&gt;" in body and "<b>Smith</b>" not in body
        for wrong in (path[:-1] + "x", path.replace(MEETING, "network-seminar-2021-01"), "/attendance/x/y"):
            async with http.get(site.base + wrong) as missing:
                assert missing.status == 404
    assert site.answers() == {EN: "ACCEPTED"}


# -- headless Chromium: the person clicks -----------------------------------------------------------------


class DevTools:
    """Just enough of the Chrome DevTools Protocol to load a page, click and read it back."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.next_id:
                return dict(msg.get("result", {}))

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def until(self, expression: str, timeout: float = 30) -> Any:
        """Wait for the page to reach a state (a navigation finishing), polling the DOM."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"the page never satisfied {expression!r}")


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian package chromium is not installed")
async def test_click_the_button_in_headless_chromium_and_see_the_roster_change(site: Site, tmp_path: Path):
    project = load_config(site.config).project
    meeting = project.meeting(MEETING)
    before = roster(project, site.store, meeting)
    assert before.counts["ACCEPTED"] == 0
    profile = tmp_path / "chromium-profile"
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        active = profile / "DevToolsActivePort"
        for _ in range(600):  # Chromium writes the port it bound once it listens
            if active.exists() and active.read_text().strip():
                break
            await asyncio.sleep(0.05)
        port = int(active.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as created:
                target = await created.json(content_type=None)
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tools = DevTools(ws)
                await tools.call("Page.navigate", url=site.base + site.path(RU, "yes"))
                label = await tools.until("document.getElementById('confirm')?.textContent")
                assert label.strip() == "Подтвердить ответ: Приду"
                assert site.answers() == {}  # the browser's GET recorded nothing
                await tools.js("document.getElementById('confirm').click()")
                await tools.until(
                    "location.search.includes('recorded=1') && document.readyState == 'complete'"
                )
                assert await tools.js("document.getElementById('current').dataset.partstat") == "ACCEPTED"
                assert "Ответ записан" in await tools.js("document.getElementById('current').textContent")
                after = roster(project, site.store, meeting)
                assert after.counts["ACCEPTED"] == 1
                assert [e.via for e in after.entries if e.email == RU] == ["link"]
                # Changing the answer from the page that follows.
                await tools.js("document.getElementById('answer-no').click()")
                await tools.until("document.getElementById('current')?.dataset.partstat == 'DECLINED'")
                changed = roster(project, site.store, meeting)
                assert changed.counts["ACCEPTED"] == 0 and changed.counts["DECLINED"] == 1
                # The organiser's roster page shows it too.
                await tools.call(
                    "Page.navigate", url=site.base + roster_path(feed_secret(site.store), MEETING)
                )
                declined = "document.querySelector('#counts [data-key=DECLINED] strong')?.textContent"
                assert await tools.until(declined) == "1"
                row = f"document.querySelector('tr[data-email=\"{RU}\"]').dataset.partstat"
                assert await tools.js(row) == "DECLINED"
    finally:
        proc.terminate()
        await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
