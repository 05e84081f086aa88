"""Greetings as people expect them: name parts, gender forms, initials, Latin names, short subjects."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.config import LoadedConfig
from scheduler.mailings import compose
from scheduler.messages import recipient_greeting
from scheduler.model import Contact, Project, Recipient
from scheduler.salutation import SUBJECT_TITLE_LIMIT, gender_of, greeting, parse_name, shorten
from scheduler.store import SQLiteStore

RU = [
    ("Иванова Анна Петровна", "Уважаемая Анна Петровна!"),
    ("Петров Сергей Иванович", "Уважаемый Сергей Иванович!"),
    ("Сергей Иванович Петров", "Уважаемый Сергей Иванович!"),
    ("Анна Петровна", "Уважаемая Анна Петровна!"),
    ("Ильина Мария Кузьминична", "Уважаемая Мария Кузьминична!"),
    ("Мамедов Эльдар Рашид оглы", "Уважаемый Эльдар Рашид оглы!"),
    ("Алиева Лейла Рашид кызы", "Уважаемая Лейла Рашид кызы!"),
    ("Римская-Корсакова Анна-Мария Петровна", "Уважаемая Анна-Мария Петровна!"),
    ("Салтыков-Щедрин Михаил Евграфович", "Уважаемый Михаил Евграфович!"),
    # initials: no first name to address, no gender to guess
    ("Иванова А.П.", "Здравствуйте, А. П. Иванова!"),
    ("Иванова А. П.", "Здравствуйте, А. П. Иванова!"),
    ("А.П. Иванова", "Здравствуйте, А. П. Иванова!"),
    # no patronymic: the gender from the first name, in either order
    ("Иванова Анна", "Уважаемая Анна Иванова!"),
    ("Петрова Ирина", "Уважаемая Ирина Петрова!"),
    ("Ирина Петрова", "Уважаемая Ирина Петрова!"),
    ("Никита Михалков", "Уважаемый Никита Михалков!"),
    ("Любовь Орлова", "Уважаемая Любовь Орлова!"),
    ("Анна", "Уважаемая Анна!"),
    # a single surname, a name nothing tells the gender of: neutral
    ("Иванова", "Здравствуйте, Иванова!"),
    ("Ким Саша-Ли Пак Ён", "Здравствуйте, Ким Саша-Ли Пак Ён!"),
    # Latin names in Russian mail
    ("Jane Smith", "Уважаемая Jane Smith!"),
    ("Chris Taylor", "Здравствуйте, Chris Taylor!"),
    ("Ivanova Anna Petrovna", "Уважаемая Anna Petrovna!"),
]

EN = [
    ("Jane Smith", "Dear Ms Smith,"),
    ("John Brown", "Dear Mr Brown,"),
    ("Chris Taylor", "Dear Chris Taylor,"),
    ("Иванова Анна Петровна", "Dear Ms Иванова,"),
    ("Петров Сергей Иванович", "Dear Mr Петров,"),
    ("Иванова А.П.", "Dear А. П. Иванова,"),
    ("Madonna", "Dear Madonna,"),
]


@pytest.mark.parametrize(("name", "expected"), RU)
def test_russian_greetings(name, expected):
    assert greeting(name, "ru") == expected


@pytest.mark.parametrize(("name", "expected"), EN)
def test_english_greetings(name, expected):
    assert greeting(name, "en") == expected


def test_explicit_parts_override_what_the_name_says():
    assert greeting("Chris Taylor", "en", gender="f") == "Dear Ms Taylor,"
    assert greeting("Chris Taylor", "en", title="Dr") == "Dear Dr Taylor,"
    assert greeting("Smith", "en", title="Prof") == "Dear Prof Smith,"
    assert greeting("Иванова А.П.", "ru", first_name="Анна", patronymic="Павловна") == (
        "Уважаемая Анна Павловна!"
    )
    assert greeting("Саша Ким", "ru", gender="f") == "Уважаемая Саша Ким!"
    assert greeting("Иванова Анна Петровна", "ru", salutation="Дорогая Аня!") == "Дорогая Аня!"


def test_parts_and_gender():
    parts = parse_name("  Иванова   Анна  Петровна ")
    assert (parts.last, parts.first, parts.patronymic) == ("Иванова", "Анна", "Петровна")
    assert gender_of(parts) == "f"
    assert gender_of(parse_name("Кузьмин Илья Фомич")) == "m"
    assert gender_of(parse_name("Иванова А.П.")) is None


def test_contact_fields_reach_the_letter(example, tmp_path):
    """A contact's `gender`/`first_name`/`patronymic`/`salutation` in participants.yaml shape the greeting."""
    data = example.project.model_dump(mode="json")
    school = data["schools"][0]
    school["head"].update({"name": "Иванова А.П.", "first_name": "Анна", "patronymic": "Павловна"})
    school["contacts"][0]["salutation"] = "Дорогой Олег!"
    project = Project.model_validate(data)
    loaded = LoadedConfig(directory=example.directory, project=project, meeting_files={})
    store = SQLiteStore(tmp_path / "s.db")
    try:
        messages = compose(loaded, "invitation", meeting="heads-2020-09", store=store, now=_now())
    finally:
        store.close()
    texts = {
        m.recipient: message_from_bytes(m.message, policy=policy.default).get_body(("plain",)).get_content()
        for m in messages
    }
    head, deputy = school["head"]["email"], school["contacts"][0]["email"]
    assert texts[head].startswith("Уважаемая Анна Павловна!")
    assert texts[deputy].startswith("Дорогой Олег!")
    html = message_from_bytes(next(m for m in messages if m.recipient == head).message, policy=policy.default)
    assert "Уважаемая Анна Павловна!" in html.get_body(("html",)).get_content()


def test_a_recipient_without_a_contact_is_greeted_from_the_name():
    r = Recipient(school="s", name="Петров Сергей Иванович", email="p@example.org", language="ru")
    assert recipient_greeting(r) == "Уважаемый Сергей Иванович!"
    c = Contact(name="Chris Taylor", email="c@example.org", gender="m")
    r = Recipient(school="s", name=c.name, email=c.email, language="en", person=c)
    assert recipient_greeting(r) == "Dear Mr Taylor,"


def test_the_subject_carries_a_short_title(example, tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    try:
        messages = compose(example, "invitation", meeting="heads-2020-09", store=store, now=_now())
    finally:
        store.close()
    subject = str(message_from_bytes(messages[0].message, policy=policy.default)["Subject"])
    assert len(subject) <= 80, subject
    assert subject.startswith("Приглашение: Встреча руководителей")


@given(st.text(min_size=1, max_size=200))
def test_shorten_is_a_prefix_within_the_limit(title):
    short = shorten(title)
    assert len(short) <= SUBJECT_TITLE_LIMIT
    assert title.startswith(short.removesuffix("…")) or short == title
    if len(title) <= SUBJECT_TITLE_LIMIT:
        assert short == title


def _now():
    from datetime import UTC, datetime

    return datetime(2020, 9, 11, 7, 0, tzinfo=UTC)


_NAME_PART = st.text(
    alphabet=st.sampled_from("абвгдеёжзийклмнопрстуфхцчшщыэюяАБВГДЕЖЗИКЛМНОПРСТabcdeABCDE-."),
    min_size=1,
    max_size=12,
)


@given(st.lists(_NAME_PART, min_size=1, max_size=5).map(" ".join), st.sampled_from(["ru", "en"]))
def test_any_name_gets_a_well_formed_greeting(name, language):
    line = greeting(name, language)
    assert line.endswith("!" if language == "ru" else ",")
    assert line.startswith(("Уважаемая ", "Уважаемый ", "Здравствуйте, ") if language == "ru" else "Dear ")
    assert "\n" not in line and "  " not in line
    words = set(name.replace(".", " ").split())
    assert any(w.strip(".") in line for w in words if w.strip(".-")) or not any(w.strip(".-") for w in words)
