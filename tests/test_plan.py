"""The plan: every mailing of the year at its time, a pure function of the model and the clock."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from scheduler.plan import build_plan, entry_recipients, mailing_key, select


def test_seed_meeting_mailings_follow_the_policy(example):
    project = example.project
    now = datetime(2020, 9, 1, tzinfo=UTC)
    seed = [
        e for e in build_plan(project, now) if e.meeting == "heads-2020-09" and e.kind != "action_reminder"
    ]
    got = {e.kind: e.at.isoformat() for e in seed}
    assert got == {
        "invitation": "2020-09-11T10:00:00+03:00",
        "agenda": "2020-09-22T10:00:00+03:00",
        "reminder": "2020-09-24T09:00:00+03:00",
        "summary": "2020-09-26T10:00:00+03:00",
    }
    assert {e.recipients for e in seed} == {6}
    assert all(e.state == "upcoming" for e in seed)


def test_meeting_override_moves_its_invitation(example):
    entries = build_plan(example.project, datetime(2020, 9, 1, tzinfo=UTC))
    inv = next(e for e in entries if e.key == "network-seminar-2021-01/invitation")
    assert inv.at.isoformat() == "2021-01-18T10:00:00+03:00"  # 10 days before, the project's 10:00
    assert inv.recipients == 4  # the Network team's three schools, one with a deputy on copy


def test_states_against_now_and_the_outbox(example):
    now = datetime(2020, 9, 23, 12, 0, tzinfo=UTC)
    done = {"heads-2020-09/invitation": "sent"}
    entries = {e.key: e for e in build_plan(example.project, now, done)}
    assert entries["heads-2020-09/invitation"].state == "sent"
    assert entries["heads-2020-09/agenda"].state == "past"
    assert entries["heads-2020-09/reminder"].state == "upcoming"
    assert entries["summing-up-2021-05/summary"].state == "waiting"  # no minutes yet


def test_action_items_and_key_events_are_planned(example):
    entries = build_plan(example.project, datetime(2020, 9, 1, tzinfo=UTC))
    action = next(e for e in entries if e.kind == "action_reminder" and e.item == "article-lyceum")
    assert action.at.date() == date(2021, 3, 12)
    assert [r.school for r in entry_recipients(example.project, action)] == ["lyceum-86"]
    consultations = [e for e in entries if e.event == "consultations"]
    assert len(consultations) == 6  # last Thursdays Oct-Apr, without 31 December
    assert not any(e.event == "interim-reports" for e in entries)  # month-only: no date to remind of
    workshop = next(e for e in entries if e.event == "digital-workshop")
    assert {r.school for r in entry_recipients(example.project, workshop)} == {
        "lyceum-86",
        "school-37",
        "school-2",
    }


def test_plan_is_sorted_and_keys_are_unique(example):
    entries = build_plan(example.project, datetime(2020, 9, 1, tzinfo=UTC))
    instants = [e.at.astimezone(UTC) for e in entries]
    assert instants == sorted(instants)
    assert len({e.key for e in entries}) == len(entries)
    doc = json.loads(json.dumps([e.as_json() for e in entries]))
    assert all(datetime.fromisoformat(d["at"]).utcoffset() is not None for d in doc)


def test_select_narrows_by_local_day(example):
    entries = build_plan(example.project, datetime(2020, 9, 1, tzinfo=UTC))
    sept = select(entries, date(2020, 9, 1), date(2020, 9, 30))
    assert {e.at.month for e in sept} == {9} and len(sept) == 4


def test_mailing_key_is_independent_of_time():
    assert mailing_key("invitation", "m1") == "m1/invitation"
    assert mailing_key("action_reminder", "m1", item="a") == "m1/action_reminder/a"
    assert mailing_key("event_reminder", event="e", item="2020-10-29") == "event/e/event_reminder/2020-10-29"


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2022, 1, 1), timezones=st.just(UTC)))
def test_plan_marks_exactly_what_is_past(example, now):
    for e in build_plan(example.project, now):
        if e.state == "past":
            assert e.at <= now
        elif e.state == "upcoming":
            assert e.at > now


def test_an_all_day_meeting_is_announced_by_its_days(config_copy, edit):
    from scheduler.config import load_config

    seed = "meetings/2020-09-25-heads.yaml"
    edit(seed, "start: 2020-09-25 10:00", "start: 2020-09-25")
    edit(seed, "end: 2020-09-25 12:00", "end: 2020-09-26")
    edit("project.yaml", 'reminder: {days_before: 1, at: "09:00"}', "reminder: {days_before: 1}")
    edit("project.yaml", 'summary: {days_after: 1, at: "10:00"}', "summary: {days_after: 0}")
    project = load_config(config_copy).project
    entries = [
        e for e in build_plan(project, datetime(2020, 9, 1, tzinfo=UTC)) if e.meeting == "heads-2020-09"
    ]
    got = {e.kind: e.at.isoformat() for e in entries if e.kind != "action_reminder"}
    assert got == {
        "invitation": "2020-09-11T10:00:00+03:00",
        "agenda": "2020-09-22T10:00:00+03:00",
        "reminder": "2020-09-24T09:00:00+03:00",  # no hour of its own: the working morning
        "summary": "2020-09-27T09:00:00+03:00",  # after its last day, in the morning
    }
    invitation = next(e for e in entries if e.kind == "invitation")
    assert invitation.deadline.isoformat() == "2020-09-25T00:00:00+03:00"
