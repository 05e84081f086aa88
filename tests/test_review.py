"""Review before sending, end to end on a shifted clock: held, approved, sent once; withdrawn; approved late."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from scheduler import review
from scheduler.clock import FixedClock
from scheduler.service import Service
from scheduler.store import SQLiteStore
from tests.conftest import ROOT

MSK = "+03:00"
SEED = "meetings/2020-09-25-heads.yaml"
INVITATION, AGENDA, REMINDER = (f"heads-2020-09/{k}" for k in ("invitation", "agenda", "reminder"))
ORGANIZER = "gcro@example.org"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + MSK)


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStore(tmp_path / "var" / "state.db")
    yield s
    s.close()


@pytest.fixture
def reviewed(config_copy, edit):
    edit("project.yaml", "  catch_up_hours: 24", "  catch_up_hours: 24\n  review: true")
    return config_copy


def _service(config: Path, store: SQLiteStore, when: str) -> tuple[Service, FixedClock]:
    clock = FixedClock(at(when))
    service = Service(config, store, clock)
    service.load()
    return service, clock


def _rows(store: SQLiteStore, key: str) -> list:
    return [r for r in store.outbox() if r.mailing == key]


def _digests(store: SQLiteStore) -> list:
    return [r for r in store.outbox() if r.kind == review.DIGEST_KIND]


def test_held_then_approved_goes_out_once(reviewed, store):
    service, clock = _service(reviewed, store, "2020-09-09T12:00")
    actions = service.due()
    # Drafted two days ahead; the organiser gets one digest, the schools nothing.
    assert [a.what for a in actions] == ["digest"]
    assert [r.recipient for r in store.outbox()] == [ORGANIZER]
    digest = message_from_bytes(store.outbox()[0].message, policy=policy.default)
    assert str(digest["Subject"]) == "На проверке рассылок: 1"
    text = digest.get_body(("plain",)).get_content()
    assert INVITATION in text and "Тема: Приглашение: Встреча руководителей" in text
    assert "приглашение × 1" in text  # the kinds in the organiser's language
    assert "Уважаем" in text  # the preview shows the letter's first lines
    html = digest.get_body(("html",)).get_content()
    assert "<script" not in html and "&lt;" not in text
    assert service.due() == []  # the same drafts: no second digest

    [draft] = review.drafts(service.loaded, store, clock.now())
    assert (draft.entry.key, draft.state, len(draft.recipients)) == (INVITATION, "draft", 6)

    clock.set(at("2020-09-11T10:00"))  # its time: not approved, nothing goes out
    assert [a for a in service.due() if a.what == "queued"] == []
    assert _rows(store, INVITATION) == []

    clock.set(at("2020-09-11T10:05"))
    review.approve(service.loaded, store, clock.now(), [INVITATION])
    queued = [a for a in service.due() if a.what == "queued"]
    assert [a.key for a in queued] == [INVITATION]
    assert len(_rows(store, INVITATION)) == 6
    clock.set(at("2020-09-11T12:00"))
    assert [a for a in service.due() if a.what == "queued"] == []  # sent once
    assert len(_rows(store, INVITATION)) == 6


def test_approved_ahead_goes_out_on_time_and_a_held_one_never(reviewed, store):
    service, clock = _service(reviewed, store, "2020-09-20T12:00")
    service.due(catching_up=True)  # the invitation was not approved within a day of its time: missed
    assert store.mailing_states()[INVITATION] == "missed"
    review.approve(service.loaded, store, clock.now(), [AGENDA])
    review.hold(service.loaded, store, clock.now(), REMINDER)
    assert store.review(REMINDER).state == "held"

    clock.set(at("2020-09-22T10:00"))
    assert [a.key for a in service.due() if a.what == "queued"] == [AGENDA]
    clock.set(at("2020-09-24T09:00"))
    assert [a for a in service.due() if a.what == "queued"] == []
    clock.set(at("2020-09-25T10:00"))  # the meeting begins: the held reminder is reported, never sent
    missed = {a.key: a for a in service.due() if a.what == "missed"}
    assert "not approved before its meeting began" in missed[REMINDER].detail
    assert _rows(store, REMINDER) == []
    with pytest.raises(review.UnknownTargetError, match="missed already"):
        review.approve(service.loaded, store, clock.now(), [REMINDER])


def test_an_edit_after_approval_withdraws_it(reviewed, store, edit):
    service, clock = _service(reviewed, store, "2020-09-09T12:00")
    service.due()
    review.approve(service.loaded, store, clock.now(), every=True)
    assert store.review(INVITATION).state == "approved"

    edit(SEED, "Б. Октябрьская, д.44/60", "ул. Свободы, д. 1")  # the place changes the letter
    assert service.reload()
    clock.set(at("2020-09-10T12:00"))
    actions = service.due()
    assert store.review(INVITATION).state == "withdrawn"
    assert [a.what for a in actions] == ["digest"]  # the organiser hears of the withdrawal
    text = message_from_bytes(_digests(store)[-1].message, policy=policy.default).get_body(("plain",))
    assert "одобрение снято" in text.get_content()

    clock.set(at("2020-09-11T10:00"))
    assert [a for a in service.due() if a.what == "queued"] == []
    assert _rows(store, INVITATION) == []

    review.approve(service.loaded, store, clock.now(), [INVITATION])  # approved again, as it is now
    assert [a.key for a in service.due() if a.what == "queued"] == [INVITATION]
    body = message_from_bytes(_rows(store, INVITATION)[0].message, policy=policy.default)
    assert "ул. Свободы, д. 1" in body.get_body(("plain",)).get_content()


def test_an_edit_that_leaves_the_letter_alone_keeps_the_approval(reviewed, store, edit):
    service, clock = _service(reviewed, store, "2020-09-09T12:00")
    service.due()
    review.approve(service.loaded, store, clock.now(), [INVITATION])
    edit(SEED, "title:", "# a comment an organiser added\ntitle:")
    service.reload()
    clock.set(at("2020-09-11T10:00"))
    assert [a.key for a in service.due() if a.what == "queued"] == [INVITATION]


def test_approved_late_goes_out_inside_the_catch_up_window_else_missed(reviewed, store):
    service, clock = _service(reviewed, store, "2020-09-11T10:00")
    service.due()
    clock.set(at("2020-09-11T20:00"))  # 10 h late: still useful
    review.approve(service.loaded, store, clock.now(), [INVITATION])
    [queued] = [a for a in service.due() if a.what == "queued"]
    assert queued.key == INVITATION and "late" in queued.detail

    clock.set(at("2020-09-22T10:00"))
    service.due()
    clock.set(at("2020-09-23T09:00"))  # 23 h late: approved just inside the window...
    review.approve(service.loaded, store, clock.now(), [AGENDA])
    clock.set(at("2020-09-23T12:00"))  # ...but the service wakes at 26 h: beyond it, missed
    missed = [a for a in service.due() if a.what == "missed"]
    assert [a.key for a in missed] == [AGENDA] and "catch-up window" in missed[0].detail
    assert _rows(store, AGENDA) == []


def test_approving_what_is_too_late_says_so(reviewed, store):
    service, clock = _service(reviewed, store, "2020-09-12T12:00")  # the invitation is 26 h late
    with pytest.raises(review.UnknownTargetError, match="too late to send it now"):
        review.approve(service.loaded, store, clock.now(), [INVITATION])
    assert INVITATION not in [d.entry.key for d in review.drafts(service.loaded, store, clock.now())]


def test_review_per_meeting_and_per_kind(config_copy, store, edit):
    edit(SEED, "title:", "mailings:\n  review: true\ntitle:")
    edit(
        "project.yaml", "  event_reminder: {enabled: true,", "  event_reminder: {review: true, enabled: true,"
    )
    service, _ = _service(config_copy, store, "2020-09-09T12:00")
    project = service.project
    held = {e.key for e in service.plan() if review.is_held(project, e)}
    assert INVITATION in held and "network-seminar-2021-01/invitation" not in held
    assert any(k.startswith("event/") for k in held)


def _cli(config: Path, state: Path, now: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "--config", str(config), "--state", str(state),
         "--now", now + MSK, *args],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip


def test_the_commands(reviewed, tmp_path):
    state = tmp_path / "cli-var"
    out = _cli(reviewed, state, "2020-09-09T12:00", "review", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [(d["key"], d["review"], len(d["recipients"])) for d in doc["drafts"]] == [
        (INVITATION, "draft", 6)
    ]

    plan = json.loads(_cli(reviewed, state, "2020-09-09T12:00", "plan", "--json").stdout)
    marks = {e["key"]: e["review"] for e in plan["entries"]}
    assert marks[INVITATION] == "pending" and marks[AGENDA] == "pending"

    wrong = _cli(reviewed, state, "2020-09-09T12:00", "approve", "nothing/here")
    assert wrong.returncode == 1 and "cyclogram review" in wrong.stderr and "Traceback" not in wrong.stderr
    neither = _cli(reviewed, state, "2020-09-09T12:00", "approve")
    assert neither.returncode == 2 and "--all" in neither.stderr

    ok = _cli(reviewed, state, "2020-09-09T12:00", "approve", "--all")
    assert ok.returncode == 0 and f"Approved {INVITATION} (6 recipient(s))." in ok.stdout
    held = _cli(reviewed, state, "2020-09-09T12:00", "hold", AGENDA)
    assert held.returncode == 0 and AGENDA in held.stdout

    table = _cli(reviewed, state, "2020-09-09T12:00", "plan").stdout
    assert "review: approved" in table and "review: held" in table
    listed = _cli(reviewed, state, "2020-09-09T12:00", "review").stdout
    assert f"{INVITATION}  [approved]" in listed


def test_an_update_is_held_until_approved_then_sent_once(reviewed, store, edit):
    service, clock = _service(reviewed, store, "2020-09-11T10:00")
    service.due()
    review.approve(service.loaded, store, clock.now(), [INVITATION])
    assert [a.key for a in service.due() if a.what == "queued"] == [INVITATION]

    clock.set(at("2020-09-14T12:00"))
    edit(SEED, "Б. Октябрьская, д.44/60", "ул. Свободы, д. 1")
    service.reload()
    assert service.react_to_changes() == []  # held: nothing queued, the schools' record unchanged
    update = "heads-2020-09/update"
    assert _rows(store, update) == []
    [draft] = [d for d in review.drafts(service.loaded, store, clock.now()) if d.entry.key == update]
    assert draft.state == "draft" and any(c.startswith("place:") for c in draft.changes)
    assert "ул. Свободы, д. 1" in draft.preview or "ул. Свободы" in draft.subject + draft.preview
    assert [a.what for a in service.due()] == ["digest"]  # the organiser hears of it

    review.approve(service.loaded, store, clock.now(), [update])
    [sent] = service.react_to_changes()
    assert sent.key == update and len(_rows(store, update)) == 6
    assert service.react_to_changes() == []  # once
    assert not [d for d in review.drafts(service.loaded, store, clock.now()) if d.entry.key == update]


def test_the_store_keeps_reviews_across_a_reopen(tmp_path):
    from datetime import UTC

    path = tmp_path / "state.db"
    now = datetime(2020, 9, 9, 9, 0, tzinfo=UTC)
    s = SQLiteStore(path)
    s.set_review("a/invitation", "draft", "f1", now)
    s.set_review("a/invitation", "approved", "f2", now)
    s.mark_notified(["a/invitation"], now)
    s.close()
    s = SQLiteStore(path)
    try:
        from scheduler.store.sqlite import _SCHEMA

        assert s._db.execute("PRAGMA user_version").fetchone()[0] == len(_SCHEMA) >= 3
        got = s.review("a/invitation")
        assert (got.state, got.fingerprint, got.notified) == ("approved", "f2", now)
        assert set(s.reviews()) == {"a/invitation"} and s.review("nothing") is None
    finally:
        s.close()


def test_a_wrong_review_value_is_a_clear_configuration_error(config_copy, edit):
    from scheduler.config import load_config
    from scheduler.errors import ConfigError

    edit(SEED, "title:", "mailings:\n  review: maybe\ntitle:")
    with pytest.raises(ConfigError) as err:
        load_config(config_copy)
    assert "review" in str(err.value) and "2020-09-25-heads.yaml" in str(err.value)


async def test_a_running_service_sends_what_another_process_approves(reviewed, tmp_path):
    import asyncio
    import mailbox

    from scheduler.runner import Runner
    from scheduler.transport import MaildirTransport

    maildir = tmp_path / "mail"
    db = tmp_path / "run" / "state.db"
    running = SQLiteStore(db)
    clock = FixedClock(at("2020-09-11T09:00"))  # an hour before the invitation's time: drafted, not due
    runner = Runner(reviewed, running, clock, MaildirTransport(maildir, durable=False), watch=False,
                    echo=lambda line: None, review_poll=0.05)  # fmt: skip

    def kinds() -> list[str]:
        if not (maildir / "new").is_dir():
            return []
        box = mailbox.Maildir(maildir, create=False)
        return sorted(message_from_bytes(box.get_bytes(k))["X-Cyclogram-Kind"] for k in box.iterkeys())

    async def until(predicate, what: str) -> None:
        for _ in range(600):  # a bounded wait for the service's own loop, not a timing assumption
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; delivered: {kinds()}")

    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: kinds() == [review.DIGEST_KIND], "the digest")
        clock.set(at("2020-09-11T10:01"))
        other = SQLiteStore(db)  # `cyclogram approve` in another process: its own connection
        try:
            from scheduler.config import load_config

            review.approve(load_config(reviewed), other, clock.now(), [INVITATION])
        finally:
            other.close()
        await until(lambda: kinds().count("invitation") == 6, "the approved invitation")
    finally:
        runner.stop.set()
        await asyncio.wait_for(task, 60)
        running.close()
    assert kinds().count("invitation") == 6


def test_a_rehearsal_drafts_at_review_days_ahead_and_sends_nothing_unapproved(reviewed, store, tmp_path):
    import asyncio
    from datetime import date

    from scheduler.simulate import simulate
    from scheduler.transport import MaildirTransport

    result = asyncio.run(
        simulate(reviewed, store, MaildirTransport(tmp_path / "mail"), date(2020, 9, 1), date(2020, 9, 30))
    )
    digests = [a for a in result.actions if a.what == "digest"]
    assert digests[0].at == at("2020-09-09T10:00")  # two days before the invitation's 11 Sept 10:00
    assert INVITATION in digests[0].detail
    assert not [a for a in result.actions if a.what == "queued"]
    assert {r.kind for r in store.outbox()} == {review.DIGEST_KIND}
