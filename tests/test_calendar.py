"""Calendar components: UIDs, sequences, the seed meeting, key events, action items, folding."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from icalendar import Calendar

from scheduler.calendar import event_states, meeting_event, meeting_fingerprint, uid_for, wrap_calendar
from scheduler.config import LoadedConfig, load_config
from scheduler.feeds import build_feeds
from scheduler.store import SQLiteStore
from tests.readers import all_readers_agree, texts_read

NOW = datetime(2020, 9, 15, 7, 0, tzinfo=UTC)


def _project_feed(
    loaded: LoadedConfig, store: SQLiteStore, now: datetime = NOW, path: str = "project.ics"
) -> Calendar:
    feeds = build_feeds(loaded.project, event_states(store, loaded.project, now), now)
    return Calendar.from_ical(feeds[path].data)


LYCEUM = "schools/lyceum-86.ics"  # gets every kind of item: for all, for its team, for itself


def _events(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_uids_come_from_ids(example: LoadedConfig) -> None:
    p = example.project
    assert uid_for(p, "meeting", "heads-2020-09") == "meeting-heads-2020-09@cyclogram.example.org"
    assert uid_for(p, "event", "consultations") == "event-consultations@cyclogram.example.org"
    assert uid_for(p, "action", "heads-2020-09-article-lyceum").startswith(
        "action-heads-2020-09-article-lyceum@"
    )


def test_seed_meeting_at_seven_utc_with_place_and_agenda(example: LoadedConfig, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    ev = _events(_project_feed(example, store))["meeting-heads-2020-09@cyclogram.example.org"]
    assert ev["DTSTART"].dt.astimezone(UTC) == datetime(2020, 9, 25, 7, 0, tzinfo=UTC)
    assert ev["DTEND"].dt.astimezone(UTC) == datetime(2020, 9, 25, 9, 0, tzinfo=UTC)
    assert ev["DTSTART"].params["TZID"] == "Europe/Moscow"
    assert str(ev["LOCATION"]) == "МОУ «ГЦРО», Б. Октябрьская, д.44/60"
    text = str(ev["DESCRIPTION"])
    meeting = example.project.meeting("heads-2020-09")
    assert meeting.goal in text
    for item in meeting.agenda:
        assert item.title in text
        for speaker in item.speakers:
            assert speaker.name in text
            if speaker.role:
                assert speaker.role in text
    assert "10:00–12:00 (МСК)" in text
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert ev["ORGANIZER"].params["CN"] == "МОУ «ГЦРО»"
    assert str(ev["ORGANIZER"]) == "mailto:gcro@example.org"
    assert "METHOD" not in _project_feed(example, store)
    assert "ATTENDEE" not in ev


def test_sequence_rises_on_change_and_never_falls(config_copy: Path, edit, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    uid = "meeting-heads-2020-09@cyclogram.example.org"
    first = _events(_project_feed(load_config(config_copy), store))[uid]
    assert first["SEQUENCE"] == 0
    again = _events(_project_feed(load_config(config_copy), store, NOW + timedelta(hours=1)))[uid]
    assert again["SEQUENCE"] == 0 and again["DTSTAMP"].dt == first["DTSTAMP"].dt
    edit("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 10:00", "start: 2020-09-25 11:00")
    moved = _events(_project_feed(load_config(config_copy), store, NOW + timedelta(hours=2)))[uid]
    assert moved["SEQUENCE"] == 1
    assert moved["LAST-MODIFIED"].dt == NOW + timedelta(hours=2)
    assert moved["CREATED"].dt == NOW
    edit("meetings/2020-09-25-heads.yaml", "start: 2020-09-25 11:00", "start: 2020-09-25 10:00")
    back = _events(_project_feed(load_config(config_copy), store, NOW + timedelta(hours=3)))[uid]
    assert back["SEQUENCE"] == 2  # moving back is a change too: never falls


def test_fingerprint_covers_what_clients_show(config_copy: Path, edit) -> None:
    base = meeting_fingerprint(load_config(config_copy).project, load_config(config_copy).project.meetings[0])
    for old, new in [
        ('name: "МОУ «ГЦРО»"\n  address', 'name: "Другое место"\n  address'),
        ('  - title: "Разное."', '  - title: "Разное и прочее."'),
        ("end: 2020-09-25 12:00", "end: 2020-09-25 12:30"),
    ]:
        path = edit("meetings/2020-09-25-heads.yaml", old, new)
        p = load_config(config_copy).project
        assert meeting_fingerprint(p, p.meeting("heads-2020-09")) != base, old
        path.write_text(path.read_text(encoding="utf-8").replace(new, old), encoding="utf-8")


def test_cancelled_meeting_keeps_uid_with_status_cancelled(config_copy: Path, edit, tmp_path: Path) -> None:
    edit("meetings/2020-09-25-heads.yaml", "audience: all", "audience: all\nstatus: cancelled")
    store = SQLiteStore(tmp_path / "state.db")
    ev = _events(_project_feed(load_config(config_copy), store))[
        "meeting-heads-2020-09@cyclogram.example.org"
    ]
    assert str(ev["STATUS"]) == "CANCELLED"
    assert "ОТМЕНЕНА" in str(ev["DESCRIPTION"])


def test_key_events_all_day_month_only_and_recurring(example: LoadedConfig, tmp_path: Path) -> None:
    events = _events(_project_feed(example, SQLiteStore(tmp_path / "state.db"), path=LYCEUM))
    host = "@cyclogram.example.org"
    workshop = events["event-digital-workshop" + host]
    assert workshop["DTSTART"].dt == date(2020, 12, 10) and workshop["DTEND"].dt == date(2020, 12, 11)
    interim = events["event-interim-reports" + host]
    assert (interim["DTSTART"].dt, interim["DTEND"].dt) == (date(2021, 2, 1), date(2021, 3, 1))
    assert str(interim["STATUS"]) == "TENTATIVE"
    conference = events["event-project-conference" + host]
    assert conference["DTEND"].dt == date(2021, 4, 23)  # exclusive end of a two-day event
    consult = events["event-consultations" + host]
    rule = consult["RRULE"]
    assert rule["FREQ"] == ["MONTHLY"] and rule["BYDAY"] == ["-1TH"]
    assert rule["UNTIL"][0] == datetime(2021, 4, 29, 12, 0, tzinfo=UTC)
    assert [d.dt.date() for d in consult["EXDATE"].dts] == [date(2020, 12, 31)]
    assert consult["DTSTART"].dt.isoformat() == "2020-10-29T15:00:00+03:00"
    assert "ГЦРО" in str(consult["LOCATION"])


def test_action_items_are_all_day_events_on_due_date(example: LoadedConfig, tmp_path: Path) -> None:
    events = _events(_project_feed(example, SQLiteStore(tmp_path / "state.db"), path=LYCEUM))
    item = events["action-heads-2020-09-article-lyceum@cyclogram.example.org"]
    assert item.name == "VEVENT"
    assert item["DTSTART"].dt == date(2021, 3, 15)
    assert str(item["SUMMARY"]).startswith("Срок: Подготовить статью")
    assert "Лицей № 86" in str(item["DESCRIPTION"])
    assert str(item["TRANSP"]) == "TRANSPARENT"


def test_long_russian_text_folds_on_character_boundaries(example: LoadedConfig, tmp_path: Path) -> None:
    p = example.project
    store = SQLiteStore(tmp_path / "state.db")
    states = event_states(store, p, NOW)
    meeting = p.meeting("heads-2020-09")
    ev = meeting_event(p, meeting, states[uid_for(p, "meeting", meeting.id)], NOW, "ru")
    ev["SUMMARY"] = "Ёжик в тумане — " * 40
    raw = wrap_calendar(p, [ev], method=None, name="Т" * 100, description=None, language="ru").to_ical()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # a fold never splits a character
    assert str(Calendar.from_ical(raw).walk("VEVENT")[0]["SUMMARY"]) == "Ёжик в тумане — " * 40


def test_wrap_calendar_hints_and_method(example: LoadedConfig, tmp_path: Path) -> None:
    cal = _project_feed(example, SQLiteStore(tmp_path / "state.db"))
    assert str(cal["X-WR-TIMEZONE"]) == "Europe/Moscow"
    assert str(cal["X-WR-CALNAME"]) == "Проектное управление"
    assert cal["REFRESH-INTERVAL"].dt == timedelta(hours=1)
    assert "X-PUBLISHED-TTL" in cal and "METHOD" not in cal
    assert [str(t["TZID"]) for t in cal.walk("VTIMEZONE")] == ["Europe/Moscow"]
    p = example.project
    invite = wrap_calendar(p, [], method="REQUEST", name="x", description=None, language="ru")
    assert str(invite["METHOD"]) == "REQUEST" and "X-WR-CALNAME" not in invite


# -- RFC 5545 TEXT escaping, read back by every reader ---------------------------------------------------

AWKWARD = "Проект «Развитие»; фаза 1, этап 2 \\ итоги\nвторая строка"


def _awkward_feeds(loaded: LoadedConfig, tmp_path: Path) -> dict[str, bytes]:
    project = loaded.project
    settings = project.settings.model_copy(update={"name": AWKWARD, "short_name": None})
    meetings = [
        m.model_copy(update={"title": f"Встреча; {AWKWARD}", "goal": AWKWARD})
        if m.id == "heads-2020-09"
        else m
        for m in project.meetings
    ]
    project = project.model_copy(update={"settings": settings, "meetings": meetings})
    feeds = build_feeds(project, event_states(SQLiteStore(tmp_path / "s.db"), project, NOW), NOW)
    return {path: feed.data for path, feed in feeds.items()}


def test_text_values_are_escaped_and_read_back_exactly(example: LoadedConfig, tmp_path: Path) -> None:
    """NAME, X-WR-CALNAME, X-WR-CALDESC (and SUMMARY, LOCATION, DESCRIPTION, CATEGORIES) escape `,` `;`
    `\\` and line breaks (issue 9 item 5); a line break in the project's name no longer breaks the build."""
    data = _awkward_feeds(example, tmp_path)["project.ics"]
    unfolded = data.decode().replace("\r\n ", "")
    for name in ("NAME", "X-WR-CALNAME", "X-WR-CALDESC", "DESCRIPTION"):
        line = next(x for x in unfolded.split("\r\n") if x.startswith(f"{name}:"))
        # RFC 5545 3.3.11: inside TEXT a `,` `;` or `\` is always preceded by a backslash
        assert not re.search(r"(?<!\\)(?:\\\\)*[,;]", line.split(":", 1)[1]), line
    for reader, texts in texts_read(data).items():
        for name in ("NAME", "X-WR-CALNAME"):
            assert texts["calendar"][name] == AWKWARD, (reader, name)
        for name in ("DESCRIPTION", "X-WR-CALDESC"):
            assert texts["calendar"][name] == AWKWARD, (reader, name)
        seed = texts["events"]["meeting-heads-2020-09@cyclogram.example.org"]
        assert seed["SUMMARY"] == f"Встреча; {AWKWARD}", reader
        assert AWKWARD in seed["DESCRIPTION"], reader
        assert seed["LOCATION"], reader
        if reader != "ical":  # `ical` splits CATEGORIES at escaped commas too (see tests/readers.py)
            assert seed["CATEGORIES"][1] == AWKWARD, reader
    all_readers_agree(data)
