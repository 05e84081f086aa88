"""One person in several roles: one message per mailing that names every school and carries each feed URL."""

from __future__ import annotations

import asyncio
import mailbox
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from cli import main
from scheduler.calendar import event_states
from scheduler.clock import FixedClock
from scheduler.config import load_config
from scheduler.feeds import build_feeds
from scheduler.mailings import compose
from scheduler.model import Audience, Project, Recipient, School
from scheduler.server import FeedServer
from scheduler.store import SQLiteStore, open_store
from scheduler.tokens import feed_secret, private_feed_url
from tests.conftest import EXAMPLE
from tests.smtp_server import Recorder, SMTPServer

NOW = "2020-09-11T10:00+03:00"
PERSON = "head@school1.example.org"  # heads school-1 and school-2, notified contact of gymnasium-3
HER_SCHOOLS = ("school-1", "school-2", "gymnasium-3")
MEETING = "heads-2020-09"


@pytest.fixture
def shared(config_copy: Path, edit: Callable[[str, str, str], Path]) -> Path:
    """The example with one director heading school-1 and school-2 (her address written in another case
    there), a notified contact of gymnasium-3 and (as in the example) the contact of the team `network`;
    school-1 keeps its notified deputy."""
    edit(
        "participants.yaml",
        'head: {name: "Петров Сергей Николаевич", email: head@school2.example.org}',
        'head: {name: "Иванова Анна Петровна", email: Head@School1.example.org}',
    )
    edit(
        "participants.yaml",
        'head: {name: "Кузнецова Мария Александровна", email: head@gym3.example.org}\n',
        'head: {name: "Кузнецова Мария Александровна", email: head@gym3.example.org}\n'
        "    contacts:\n"
        '      - {name: "Иванова Анна Петровна", email: head@school1.example.org, role: "куратор", notify: true}\n',
    )
    return config_copy


def _env(config: Path, state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config), CYCLOGRAM_STATE=str(state), **extra)
    return env


def _run(config: Path, state: Path, *args: str, **extra: str) -> Result:
    return CliRunner().invoke(
        main, ["--now", NOW, *args], env=_env(config, state, **extra), catch_exceptions=False
    )


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def _bodies(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()  # type: ignore[union-attr]


def _feed_links(msg: EmailMessage) -> tuple[set[str], set[str]]:
    """The feed URLs a message carries: from its text and from the HTML's links (parsed, not matched)."""
    text, html = _bodies(msg)
    links = _Links()
    links.feed(html)
    in_text = set(re.findall(r"https://\S+?\.ics", text))
    return in_text, {h for h in links.hrefs if h.endswith(".ics")}


def _expected_urls(config: Path, state: Path, schools: tuple[str, ...]) -> set[str]:
    project = load_config(config).project
    store = open_store(state)
    try:
        secret = feed_secret(store)
    finally:
        store.close()
    return {private_feed_url(project, secret, "school", s) for s in schools}


# --- the model -------------------------------------------------------------------------------------------


def test_one_recipient_per_address_with_every_school(shared: Path) -> None:
    project = load_config(shared).project
    assert project.team("network").contact is not None and project.team("network").contact.email == PERSON
    everyone = project.recipients(Audience(all=True))
    assert Counter(r.email.lower() for r in everyone) == Counter(
        {PERSON: 1, "deputy@school1.example.org": 1, "head@gym3.example.org": 1,
         "head@lyceum86.example.org": 1, "head@school37.example.org": 1}
    )  # fmt: skip
    her = next(r for r in everyone if r.email.lower() == PERSON)
    assert her.schools == HER_SCHOOLS and her.school == "school-1"
    assert her.email == PERSON and her.name == "Иванова Анна Петровна" and her.language == "ru"
    deputy = next(r for r in everyone if r.email.startswith("deputy"))
    assert deputy.schools == ("school-1",)
    # Within a mailing's audience only: the schools it reaches, still one entry for her.
    only_two = project.recipients(Audience(schools=["school-2"]))
    assert [(r.email, r.schools) for r in only_two] == [(PERSON, ("school-2",))]
    network = project.recipients(Audience(teams=["network"]))
    assert [r.schools for r in network if r.email == PERSON] == [HER_SCHOOLS]
    digital = project.recipients(Audience(teams=["digital"]))
    assert PERSON not in {r.email for r in digital}


def test_recipient_keeps_school_first_of_schools() -> None:
    r = Recipient(school="a", name="N", email="n@example.org", language="ru")
    assert r.schools == ("a",)
    r = Recipient(schools=("b", "a"), name="N", email="n@example.org", language="en")
    assert r.school == "b"
    with pytest.raises(ValueError, match="first of"):
        Recipient(school="a", schools=("b", "a"), name="N", email="n@example.org", language="ru")


def test_language_is_the_first_schools_in_every_mailing(
    shared: Path, edit: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    """Her first school reads English: so does all her mail, even a mailing only her Russian school gets."""
    edit("participants.yaml", '    short_name: "СШ № 1"\n', '    short_name: "СШ № 1"\n    language: en\n')
    loaded = load_config(shared)
    her = [r for r in loaded.project.recipients(Audience(schools=["school-2"])) if r.email == PERSON]
    assert [(r.schools, r.language) for r in her] == [(("school-2",), "en")]
    store = SQLiteStore(tmp_path / "state.db")
    now = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
    messages = compose(loaded, "invitation", meeting=MEETING, store=store, now=now, only=PERSON)
    assert len(messages) == 1
    msg = message_from_bytes(messages[0].message, policy=policy.default)
    text, _ = _bodies(msg)  # type: ignore[arg-type]
    assert text.startswith("Dear Ms Иванова,")  # her patronymic tells the English greeting her title
    assert "One message for all your schools: СШ № 1, СШ № 2, Гимназия № 3." in text


_POOL = ["a@one.example.org", "B@two.example.org", "c@three.example.org", "b@two.example.org"]


@st.composite
def _projects(draw: st.DrawFn) -> tuple[Project, Audience]:
    base = load_config(EXAMPLE).project
    n = draw(st.integers(1, 6))
    schools = []
    for i in range(n):
        contacts = [
            {"name": f"Contact {draw(st.integers(0, 2))}", "email": draw(st.sampled_from(_POOL)),
             "notify": draw(st.booleans())}
            for _ in range(draw(st.integers(0, 2)))
        ]  # fmt: skip
        schools.append(
            School.model_validate(
                {
                    "id": f"s{i}",
                    "name": f"School {i}",
                    "head": {"name": f"Head {i}", "email": draw(st.sampled_from(_POOL))},
                    "contacts": contacts,
                    "language": draw(st.sampled_from([None, "ru", "en"])),
                }
            )
        )
    project = base.model_copy(update={"schools": schools, "teams": [], "meetings": [], "events": []})
    if draw(st.booleans()):
        audience = Audience(all=True)
    else:
        ids = draw(st.lists(st.sampled_from([s.id for s in schools]), min_size=1, unique=True))
        audience = Audience(schools=ids)
    return project, audience


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_projects())
def test_every_role_reached_once(case: tuple[Project, Audience]) -> None:
    """Nothing lost, nothing doubled: each address once, holding exactly the audience's schools it serves."""
    project, audience = case
    recipients = project.recipients(audience)
    emails = [r.email.lower() for r in recipients]
    assert len(emails) == len(set(emails))
    reached = [s for s in project.schools if audience.all or s.id in audience.schools]
    order = [s.id for s in project.schools]
    for school in reached:
        for person in (school.head, *[c for c in school.contacts if c.notify]):
            r = recipients[emails.index(person.email.lower())]
            assert school.id in r.schools
    first_role: dict[str, tuple[str, str]] = {}
    for school in project.schools:
        for person in (school.head, *[c for c in school.contacts if c.notify]):
            first_role.setdefault(person.email.lower(), (person.name, project.language_of(school)))
    for r in recipients:
        assert r.schools and r.school == r.schools[0]
        assert list(r.schools) == sorted(set(r.schools), key=order.index)
        assert set(r.schools) <= {s.id for s in reached}
        for sid in r.schools:
            school = project.school(sid)
            serving = {p.email.lower() for p in (school.head, *[c for c in school.contacts if c.notify])}
            assert r.email.lower() in serving
        assert (r.name, r.language) == first_role[r.email.lower()]


# --- the mail, through a real SMTP server ----------------------------------------------------------------


def test_one_message_per_kind_naming_every_school_with_its_feed(
    shared: Path, edit: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    state = tmp_path / "var"
    rec = Recorder()
    sends = [
        ("invitation", MEETING), ("agenda", MEETING), ("reminder", MEETING), ("summary", MEETING),
        ("action_reminder", MEETING), ("event_reminder", "team-passports"),
    ]  # fmt: skip
    with SMTPServer(rec) as server:
        smtp = {"CYCLOGRAM_SMTP_HOST": "127.0.0.1", "CYCLOGRAM_SMTP_PORT": str(server.port)}
        for kind, target in sends:
            result = _run(shared, state, "send", kind, target, "--yes", **smtp)
            assert result.exit_code == 0, result.output
        # Asked for again by her second school: she has it already.
        again = _run(shared, state, "send", "invitation", MEETING, "--yes", "--only", "school-2", **smtp)
        assert again.exit_code == 0 and "sent 0" in again.output
        edit(
            "meetings/2020-09-25-heads.yaml",
            'address: "Б. Октябрьская, д.44/60"',
            'address: "ул. Свободы, 5"',
        )
        result = _run(shared, state, "send", "update", MEETING, "--yes", **smtp)
        assert result.exit_code == 0, result.output
        edit("meetings/2020-09-25-heads.yaml", "audience: all\n", "audience: all\nstatus: cancelled\n")
        result = _run(shared, state, "send", "cancellation", MEETING, "--yes", **smtp)
        assert result.exit_code == 0, result.output

    her_urls = _expected_urls(shared, state, HER_SCHOOLS)
    by_address = rec.by_recipient()
    mine = [a.parse() for a in by_address[PERSON]]
    kinds = Counter(str(m["X-Cyclogram-Kind"]) for m in mine)
    assert kinds == Counter(
        {k: 1 for k in ("invitation", "agenda", "reminder", "summary", "action_reminder", "event_reminder",
                        "update", "cancellation")}
    )  # fmt: skip
    for msg in mine:
        assert [a.addr_spec for a in msg["To"].addresses] == [PERSON]
        text, html = _bodies(msg)
        for title in ("СШ № 1", "СШ № 2", "Гимназия № 3"):
            assert title in text and title in html, (msg["X-Cyclogram-Kind"], title)
        in_text, in_html = _feed_links(msg)
        assert in_text == her_urls and in_html == her_urls, msg["X-Cyclogram-Kind"]
    invitation = next(m for m in mine if str(m["X-Cyclogram-Kind"]) == "invitation")
    calendar = next(p for p in invitation.walk() if p.get_content_type() == "text/calendar")
    attendees = Calendar.from_ical(calendar.get_content()).walk("VEVENT")[0].get("ATTENDEE")
    assert str(attendees).lower() == f"mailto:{PERSON}"

    # The others keep their one-school message, with their own school's feed only.
    for address, school in (
        ("deputy@school1.example.org", "school-1"),
        ("head@gym3.example.org", "gymnasium-3"),
    ):
        theirs = [a.parse() for a in by_address[address]]
        assert len(theirs) == len({str(m["X-Cyclogram-Kind"]) for m in theirs}) >= 6
        for msg in theirs:
            in_text, in_html = _feed_links(msg)
            assert in_text == in_html == _expected_urls(shared, state, (school,))
    assert "head@school2.example.org" not in by_address

    # Each URL she was given opens that school's feed on the real server.
    project = load_config(shared).project
    calendars = asyncio.run(_fetch_feeds(shared, state, sorted(her_urls)))
    for url, cal in calendars.items():
        school_id = urlsplit(url).path.split("/")[2]
        assert project.school(school_id).title in str(cal.get("X-WR-CALNAME"))


async def _fetch_feeds(config: Path, state: Path, urls: list[str]) -> dict[str, Calendar]:
    """GET each private URL's path from the feed server over the same state, parsed."""
    store = open_store(state)
    server = FeedServer(store, FixedClock(datetime(2020, 9, 11, 7, 0, tzinfo=UTC)), config)
    server.update(load_config(config).project)
    port = await server.start("127.0.0.1", 0)
    out = {}
    try:
        async with aiohttp.ClientSession() as http:
            for url in urls:
                async with http.get(f"http://127.0.0.1:{port}{urlsplit(url).path}") as response:
                    assert response.status == 200, url
                    out[url] = Calendar.from_ical(await response.read())
    finally:
        await server.stop()
        store.close()
    return out


# --- --only and preview ----------------------------------------------------------------------------------


def _maildir(state: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(state / "mail", create=False)
    return [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("only", "addresses"),
    [
        ("school-1", {PERSON, "deputy@school1.example.org"}),
        ("school-2", {PERSON}),
        ("gymnasium-3", {PERSON, "head@gym3.example.org"}),
        ("HEAD@SCHOOL1.example.org", {PERSON}),
        ("lyceum-86", {"head@lyceum86.example.org"}),
    ],
)
def test_send_only_a_school_or_an_address(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, only: str, addresses: set[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "var"
    result = _run(shared, state, "send", "invitation", MEETING, "--only", only, "--yes")
    assert result.exit_code == 0, result.output
    got = _maildir(state)
    assert sorted(a.addr_spec for m in got for a in m["To"].addresses) == sorted(addresses)
    urls = _expected_urls(shared, state, HER_SCHOOLS)
    for msg in got:
        if msg["To"].addresses[0].addr_spec == PERSON:
            assert _feed_links(msg) == (urls, urls)  # the one message, naming all her schools
    # Asking again by another of her schools sends her nothing twice.
    other = _run(shared, state, "send", "invitation", MEETING, "--yes")
    assert other.exit_code == 0, other.output
    assert Counter(a.addr_spec for m in _maildir(state) for a in m["To"].addresses)[PERSON] == 1


@pytest.mark.parametrize(
    ("school", "to", "names"),
    [
        ("school-1", PERSON, ("СШ № 1", "СШ № 2", "Гимназия № 3")),
        ("school-2", PERSON, ("СШ № 1", "СШ № 2", "Гимназия № 3")),
        ("gymnasium-3", "head@gym3.example.org", ("Гимназия № 3",)),  # the school's own head first
        ("school-37", "head@school37.example.org", ("СШ № 37",)),
    ],
)
def test_preview_each_school(
    shared: Path, tmp_path: Path, school: str, to: str, names: tuple[str, ...]
) -> None:
    result = _run(
        shared, tmp_path / "var", "preview", "summary", MEETING, "--school", school, "--format", "eml"
    )
    assert result.exit_code == 0, result.output
    msg = message_from_bytes(result.output.encode(), policy=policy.default)
    assert [a.addr_spec for a in msg["To"].addresses] == [to]  # type: ignore[union-attr]
    text, html = _bodies(msg)  # type: ignore[arg-type]
    for name in names:
        assert name in text and name in html
    in_text, in_html = _feed_links(msg)  # type: ignore[arg-type]
    assert len(in_text) == len(names) and in_text == in_html


def test_unknown_school_or_address_is_a_command_line_error(shared: Path, tmp_path: Path) -> None:
    state = tmp_path / "var"
    for args, option in [
        (["send", "invitation", MEETING, "--only", "school-99", "--yes"], "--only"),
        (["send", "invitation", MEETING, "--only", "nobody@example.org", "--dry-run"], "--only"),
        (["preview", "invitation", MEETING, "--school", "school-99"], "--school"),
        (["preview", "invitation", MEETING, "--school", "nobody@example.org"], "--school"),
    ]:
        result = _run(shared, state, *args)
        assert result.exit_code == 2, result.output
        assert option in result.output and "neither a school id nor an address" in result.output
        assert "Traceback" not in result.output
    assert not (state / "mail").exists()
    # A known school outside the mailing's audience is not a typo: it is nothing to send to.
    result = _run(
        shared, state, "send", "invitation", "network-seminar-2021-01", "--only", "lyceum-86", "--yes"
    )
    assert result.exit_code == 1 and "does not receive this mailing" in result.output, result.output


# --- feeds and action items ------------------------------------------------------------------------------


def test_action_items_of_her_schools_each_once(
    shared: Path, edit: Callable[[str, str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(
        "meetings/2020-09-25-heads.yaml",
        "  action_items:\n",
        "  action_items:\n"
        '    - {id: plan-one, title: "План школы 1", responsible: {school: school-1}, due: 2020-11-10}\n'
        '    - {id: plan-two, title: "План школы 2", responsible: {school: school-2}, due: 2020-11-10}\n',
    )
    project = load_config(shared).project
    store = SQLiteStore(tmp_path / "state.db")
    now = datetime(2020, 9, 15, 7, 0, tzinfo=UTC)
    feeds = build_feeds(project, event_states(store, project, now), now)
    titles: dict[str, Counter[str]] = {}
    for school in HER_SCHOOLS:
        cal = Calendar.from_ical(feeds[f"schools/{school}.ics"].data)
        titles[school] = Counter(str(e["SUMMARY"]) for e in cal.walk("VEVENT"))
        assert all(n == 1 for n in titles[school].values()), titles[school]

    def has(school: str, text: str) -> bool:
        return any(text in t for t in titles[school])

    assert has("school-1", "План школы 1") and not has("school-1", "План школы 2")
    assert has("school-2", "План школы 2") and not has("school-2", "План школы 1")
    assert not has("gymnasium-3", "План школы")
    for school in HER_SCHOOLS:
        assert has(school, "Подготовить паспорт Сетевого проекта")  # the network team's item

    monkeypatch.chdir(tmp_path)
    state = tmp_path / "var"
    result = _run(shared, state, "send", "action_reminder", MEETING, "--yes")
    assert result.exit_code == 0, result.output
    mine = [m for m in _maildir(state) if m["To"].addresses[0].addr_spec == PERSON]
    by_mailing = {str(m["X-Cyclogram-Mailing"]): m for m in mine}
    assert len(mine) == len(by_mailing) == 3
    urls = {s: _expected_urls(shared, state, (s,)) for s in HER_SCHOOLS}
    one = by_mailing[f"{MEETING}/action_reminder/plan-one"]
    two = by_mailing[f"{MEETING}/action_reminder/plan-two"]
    team = by_mailing[f"{MEETING}/action_reminder/passport-network"]
    assert _feed_links(one) == (urls["school-1"], urls["school-1"])
    assert _feed_links(two) == (urls["school-2"], urls["school-2"])
    every = urls["school-1"] | urls["school-2"] | urls["gymnasium-3"]
    assert _feed_links(team) == (every, every)


# --- validate ----------------------------------------------------------------------------------------------


def test_validate_accepts_shared_roles_and_warns_on_two_names(
    shared: Path, edit: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    ok = _run(shared, tmp_path / "var", "validate")
    assert ok.exit_code == 0 and "warning" not in ok.output, ok.output
    edit(
        "participants.yaml",
        'head: {name: "Иванова Анна Петровна", email: Head@School1.example.org}',
        'head: {name: "Иванова  АННА Петровна", email: Head@School1.example.org}',
    )  # spacing and case: the same name
    ok = _run(shared, tmp_path / "var", "validate")
    assert ok.exit_code == 0 and "warning" not in ok.output, ok.output
    edit(
        "participants.yaml",
        'head: {name: "Иванова  АННА Петровна", email: Head@School1.example.org}',
        'head: {name: "Петров Сергей Николаевич", email: Head@School1.example.org}',
    )  # a head copied from school-1 whose address was not changed
    warned = _run(shared, tmp_path / "var", "validate")
    assert warned.exit_code == 0, warned.output
    lines = [line for line in warned.output.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1, warned.output
    line = lines[0]
    assert "participants.yaml:14: schools[1].head.email:" in line
    assert "schools[0].head (line 8)" in line and "'Петров Сергей Николаевич'" in line
    assert "OK: 5 schools" in warned.output
    loaded = load_config(shared)
    assert [w.path for w in loaded.warnings] == ["schools[1].head.email"]


def test_school_names_are_escaped_in_html(
    shared: Path, edit: Callable[[str, str, str], Path], tmp_path: Path
) -> None:
    edit("participants.yaml", 'short_name: "СШ № 2"', "short_name: 'СШ <b>№ 2</b> & Co'")
    loaded = load_config(shared)
    store = SQLiteStore(tmp_path / "state.db")
    now = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
    for kind in ("invitation", "summary"):
        (message,) = compose(loaded, kind, meeting=MEETING, store=store, now=now, only=PERSON)
        text, html = _bodies(message_from_bytes(message.message, policy=policy.default))  # type: ignore[arg-type]
        assert "СШ <b>№ 2</b> & Co" in text
        assert "<b>" not in html and "СШ &lt;b&gt;№ 2&lt;/b&gt; &amp; Co" in html


def test_validate_renders_templates_for_a_person_of_several_schools(shared: Path, tmp_path: Path) -> None:
    """A user's footer with a mistake only in its several-schools part is found by `validate`, not at send."""
    shipped = (Path(__file__).resolve().parent.parent / "templates/mail/ru/_footer.txt").read_text("utf-8")
    broken = shipped.replace("- {{ s.title }}: {{ s.feed_url }}", "- {{ s.titel }}: {{ s.feed_url }}")
    assert broken != shipped
    target = shared / "templates/mail/ru/_footer.txt"
    target.parent.mkdir(parents=True)
    target.write_text(broken, "utf-8")
    result = _run(shared, tmp_path / "var", "validate")
    assert result.exit_code == 2, result.output
    assert "_footer.txt" in result.output and "titel" in result.output
