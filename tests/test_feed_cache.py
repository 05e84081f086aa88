"""The persistent cache of serialised items: every edit reaches the feeds, a damaged or shared cache is safe."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.calendar import calendar_items, event_states, wrap_calendar
from scheduler.config import load_config
from scheduler.feedcache import CACHE_FILE, KEEP_BUILDS, ItemCache
from scheduler.feeds import Feed, _Assembler, build_feeds, current_feeds, write_feeds, write_record
from scheduler.store import SQLiteStore
from scheduler.templating import make_environment
from scheduler.tokens import feed_secret
from tests.readers import all_readers_agree, texts_read

NOW = datetime(2020, 9, 15, 7, 0, tzinfo=UTC)


def _build(config: Path, state: Path, cache: ItemCache | None, now: datetime = NOW) -> dict[str, bytes]:
    project = load_config(config).project
    store = SQLiteStore(state / "state.db")
    try:
        feeds = current_feeds(store, project, now, env=make_environment(config), cache=cache)
    finally:
        store.close()
    return {path: feed.data for path, feed in feeds.items()}


def _cached(state: Path) -> ItemCache:
    return ItemCache(state / CACHE_FILE)


# Each kind of input an item's bytes depend on, edited: (file, old text, new text, text the feeds then show).
EDITS = [
    (
        "meetings/2020-09-25-heads.yaml",
        'title: "Встреча руководителей',
        'title: "Перенесённая встреча',
        "Перенесённая",
    ),
    ("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 10:00", "start: 2020-09-25 09:00", None),
    (
        "meetings/2020-09-25-heads.yaml",
        "audience: all\n",
        "audience: all\ntimezone: Asia/Yekaterinburg\n",
        None,
    ),
    ("meetings/2020-09-25-heads.yaml", "audience: all\n", "audience: all\nstatus: cancelled\n", None),
    (
        "meetings/2020-09-25-heads.yaml",
        "Подготовить паспорт Сетевого",
        "Сдать паспорт Сетевого",
        "Сдать паспорт",
    ),
    ("meetings/2020-09-25-heads.yaml", "due: 2020-10-30", "due: 2020-11-06", None),
    ("project.yaml", "timezone: Europe/Moscow", "timezone: Asia/Yekaterinburg", None),
    ("project.yaml", "https://cyclogram.example.org/", "https://calendar.example.net/", None),
    ("project.yaml", 'name: "МОУ «ГЦРО»"', 'name: "ГЦРО Ярославля"', "ГЦРО Ярославля"),
    ("project.yaml", "language: ru", "language: en", None),
    ("project.yaml", 'short_name: "Проектное управление"', 'short_name: "Управление"', None),
    ("participants.yaml", 'name: "Сетевая команда"', 'name: "Команда сети"', "Команда сети"),
    ("cyclogram.yaml", "Богомолова Л.В.", "Петрова А.А.", "Петрова А.А."),
]


@pytest.mark.parametrize(("file", "old", "new", "shown"), EDITS, ids=[f"{e[0]}:{e[2][:24]}" for e in EDITS])
def test_every_kind_of_edit_reaches_the_cached_feeds(
    config_copy: Path,
    tmp_path: Path,
    edit: Callable[[str, str, str], Path],
    file: str,
    old: str,
    new: str,
    shown: str | None,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    before = _build(config_copy, state, _cached(state))
    edit(file, old, new)
    warm = _cached(state)
    after = _build(config_copy, state, warm)
    assert warm.hits + warm.misses > 0  # the cache was consulted, not bypassed
    fresh = _build(config_copy, state, None)  # the same store: the same SEQUENCEs, no cache
    assert after == fresh
    changed = [path for path in after if after[path] != before.get(path)]
    assert changed, "the edit changed no feed"
    for path in changed:
        rows = all_readers_agree(after[path])  # every independent reader reads the same instants
        assert rows
    if shown is not None:
        for reader, texts in texts_read(after["organiser/all.ics"]).items():
            values = [v for ev in texts["events"].values() for v in ev.values()]
            flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
            assert any(shown in str(x) for x in flat), reader


def test_assembled_feeds_are_the_bytes_of_the_general_path(example, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = example.project
    store = SQLiteStore(tmp_path / "s.db")
    states = event_states(store, project, NOW)
    secret = feed_secret(store)
    comps = {
        language: {i.uid: i.component for i in calendar_items(project, states, language, secret=secret)}
        for language in ("ru", "en")
    }
    languages = {f"schools/{s.id}.ics": project.language_of(s) for s in project.schools}
    cache = ItemCache(tmp_path / CACHE_FILE)
    for _ in range(2):  # cold, then from the cache
        feeds = build_feeds(project, states, NOW, secret=secret, cache=cache)
        cache.save()
        for path, feed in feeds.items():
            uids = [str(e["UID"]) for e in wrap_calendar_uids(feed)]
            language = languages.get(path, project.settings.language)
            general = wrap_calendar(
                project,
                [comps[language][u] for u in uids],
                method=None,
                name=feed.name,
                description=project.settings.name,
                language=language,
            ).to_ical()
            assert feed.data == general, path
    assert cache.hits > 0


def wrap_calendar_uids(feed: Feed) -> list:  # type: ignore[type-arg]
    from icalendar import Calendar

    return list(Calendar.from_ical(feed.data).walk("VEVENT"))


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=0, max_size=200))
def test_spliced_head_is_wrap_calendar_s(example, name: str) -> None:  # type: ignore[no-untyped-def]
    project = example.project
    make = _Assembler(project, {}, ItemCache(None))
    for language in ("ru", "en"):
        general = wrap_calendar(
            project, [], method=None, name=name, description=project.settings.name, language=language
        ).to_ical()
        assert make.head(name, language) == general


def test_a_template_override_bypasses_the_cache(config_copy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    _build(config_copy, state, _cached(state))
    folder = config_copy / "templates" / "ics" / "ru"
    folder.mkdir(parents=True)
    (folder / "meeting.txt").write_text("Своё описание: {{ meeting.title }}\n", encoding="utf-8")
    warm = _cached(state)
    after = _build(config_copy, state, warm)
    assert after == _build(config_copy, state, None)
    assert "Своё описание" in after["project.ics"].decode("utf-8").replace("\r\n ", "")


def test_a_damaged_cache_is_ignored_and_rebuilt(
    config_copy: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    good = _build(config_copy, state, _cached(state))
    path = state / CACHE_FILE
    raw = path.read_bytes()
    for damaged in (b"", raw[: len(raw) // 2], raw[:-1] + bytes([raw[-1] ^ 1]), b"\x00" * 100, raw[:40]):
        path.write_bytes(damaged)
        cache = _cached(state)
        assert len(cache) == 0
        assert _build(config_copy, state, cache) == good
        assert len(_cached(state)) > 0  # written anew
    assert "damaged" in caplog.text


def test_an_unwritable_cache_costs_only_time(config_copy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / CACHE_FILE).mkdir()  # not a file: neither read nor replaced
    first = _build(config_copy, state, _cached(state))
    assert _build(config_copy, state, _cached(state)) == first


def _build_in_child(args: tuple[str, str]) -> int:
    config, state = Path(args[0]), Path(args[1])
    feeds = _build(config, state, _cached(state))
    return len(feeds)


def test_concurrent_builds_share_one_cache(config_copy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    expected = _build(config_copy, state, None)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        counts = pool.map(_build_in_child, [(str(config_copy), str(state))] * 8)
    assert set(counts) == {len(expected)}
    cache = _cached(state)
    assert len(cache) > 0  # a complete file, the last writer's
    assert _build(config_copy, state, cache) == expected
    assert cache.misses == 0
    assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]


def test_old_entries_are_pruned(
    config_copy: Path, tmp_path: Path, edit: Callable[[str, str, str], Path]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    _build(config_copy, state, _cached(state))
    size = len(_cached(state))
    title = 'title: "Встреча руководителей'
    counts = []
    for n in range(KEEP_BUILDS + 3):
        edit("meetings/2020-09-25-heads.yaml", title, f'title: "{n} Встреча руководителей')
        title = f'title: "{n} Встреча руководителей'
        _build(config_copy, state, _cached(state))
        counts.append(len(_cached(state)))
    per_edit = counts[0] - size  # the meeting's items, each edit makes new ones and outdates the old
    assert per_edit > 0
    # Entries no build has used for KEEP_BUILDS builds are gone: the count stops growing.
    assert counts[-1] <= size + KEEP_BUILDS * per_edit
    assert counts[-1] == counts[-2]


def test_only_changed_feeds_are_written(
    config_copy: Path, tmp_path: Path, edit: Callable[[str, str, str], Path]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    out = tmp_path / "out"
    record = write_record(state, out)

    def build() -> list[str]:
        project = load_config(config_copy).project
        store = SQLiteStore(state / "state.db")
        feeds = current_feeds(store, project, NOW, cache=_cached(state))
        store.close()
        return write_feeds(feeds, out, record=record)

    first = build()
    assert first and record.is_file()
    assert out.resolve() not in [p.resolve() for p in record.parents]  # never beside the feeds it names
    assert build() == []
    edit("participants.yaml", 'name: "Сетевая команда"', 'name: "Команда сети"')
    changed = build()
    assert "teams/network.ics" in changed
    assert "schools/school-37.ics" not in changed
    # A file changed or removed behind the build's back is written again, although its digest is known.
    (out / "project.ics").write_bytes(b"tampered")
    (out / "schools" / "school-2.ics").unlink()
    assert sorted(build()) == ["project.ics", "schools/school-2.ics"]
    # A damaged record: every feed compared by its bytes, none rewritten needlessly.
    record.write_text("{not json", encoding="utf-8")
    assert build() == []
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.ics")}
    assert files == _build(config_copy, state, None)


def test_cache_and_record_live_in_the_state_folder(config_copy: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    state, out = tmp_path / "state", tmp_path / "out"
    env = {**os.environ, "CYCLOGRAM_CONFIG": str(config_copy), "CYCLOGRAM_STATE": str(state), "LANG": "C"}
    for layout in ("files", "urls"):
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, str(root / "cli.py"), "feeds", "build", "--out", str(out), "--layout", layout]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert " 0 written" in again.stdout or "записано 0" in again.stdout, again.stdout
    assert (state / CACHE_FILE).is_file()
    assert not [p for p in out.rglob("*") if "cache" in p.name or p.suffix == ".json"]


async def test_served_bodies_stay_within_their_budget(config_copy: Path, tmp_path: Path) -> None:
    import aiohttp

    from scheduler.clock import FixedClock
    from scheduler.server import FeedServer

    state = tmp_path / "state"
    state.mkdir()
    server = FeedServer(SQLiteStore(state / "state.db"), FixedClock(NOW), config_copy, state=state)
    pub = server.update(load_config(config_copy).project)
    pub.answers.budget = 1  # keep at most one feed's bodies ready
    port = await server.start("127.0.0.1", 0)
    paths = [server.private_path("school", s.id) for s in pub.project.schools] + ["/project.ics"]
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as http:
            for _ in range(2):
                for path in paths:
                    for encoding in ("identity", "gzip"):
                        async with http.get(
                            f"http://127.0.0.1:{port}{path}", headers={"Accept-Encoding": encoding}
                        ) as r:
                            assert r.status == 200
                            body = await r.read()
                            rel = path.lstrip("/")
                            if rel.count("/") == 2:
                                rel = "/".join(rel.split("/")[:2]) + ".ics"
                            data = pub.feeds[rel].data
                            assert (gzip_decompress(body) if encoding == "gzip" else body) == data
                            tag = r.headers["ETag"]
                        async with http.get(
                            f"http://127.0.0.1:{port}{path}",
                            headers={"Accept-Encoding": encoding, "If-None-Match": tag},
                        ) as r:
                            assert r.status == 304
                    assert len(pub.answers._kept) == 1
    finally:
        await server.stop()


def gzip_decompress(data: bytes) -> bytes:
    import gzip

    return gzip.decompress(data)


def test_the_service_rebuilds_what_an_edit_changed(
    config_copy: Path, tmp_path: Path, edit: Callable[[str, str, str], Path]
) -> None:
    from scheduler.clock import FixedClock
    from scheduler.server import FeedServer

    state = tmp_path / "state"
    state.mkdir()
    server = FeedServer(SQLiteStore(state / "state.db"), FixedClock(NOW), config_copy, state=state)
    first = server.update(load_config(config_copy).project)
    edit("participants.yaml", 'short_name: "СШ № 37"', 'short_name: "Школа № 37"')
    second = server.update(load_config(config_copy).project)
    # The school answers for nothing: its name is in its own feed's name only, no item is serialised again.
    assert server._cache.misses == 0 and server._cache.hits > 0
    changed = {p for p in first.feeds if first.feeds[p].etag != second.feeds[p].etag}
    assert changed == {"schools/school-37.ics"}
    fresh = _build(config_copy, state, None)
    assert {p: f.data for p, f in second.feeds.items()} == fresh


def test_a_new_secret_reaches_the_cached_links_of_private_documents(
    config_copy: Path, tmp_path: Path, edit: Callable[[str, str, str], Path]
) -> None:
    from scheduler.tokens import rotate_secret

    (config_copy / "documents").mkdir()
    (config_copy / "documents" / "plan.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    edit(
        "meetings/2020-09-25-heads.yaml",
        "audience: all\n",
        "audience: {teams: [network]}\ndocuments:\n  - documents/plan.pdf\n",
    )
    state = tmp_path / "state"
    state.mkdir()
    before = _build(config_copy, state, _cached(state))
    store = SQLiteStore(state / "state.db")
    rotate_secret(store)
    store.close()
    warm = _cached(state)
    after = _build(config_copy, state, warm)
    assert warm.hits > 0
    assert after == _build(config_copy, state, None)
    team = "teams/network.ics"
    assert after[team] != before[team]
    for data in (before[team], after[team]):
        assert all_readers_agree(data)
    links = [
        str(v)
        for ev in wrap_calendar_uids_of(after[team])
        for v in (ev.get("ATTACH") if isinstance(ev.get("ATTACH"), list) else [ev.get("ATTACH")])
        if v is not None
    ]
    assert links and all("/documents/heads-2020-09/" in link for link in links)
    assert not set(links) & {
        str(v)
        for ev in wrap_calendar_uids_of(before[team])
        for v in (ev.get("ATTACH") if isinstance(ev.get("ATTACH"), list) else [ev.get("ATTACH")])
        if v is not None
    }


def wrap_calendar_uids_of(data: bytes) -> list:  # type: ignore[type-arg]
    from icalendar import Calendar

    return list(Calendar.from_ical(data).walk("VEVENT"))
