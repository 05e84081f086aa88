"""The roster, the answer links in the mail, the rsvp_reminder kind and the answers' store rules."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import main
from scheduler.config import load_config
from scheduler.mailings import compose
from scheduler.plan import build_plan
from scheduler.rsvp.attendance import csv_safe, roster
from scheduler.rsvp.links import answer_token, person_key, verify_answer_token
from scheduler.store import Answer, SQLiteStore

MEETING = "heads-2020-09"
NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)


def _answer(email: str, partstat: str, minutes: int, via: str = "link") -> Answer:
    return Answer(MEETING, email, partstat, NOW + timedelta(minutes=minutes), via)


def test_the_latest_answer_counts_and_repeats_change_nothing(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")
    assert store.record_answer(_answer("Head@School1.example.org", "ACCEPTED", 10, "imap"))
    assert not store.record_answer(_answer("head@school1.example.org", "ACCEPTED", 10, "imap"))  # again
    assert not store.record_answer(_answer("head@school1.example.org", "DECLINED", 5, "imap"))  # older
    assert store.record_answer(_answer("head@school1.example.org", "TENTATIVE", 20))
    [kept] = store.answers(MEETING)
    assert (kept.email, kept.partstat, kept.via) == ("head@school1.example.org", "TENTATIVE", "link")
    store.close()


def test_tokens_are_per_meeting_and_person():
    a = answer_token("s", MEETING, "head@school1.example.org")
    assert a == answer_token("s", MEETING, "HEAD@school1.example.org")
    assert a != answer_token("s", "other", "head@school1.example.org")
    assert a != answer_token("s", MEETING, "head@school2.example.org")
    assert a != answer_token("t", MEETING, "head@school1.example.org")
    assert a.startswith(person_key("head@school1.example.org"))
    assert verify_answer_token("s", MEETING, "head@school1.example.org", a)
    assert not verify_answer_token("s", MEETING, "head@school1.example.org", a[:-1])
    assert not verify_answer_token("s", MEETING, "head@school1.example.org", "ё" * len(a))


def test_invitations_and_updates_carry_each_persons_links_and_agendas_do_not(config_copy, tmp_path):
    loaded = load_config(config_copy)
    store = SQLiteStore(tmp_path / "state.db")
    messages = compose(loaded, "invitation", meeting=MEETING, store=store, now=NOW)
    seen = set()
    for m in messages:
        msg = message_from_bytes(m.message, policy=policy.default)
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        links = re.findall(
            r"https://cyclogram\.example\.org/rsvp/heads-2020-09/([\w-]+)/(yes|no|maybe)", text
        )
        assert sorted(w for _, w in links) == ["maybe", "no", "yes"]
        token = links[0][0]
        assert {t for t, _ in links} == {token} and token not in seen
        seen.add(token)
        assert html.count(f"/rsvp/heads-2020-09/{token}/") == 3
        words = (
            ("Yes", "No", "Maybe") if m.recipient == "head@school37.example.org" else ("Приду", "Не приду")
        )
        assert all(w in text for w in words)
    agenda = compose(loaded, "agenda", meeting=MEETING, store=store, now=NOW)
    assert all(b"/rsvp/" not in message_from_bytes(m.message).as_bytes() for m in agenda)
    store.close()


def test_rsvp_reminder_is_off_by_default_and_goes_only_to_who_has_not_answered(config_copy, tmp_path, edit):
    loaded = load_config(config_copy)
    assert not [e for e in build_plan(loaded.project, NOW) if e.kind == "rsvp_reminder"]
    edit(
        "project.yaml",
        "rsvp_reminder: {enabled: false, days_before: 5",
        "rsvp_reminder: {enabled: true, days_before: 4",
    )
    loaded = load_config(config_copy)
    planned = [
        e for e in build_plan(loaded.project, NOW) if e.kind == "rsvp_reminder" and e.meeting == MEETING
    ]
    assert [e.at.date().isoformat() for e in planned] == ["2020-09-21"]
    store = SQLiteStore(tmp_path / "state.db")
    store.record_answer(_answer("head@school1.example.org", "ACCEPTED", 1))
    store.record_answer(_answer("head@school2.example.org", "DECLINED", 1, "imap"))
    messages = compose(loaded, "rsvp_reminder", meeting=MEETING, store=store, now=NOW)
    assert sorted(m.recipient for m in messages) == [
        "deputy@school1.example.org", "head@gym3.example.org", "head@lyceum86.example.org",
        "head@school37.example.org",
    ]  # fmt: skip
    body = message_from_bytes(messages[0].message, policy=policy.default).get_body(("plain",)).get_content()
    assert "/rsvp/heads-2020-09/" in body
    store.close()


def test_one_person_heading_two_schools_answers_once_and_shows_under_both(config_copy, tmp_path, edit):
    # Anna heads school-1 and school-2 and is a notified contact of lyceum-86.
    edit("participants.yaml", "head@school2.example.org", "head@school1.example.org")
    edit(
        "participants.yaml",
        'head: {name: "Соколов Дмитрий Владимирович", email: head@lyceum86.example.org}',
        'head: {name: "Соколов Дмитрий Владимирович", email: head@lyceum86.example.org}\n'
        '    contacts:\n      - {name: "Иванова Анна Петровна", email: head@school1.example.org, notify: true}',
    )
    loaded = load_config(config_copy)
    project = loaded.project
    store = SQLiteStore(tmp_path / "state.db")
    messages = compose(loaded, "invitation", meeting=MEETING, store=store, now=NOW)
    anna = [m for m in messages if m.recipient == "head@school1.example.org"]
    assert len(anna) == 1  # one message, one set of links
    text = message_from_bytes(anna[0].message, policy=policy.default).get_body(("plain",)).get_content()
    assert len(set(re.findall(r"/rsvp/heads-2020-09/([\w-]+)/", text))) == 1
    store.record_answer(_answer("head@school1.example.org", "ACCEPTED", 1))
    result = roster(project, store, project.meeting(MEETING))
    mine = [(e.school, e.partstat) for e in result.entries if e.email == "head@school1.example.org"]
    assert mine == [("school-1", "ACCEPTED"), ("school-2", "ACCEPTED"), ("lyceum-86", "ACCEPTED")]
    # Counted once: Anna, the deputy, gym3, lyceum86's head and school37's head are five people.
    assert result.counts == {"ACCEPTED": 1, "DECLINED": 0, "TENTATIVE": 0, "NEEDS-ACTION": 4}
    store.close()


def _cli(config: Path, state: Path, *args: str):
    env = {"CYCLOGRAM_CONFIG": str(config), "CYCLOGRAM_STATE": str(state)}
    return CliRunner().invoke(main, ["--now", "2020-09-20T10:00+03:00", *args], env=env)


def test_attendance_command_in_three_forms_with_formulas_neutralised(config_copy, tmp_path, edit):
    edit("participants.yaml", "Jane Smith", '=HYPERLINK(\\"http://evil.example\\")')
    state = tmp_path / "var"
    store = SQLiteStore(state / "state.db")
    store.record_answer(_answer("head@school37.example.org", "DECLINED", 3))
    store.close()
    table = _cli(config_copy, state, "attendance", MEETING)
    assert table.exit_code == 0, table.output
    assert "DECLINED" in table.output and "NEEDS-ACTION 5" in table.output and "(6 people)" in table.output
    doc = json.loads(_cli(config_copy, state, "attendance", MEETING, "--json").output)
    assert set(doc["counts"]) == {"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION"}
    assert {"email", "school", "partstat", "at", "via"} <= set(doc["attendees"][0])
    rows = list(csv.DictReader(io.StringIO(_cli(config_copy, state, "attendance", MEETING, "--csv").output)))
    jane = next(r for r in rows if r["email"] == "head@school37.example.org")
    assert jane["name"].startswith("'=") and jane["partstat"] == "DECLINED" and jane["via"] == "link"
    assert [csv_safe(x) for x in ("+1", "-1", "@a", "\tx", "ok")] == ["'+1", "'-1", "'@a", "'\tx", "ok"]
    url = _cli(config_copy, state, "attendance", MEETING, "--url").output.strip()
    assert re.fullmatch(r"https://cyclogram\.example\.org/attendance/heads-2020-09/[\w-]{32}", url), url
    unknown = _cli(config_copy, state, "attendance", "nope")
    assert unknown.exit_code == 1 and "no meeting 'nope'" in unknown.output


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE"]), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_whatever_order_answers_arrive_in_the_latest_given_is_kept(answers) -> None:
    store = SQLiteStore(":memory:")
    try:
        for minutes, partstat, by_link in answers:
            store.record_answer(
                _answer("head@school1.example.org", partstat, minutes, "link" if by_link else "imap")
            )
        latest = max(m for m, _, _ in answers)
        # Of the answers given at the latest moment, the last one read wins.
        expected = [p for m, p, _ in answers if m == latest][-1]
        [kept] = store.answers(MEETING)
        assert kept.partstat == expected and kept.at == NOW + timedelta(minutes=latest)
    finally:
        store.close()


def test_send_rsvp_reminder_asks_about_those_who_have_not_answered(config_copy, tmp_path):
    state = tmp_path / "var"
    store = SQLiteStore(state / "state.db")
    for email in ("head@school1.example.org", "head@school2.example.org", "head@gym3.example.org"):
        store.record_answer(_answer(email, "ACCEPTED", 1))
    store.close()
    env = {"CYCLOGRAM_CONFIG": str(config_copy), "CYCLOGRAM_STATE": str(state), "CYCLOGRAM_SMTP_HOST": ""}
    result = CliRunner().invoke(
        main, ["--now", "2020-09-20T10:00+03:00", "send", "rsvp_reminder", MEETING], env=env, input="y\n"
    )
    assert result.exit_code == 0, result.output
    assert "to 3 recipient(s)" in result.output and "sent 3, failed 0" in result.output
