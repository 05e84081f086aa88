"""Every feed the example builds, read back by icalendar, ical and vobject; audiences; atomic writes."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import vobject
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from scheduler.calendar import event_states, uid_for
from scheduler.config import LoadedConfig, load_config
from scheduler.feeds import build_feeds, current_feeds, write_feeds
from scheduler.model import Project
from scheduler.store import EventState, SQLiteStore

NOW = datetime(2020, 9, 15, 7, 0, tzinfo=UTC)


class MemoryStates:
    """A store stand-in that remembers nothing: every item at SEQUENCE 0."""

    def event_state(self, uid: str, fingerprint: str, now: datetime) -> EventState:
        return EventState(uid, 0, now, now)

    def event_states(self, items: list[tuple[str, str]], now: datetime) -> dict[str, EventState]:
        return {uid: self.event_state(uid, fingerprint, now) for uid, fingerprint in items}


def _read_all(data: bytes) -> dict[str, dict[str, Any]]:
    """Parse with all three readers; return per UID what each saw."""
    text = data.decode("utf-8")
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    ours = {str(e["UID"]): e for e in Calendar.from_ical(data).walk("VEVENT")}
    strict = {e.uid: e for e in IcsCalendarStream.calendar_from_ics(text).events}
    vobj = {e.uid.value: e for e in getattr(vobject.readOne(text), "vevent_list", [])}
    assert set(ours) == set(strict) == set(vobj)
    return {uid: {"icalendar": ours[uid], "ical": strict[uid], "vobject": vobj[uid]} for uid in ours}


def _same_instant(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.astimezone(UTC) == b.astimezone(UTC)
    return a == b


def _check_event(seen: dict[str, Any], start: Any, end: Any, summary: str) -> None:
    ev, strict, vo = seen["icalendar"], seen["ical"], seen["vobject"]
    for value in (ev["DTSTART"].dt, strict.dtstart, vo.dtstart.value):
        assert _same_instant(value, start), (value, start)
    for value in (ev["DTEND"].dt, strict.dtend, vo.dtend.value):
        assert _same_instant(value, end), (value, end)
    assert str(ev["SUMMARY"]) == strict.summary == vo.summary.value == summary


def test_every_example_feed_read_by_three_readers(example: LoadedConfig, tmp_path: Path) -> None:
    p = example.project
    feeds = build_feeds(p, event_states(SQLiteStore(tmp_path / "s.db"), p, NOW), NOW)
    expected = {"project.ics"} | {f"schools/{s.id}.ics" for s in p.schools}
    expected |= {f"teams/{t.id}.ics" for t in p.teams} | {f"meetings/{m.id}.ics" for m in p.meetings}
    expected |= {"organiser/all.ics"}  # the organiser's private all-items feed
    assert set(feeds) == expected
    for path, feed in feeds.items():
        seen = _read_all(feed.data)
        for meeting in p.meetings:
            uid = uid_for(p, "meeting", meeting.id)
            if uid in seen:
                _check_event(seen[uid], p.meeting_start(meeting), p.meeting_end(meeting), meeting.title)
                assert str(seen[uid]["icalendar"]["LOCATION"]) == meeting.place.one_line()
                assert seen[uid]["ical"].location == meeting.place.one_line()
                assert seen[uid]["vobject"].location.value == meeting.place.one_line()
        for event in p.all_events():
            uid = uid_for(p, "event", event.id)
            if uid in seen:
                assert seen[uid]["ical"].summary == event.title, path
                assert seen[uid]["vobject"].summary.value == event.title
                assert seen[uid]["icalendar"]["DTSTART"].dt == seen[uid]["ical"].dtstart


def test_school_feeds_hold_exactly_their_audience(example: LoadedConfig, tmp_path: Path) -> None:
    p = example.project
    feeds = build_feeds(p, event_states(SQLiteStore(tmp_path / "s.db"), p, NOW), NOW)
    uids = {path: set(_read_all(f.data)) for path, f in feeds.items()}
    host = "@cyclogram.example.org"
    # the network seminar (team network) is not in a digital-team school's feed; the workshop is in school-2's
    assert "event-network-seminar" + host in uids["schools/school-1.ics"]
    assert "event-network-seminar" + host not in uids["schools/lyceum-86.ics"]
    assert "event-digital-workshop" + host in uids["schools/school-2.ics"]
    assert "event-digital-workshop" + host not in uids["schools/gymnasium-3.ics"]
    assert "action-heads-2020-09-article-lyceum" + host in uids["schools/lyceum-86.ics"]
    assert "action-heads-2020-09-article-lyceum" + host not in uids["schools/school-37.ics"]
    assert uids["meetings/heads-2020-09.ics"] == {"meeting-heads-2020-09" + host}
    # The public feeds carry only what is addressed to everyone; each school's holds all of that too.
    assert "event-network-seminar" + host not in uids["project.ics"]
    assert "meeting-network-seminar-2021-01" + host not in uids["project.ics"]
    assert "event-consultations" + host in uids["project.ics"]
    assert all(uids["project.ics"] <= uids[f"schools/{s.id}.ics"] for s in p.schools)
    assert not feeds["meetings/network-seminar-2021-01.ics"].public
    assert feeds["meetings/heads-2020-09.ics"].public


def test_english_school_reads_its_feed_in_english(example: LoadedConfig, tmp_path: Path) -> None:
    p = example.project
    feeds = build_feeds(p, event_states(SQLiteStore(tmp_path / "s.db"), p, NOW), NOW)
    ev = _read_all(feeds["schools/school-37.ics"].data)["meeting-heads-2020-09@cyclogram.example.org"]
    text = str(ev["icalendar"]["DESCRIPTION"])
    assert "Agenda:" in text and "Goal:" in text and "September 25, 2020" in text


def test_build_writes_atomically_and_leaves_unchanged_files(config_copy: Path, edit, tmp_path: Path) -> None:
    out = tmp_path / "out"
    store = SQLiteStore(tmp_path / "s.db")
    first = write_feeds(current_feeds(store, load_config(config_copy).project, NOW), out)
    assert "project.ics" in first and "schools/school-37.ics" in first
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.ics")}
    os.utime(out / "project.ics", ns=(1, 1))
    later = NOW + timedelta(days=3)
    assert write_feeds(current_feeds(store, load_config(config_copy).project, later), out) == []
    assert (out / "project.ics").stat().st_mtime_ns == 1  # byte-identical: not rewritten
    edit("meetings/2021-01-28-network-seminar.yaml", "15:00", "15:30")
    changed = write_feeds(current_feeds(store, load_config(config_copy).project, later), out)
    assert "meetings/network-seminar-2021-01.ics" in changed and "schools/lyceum-86.ics" not in changed
    assert not list(out.rglob("*.tmp"))
    assert len(stamps) == 12  # 1 project, 5 schools, 2 teams, 3 meetings, the organiser's feed


# -- a property over generated configurations ------------------------------------------------------------

ZONES = ["Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Yekaterinburg"]


@st.composite
def projects(draw: st.DrawFn) -> Project:
    n_schools = draw(st.integers(1, 4))
    schools = [f"s{i}" for i in range(n_schools)]
    teams = [
        {
            "id": f"t{i}",
            "name": f"Команда {i}",
            "schools": draw(st.lists(st.sampled_from(schools), min_size=1, unique=True)),
        }
        for i in range(draw(st.integers(0, 2)))
    ]

    def audience() -> Any:
        if draw(st.booleans()):
            return "all"
        chosen_s = draw(st.lists(st.sampled_from(schools), unique=True, max_size=2))
        chosen_t = (
            draw(st.lists(st.sampled_from([t["id"] for t in teams]), unique=True, max_size=2))
            if teams
            else []
        )
        if not chosen_s and not chosen_t:
            chosen_s = [schools[0]]
        return {"schools": chosen_s, "teams": chosen_t}

    meetings = []
    for i in range(draw(st.integers(0, 3))):
        day = date(2020, 9, 1) + timedelta(days=draw(st.integers(0, 360)))
        hour = draw(st.integers(6, 18))
        meetings.append(
            {
                "id": f"m{i}",
                "title": draw(st.text('абвгд ёжЖ,;:\\"«»xyz', min_size=1, max_size=90)).strip() or "М",
                "start": datetime.combine(day, time(hour)),
                "end": datetime.combine(day, time(hour + 2)),
                "timezone": draw(st.sampled_from(ZONES)),
                "place": {"name": "Школа"},
                "audience": audience(),
                "status": draw(st.sampled_from(["planned", "cancelled"])),
                "agenda": [{"title": "Пункт " * draw(st.integers(1, 30))}],
            }
        )
    events = []
    for i in range(draw(st.integers(0, 4))):
        day = date(2020, 9, 1) + timedelta(days=draw(st.integers(0, 300)))
        kind = draw(st.sampled_from(["date", "range", "month", "weekly", "monthly"]))
        when: dict[str, Any] = {
            "date": {"date": day},
            "range": {"start": day, "end": day + timedelta(days=2)},
            "month": {"month": day.strftime("%Y-%m")},
            "weekly": {
                "every": "week",
                "weekday": "monday",
                "start": day,
                "until": day + timedelta(days=40),
                "time": "10:00",
                "exclude": [day + timedelta(days=7)],
            },
            "monthly": {
                "every": "month",
                "week": "last",
                "weekday": "friday",
                "start": day,
                "until": day + timedelta(days=120),
            },
        }[kind]
        events.append(
            {
                "id": f"e{i}",
                "title": f"Событие {i}",
                "when": when,
                "audience": audience(),
                "timezone": draw(st.sampled_from(ZONES)),
            }
        )
    return Project.model_validate(
        {
            "settings": {
                "name": "Проект",
                "organizer": {"name": "Орг", "email": "org@example.org"},
                "timezone": draw(st.sampled_from(ZONES)),
                "school_year": {"start": 2020},
                "base_url": "https://feeds.example.org/",
            },
            "schools": [
                {
                    "id": s,
                    "name": f"Школа {s}",
                    "head": {"name": "Г", "email": f"{s}@example.org"},
                    "language": draw(st.sampled_from(["ru", "en"])),
                }
                for s in schools
            ],
            "teams": teams,
            "meetings": meetings,
            "events": events,
        }
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
def test_any_model_gives_feeds_every_reader_accepts(project: Project) -> None:
    now = datetime(2020, 8, 1, tzinfo=UTC)
    feeds = build_feeds(project, event_states(MemoryStates(), project, now), now)  # type: ignore[arg-type]
    seen = {path: set(_read_all(f.data)) for path, f in feeds.items()}
    items = [("meeting", m.id, m.audience) for m in project.meetings]
    items += [("event", e.id, e.audience) for e in project.all_events()]
    anywhere = set().union(*seen.values())
    for kind, ident, audience in items:
        uid = uid_for(project, kind, ident)
        if uid not in anywhere:
            continue  # a recurrence with no occurrence
        assert (uid in seen["project.ics"]) == audience.all  # the public feed: what is for everyone
        reached = {s.id for s in project.audience_schools(audience)}
        assert {s.id for s in project.schools if uid in seen[f"schools/{s.id}.ics"]} == reached
        teams = {t.id for t in project.teams if project.reaches_team(audience, t)}
        assert {t.id for t in project.teams if uid in seen[f"teams/{t.id}.ics"]} == teams
    for m in project.meetings:
        assert seen[f"meetings/{m.id}.ics"] == {uid_for(project, "meeting", m.id)}
