"""The index page as a browser shows it: headless Chromium renders it from the real server."""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.clock import FixedClock
from scheduler.config import load_config
from scheduler.server import FeedServer
from scheduler.store import SQLiteStore

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.chromium


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian package chromium is not installed")
async def test_index_page_in_headless_chromium(config_copy: Path, tmp_path: Path) -> None:
    server = FeedServer(
        SQLiteStore(tmp_path / "state.db"), FixedClock(datetime(2020, 9, 15, tzinfo=UTC)), config_copy
    )
    server.update(load_config(config_copy).project)
    port = await server.start("127.0.0.1", 0)
    profile = tmp_path / "chromium-profile"
    try:
        proc = await asyncio.create_subprocess_exec(
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            f"http://127.0.0.1:{port}/",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await server.stop()
        shutil.rmtree(profile, ignore_errors=True)
    dom = out.decode("utf-8").replace("\xa0", " ").replace("\u202f", " ")  # Babel writes no-break spaces
    assert '<html lang="ru">' in dom
    assert "Муниципальный проект «Развитие культуры проектного управления" in dom
    rows = re.findall(r'<tr class="month">\s*<th scope="row">([^<]+)</th>', dom)
    assert rows[0] == "Сентябрь 2020" and rows[-1] == "Август 2021" and len(rows) == 12
    september = dom.split('<tr class="month">')[1]
    assert "25 сентября 2020 г., 10:00–12:00 (МСК)" in september and "Встреча руководителей" in september
    assert dom.count("Консультации для команд проекта") == 6  # last Thursdays, Oct to Apr, minus 31 December
    assert "февраль 2021 (дата уточняется)" in dom
    assert 'href="webcal://cyclogram.example.org/project.ics"' in dom
    assert 'href="https://cyclogram.example.org/meetings/heads-2020-09.ics"' in dom
    assert "/schools/school-1/" not in dom  # private feeds are never on the public page
    assert "Рабочий семинар сетевой команды" not in dom  # a team's own meeting stays in the team's feeds
    assert "Мастерская «Цифровая школа»" not in dom
