"""Headless Chromium driven over the DevTools protocol: a phone-sized viewport, layout facts, a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")

# Facts about the layout, read in the page: does anything stick out past the viewport's right edge?
_LAYOUT = """(() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .map(e => e.tagName + (e.className ? '.' + e.className : ''));
  return JSON.stringify({
    viewport: window.innerWidth, client: width, scroll: document.documentElement.scrollWidth,
    wide: wide.slice(0, 10), title: document.title, text: document.body.innerText,
  });
})()"""


@dataclass(frozen=True)
class Shot:
    viewport: int
    client: int
    scroll: int
    wide: list[str]
    title: str
    text: str
    png: bytes


async def phone_shot(url: str, profile: Path, width: int = 375, height: int = 812) -> Shot:
    """Open `url` in headless Chromium as a phone of `width` CSS pixels; measure and screenshot it."""
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        endpoint = None
        while endpoint is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            if not line:
                raise AssertionError("Chromium exited before it listened")
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found.group(1) if found else None
        port = int(re.search(r":(\d+)/", endpoint).group(1))  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                pages = [t for t in await resp.json() if t["type"] == "page"]
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                ids = itertools.count(1)
                events: list[str] = []

                async def call(method: str, **params: Any) -> dict[str, Any]:
                    n = next(ids)
                    await ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
                    while True:
                        msg = json.loads((await asyncio.wait_for(ws.receive(), 60)).data)
                        if msg.get("id") == n:
                            if "error" in msg:
                                raise AssertionError(f"{method}: {msg['error']}")
                            return msg["result"]
                        if "method" in msg:
                            events.append(msg["method"])

                async def loaded() -> None:
                    while "Page.loadEventFired" not in events:
                        msg = json.loads((await asyncio.wait_for(ws.receive(), 60)).data)
                        events.append(msg.get("method", ""))

                await call("Page.enable")
                await call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width, height=height, deviceScaleFactor=2, mobile=True,
                )  # fmt: skip
                events.clear()
                await call("Page.navigate", url=url)
                await loaded()
                facts = await call("Runtime.evaluate", expression=_LAYOUT, returnByValue=True)
                shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    data = json.loads(facts["result"]["value"])
    return Shot(png=base64.b64decode(shot["data"]), **data)
