"""The answers in every state store: the same rules on SQLite and PostgreSQL, and kept by backups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.store import Answer, NewMessage, StateStore, open_url

T0 = datetime(2020, 9, 16, 8, 0, tzinfo=UTC)
MEETING = "heads-2020-09"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path) -> Iterator[StateStore]:
    url = (
        f"sqlite:{tmp_path / 'state.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    s = open_url(url)
    yield s
    s.close()


def _answer(email: str, partstat: str, minutes: int, via: str = "imap") -> Answer:
    return Answer(MEETING, email, partstat, T0 + timedelta(minutes=minutes), via, 1, "INBOX 7/3")


def test_the_latest_answer_is_kept_and_repeats_change_nothing(store: StateStore) -> None:
    assert store.record_answer(_answer("Head@School1.example.org", "ACCEPTED", 10))
    assert not store.record_answer(_answer("head@school1.example.org", "ACCEPTED", 10))
    assert not store.record_answer(_answer("head@school1.example.org", "DECLINED", 5))
    assert store.record_answer(_answer("head@school1.example.org", "TENTATIVE", 10, "link"))
    assert store.record_answer(_answer("head@school2.example.org", "DECLINED", 1))
    got = store.answers(MEETING)
    assert [(a.email, a.partstat, a.via, a.at) for a in got] == [
        ("head@school1.example.org", "TENTATIVE", "link", T0 + timedelta(minutes=10)),
        ("head@school2.example.org", "DECLINED", "imap", T0 + timedelta(minutes=1)),
    ]
    assert store.answers("other") == [] and len(store.answers()) == 2
    with pytest.raises(ValueError):
        store.record_answer(_answer("x@example.org", "DELEGATED", 1))


def test_imap_messages_seen_by_folder_uidvalidity_and_uid(store: StateStore) -> None:
    store.mark_imap_seen("INBOX", 7, 3, "recorded", "…", T0)
    store.mark_imap_seen("INBOX", 7, 4, "forged", "…", T0)
    store.mark_imap_seen("INBOX", 7, 4, "recorded", "…", T0)  # read again once the person was added
    store.mark_imap_seen("INBOX", 8, 3, "stale", "…", T0)
    assert store.imap_seen("INBOX", 7) == {3: "recorded", 4: "recorded"}
    assert store.imap_seen("INBOX", 8) == {3: "stale"} and store.imap_seen("Other", 7) == {}


def test_sent_to_finds_one_persons_delivered_messages_in_any_case(store: StateStore) -> None:
    def msg(recipient: str, kind: str) -> NewMessage:
        key = f"{MEETING}/{kind}"
        return NewMessage(
            f"{key}|{recipient.lower()}|0", key, kind, MEETING, recipient, 0, b"x", "o@example.org"
        )

    store.enqueue([msg("Head@School1.example.org", "invitation"), msg("other@example.org", "invitation")], T0)
    store.enqueue([msg("head@school1.example.org", "agenda")], T0)
    for row in store.claim(T0, 10):
        if row.kind == "invitation":
            store.mark_sent(row.id, T0, "250 ok")
        else:
            store.mark_failed(row.id, T0, "550 no")
    assert [r.kind for r in store.sent_to(MEETING, "HEAD@school1.example.org")] == ["invitation"]
    assert store.sent_to("other-meeting", "head@school1.example.org") == []


def test_answers_travel_with_a_dump(store: StateStore, tmp_path: Path) -> None:
    store.record_answer(_answer("head@school1.example.org", "ACCEPTED", 10))
    store.mark_imap_seen("INBOX", 7, 3, "recorded", "UID 3", T0)
    copy = open_url(f"sqlite:{tmp_path / 'copy.db'}")
    try:
        counts = copy.load(store.dump())
        assert counts["answers"] == 1 and counts["imap_seen"] == 1
        assert copy.answers(MEETING) == store.answers(MEETING)
        assert copy.imap_seen("INBOX", 7) == {3: "recorded"}
    finally:
        copy.close()
