"""Several instances on one store: one schedule composed once, one update per edit, one set of feeds."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scheduler.clock import FixedClock
from scheduler.feeds import current_feeds
from scheduler.service import Service
from scheduler.store import open_url

SEED = "meetings/2020-09-25-heads.yaml"
INVITED_AT = datetime.fromisoformat("2020-09-11T12:00+03:00")  # the seed meeting's invitation is due


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


def _at_once(*calls):
    """Run the calls in threads started together (as instances firing the same job would)."""
    results: list = [None] * len(calls)
    errors: list[BaseException] = []
    gate = threading.Barrier(len(calls))

    def run(i, call):
        gate.wait()
        try:
            results[i] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_instances_firing_the_same_jobs_compose_each_mailing_once(config_copy, url):
    stores = [open_url(url) for _ in range(3)]
    clock = FixedClock(INVITED_AT)
    services = [Service(config_copy, s, clock) for s in stores]
    for service in services:
        service.load()
    try:
        results = _at_once(*[lambda s=s: s.due(catching_up=True) for s in services])
        queued = [a for actions in results for a in actions if a.what == "queued"]
        keys = Counter(a.key for a in queued)
        assert keys and all(n == 1 for n in keys.values()), keys  # each mailing composed by one instance
        rows = stores[0].outbox()
        assert Counter(r.id for r in rows).most_common(1)[0][1] == 1
        assert len(rows) == sum(a.recipients for a in queued)
        assert all(s.due() == [] for s in services)  # done for every instance
    finally:
        for s in stores:
            s.close()


def test_a_moved_meeting_is_one_update_however_many_instances_see_it(config_copy, edit, url):
    stores = [open_url(url) for _ in range(3)]
    clock = FixedClock(INVITED_AT)
    services = [Service(config_copy, s, clock) for s in stores]
    try:
        for service in services:
            service.load()
        services[0].due(catching_up=True)
        invitations = len(stores[0].outbox())
        edit(SEED, "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
        edit(SEED, "end: 2020-09-25 12:00", "end: 2020-09-25 13:00")
        clock.set(INVITED_AT + timedelta(days=2))
        for service in services:
            assert service.reload()
        results = _at_once(*[s.react_to_changes for s in services])
        updates = [a for actions in results for a in actions]
        assert [(a.what, a.recipients) for a in updates] == [("update", 6)]
        rows = [r for r in stores[1].outbox() if r.kind == "update"]
        assert len(rows) == 6 and len(stores[2].outbox()) == invitations + 6
        # Every instance builds the same feeds, byte for byte (one SEQUENCE, raised once).
        feeds = [current_feeds(s, services[0].project, clock.now()) for s in stores]
        assert all(
            {k: f.data for k, f in x.items()} == {k: f.data for k, f in feeds[0].items()} for x in feeds
        )
    finally:
        for s in stores:
            s.close()


def test_an_instance_with_another_configuration_is_noticed(config_copy, edit, url, tmp_path):
    import shutil

    other = tmp_path / "other-config"
    shutil.copytree(config_copy, other)
    edit(SEED, "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
    edit(SEED, "end: 2020-09-25 12:00", "end: 2020-09-25 13:00")
    a_store, b_store = open_url(url), open_url(url)
    clock = FixedClock(INVITED_AT)
    a, b = Service(config_copy, a_store, clock), Service(other, b_store, clock)
    a.load()
    b.load()
    try:
        assert a.check_peers("a", timedelta(minutes=3)) == {}
        differ = b.check_peers("b", timedelta(minutes=3))
        assert list(differ) == ["a"]
        assert a.check_peers("a", timedelta(minutes=3)) == {"b": b_fp(b)}
        b.loaded = a.loaded  # b gets the same files
        assert b.check_peers("b", timedelta(minutes=3)) == {}
    finally:
        a_store.close()
        b_store.close()


def b_fp(service: Service) -> str:
    from scheduler.service import config_fingerprint

    return config_fingerprint(service.project)


def test_the_runner_reports_a_lasting_configuration_mismatch(config_copy, edit, url, tmp_path, caplog):
    import asyncio
    import shutil

    from scheduler.runner import Runner
    from scheduler.transport import MaildirTransport

    other = tmp_path / "other-config"
    shutil.copytree(config_copy, other)
    edit(SEED, "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
    edit(SEED, "end: 2020-09-25 12:00", "end: 2020-09-25 13:00")
    peer = open_url(url)
    clock = FixedClock(INVITED_AT)
    stale = Service(other, peer, clock)
    stale.load()
    stale.check_peers("stale-host:1", timedelta(minutes=3))
    store = open_url(url)
    runner = Runner(
        config_dir=config_copy, store=store, clock=clock, transport=MaildirTransport(tmp_path / "mail"),
        echo=lambda _: None, watch=False, peer_check=0.05,
    )  # fmt: skip

    async def main():
        task = asyncio.create_task(runner.run())
        for _ in range(200):
            await asyncio.sleep(0.05)
            stale.check_peers("stale-host:1", timedelta(minutes=3))  # still alive, still different
            if any("config-mismatch" in r.getMessage() for r in caplog.records):
                break
        runner.stop.set()
        await task

    with caplog.at_level(logging.INFO, logger="cyclogram"):
        asyncio.run(main())
    peer.close()
    store.close()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "config-mismatch" in r.getMessage()]
    assert len(errors) == 1 and "stale-host:1" in errors[0].getMessage()


async def test_deliverers_on_postgresql_share_the_outbox_each_message_once(example, pg_url):
    """No global lease on PostgreSQL: two instances (or a `send` beside the service) deliver at once."""
    import asyncio

    from scheduler.delivery import deliver
    from scheduler.mailings import compose, queue
    from scheduler.transport import SMTPSettings, SMTPTransport
    from tests.smtp_server import Recorder, SMTPServer

    clock = FixedClock(INVITED_AT)
    a, b = open_url(pg_url), open_url(pg_url)
    try:
        for meeting in ("heads-2020-09",):
            queue(a, example, compose(example, "invitation", meeting=meeting, store=a, now=clock.now()),
                  now=clock.now())  # fmt: skip
        with b.delivery_lease() as free:
            assert free  # nothing held: both may deliver
        rec = Recorder()
        with SMTPServer(rec) as server:
            t = SMTPTransport(SMTPSettings("127.0.0.1", server.port, timeout=5))
            first, second = await asyncio.gather(
                deliver(a, t, clock, concurrency=3), deliver(b, t, clock, concurrency=3)
            )
        assert first.sent + second.sent == 6 and first.failed == second.failed == 0
        assert all(len(v) == 1 for v in rec.by_recipient().values()) and len(rec.by_recipient()) == 6
        assert a.outbox_counts()["sent"] == 6
    finally:
        a.close()
        b.close()


async def test_feed_servers_on_one_database_serve_the_same_bytes(config_copy, edit, pg_url):
    """Behind a load balancer any instance may answer: the same URL, the same feed, before and after an edit."""
    import aiohttp

    from scheduler.config import load_config
    from scheduler.server import FeedServer

    clock = FixedClock(INVITED_AT)
    stores = [open_url(pg_url), open_url(pg_url)]
    servers = [FeedServer(s, clock, config_copy) for s in stores]
    try:
        project = load_config(config_copy).project
        ports = []
        for server in servers:
            server.update(project)
            ports.append(await server.start("127.0.0.1", 0))
        path = servers[0].private_path("school", "school-1")
        assert path == servers[1].private_path("school", "school-1")  # one secret, one token

        async def bodies() -> list[bytes]:
            async with aiohttp.ClientSession() as http:
                out = []
                for port in ports:
                    async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                        assert resp.status == 200
                        out.append(await resp.read())
                return out

        first = await bodies()
        assert first[0] == first[1]
        edit(SEED, "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
        edit(SEED, "end: 2020-09-25 12:00", "end: 2020-09-25 13:00")
        moved = load_config(config_copy).project
        for server in servers:
            server.update(moved)  # each instance rebuilds on its own; SEQUENCE rises once between them
        second = await bodies()
        assert second[0] == second[1] != first[0]
        assert b"SEQUENCE:1" in second[0]
    finally:
        for server in servers:
            await server.stop()
        for s in stores:
            s.close()
