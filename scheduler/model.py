"""The project model: what organisers write in config/, validated and typed."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    field_validator,
    model_validator,
)

__all__ = [
    "ID_PATTERN",
    "KINDS",
    "MEETING_KINDS",
    "ActionItem",
    "AgendaItem",
    "Audience",
    "Contact",
    "DateRange",
    "Document",
    "DocumentSettings",
    "KeyEvent",
    "Language",
    "MailingPolicy",
    "MailingRule",
    "Meeting",
    "MeetingStatus",
    "Minutes",
    "MonthOnly",
    "OnDate",
    "Organizer",
    "Place",
    "Project",
    "ProjectSettings",
    "Recipient",
    "Recurrence",
    "Responsible",
    "School",
    "SchoolYear",
    "Speaker",
    "Team",
    "When",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_HEADER_UNSAFE = re.compile(r"[\r\n]")

# Mailing kinds. The first six concern a meeting; the last two are planned from minutes and the cyclogram.
MEETING_KINDS = ("invitation", "agenda", "reminder", "update", "cancellation", "summary")
KINDS = (*MEETING_KINDS, "action_reminder", "event_reminder")

Language = Literal["ru", "en"]


def _no_newlines(value: str) -> str:
    if _HEADER_UNSAFE.search(value):
        raise ValueError("must be a single line (no line breaks)")
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Moscow") from None
    return value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _check_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        # Plain SMTP (no SMTPUTF8): an internationalised domain is kept in its ASCII (punycode) form.
        checked = validate_email(
            value, check_deliverability=False, test_environment=True, allow_smtputf8=False
        )
        return checked.ascii_email or checked.normalized
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address {value!r}: {exc}") from None


# One line of text: anything that may reach a mail header or a calendar property name.
Line = Annotated[str, BeforeValidator(_strip), Field(min_length=1), AfterValidator(_no_newlines)]
Text = Annotated[str, BeforeValidator(_strip), Field(min_length=1)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Email = Annotated[str, AfterValidator(_check_email)]
Zone = Annotated[str, AfterValidator(_check_zone)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _parse_clock(value: Any) -> Any:
    """Accept 10:00 and 10.00 (as the seed writes it)."""
    if isinstance(value, str):
        return value.strip().replace(".", ":")
    if isinstance(value, int):  # YAML 1.1 reads 10:00 as sexagesimal 600
        return time(value // 60, value % 60)
    return value


Clock = Annotated[time, BeforeValidator(_parse_clock)]


class Organizer(_Model):
    name: Line
    email: Email


class SchoolYear(_Model):
    """1 September to 31 August; `start` names the calendar year the school year begins in."""

    start: int = Field(
        ge=2000, le=2100, description="Calendar year in which the school year begins (e.g. 2020)"
    )

    @property
    def first_day(self) -> date:
        return date(self.start, 9, 1)

    @property
    def last_day(self) -> date:
        return date(self.start + 1, 8, 31)

    def __contains__(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def label(self) -> str:
        return f"{self.start}-{self.start + 1}"


class MailingRule(_Model):
    """When one kind of mailing goes out relative to its meeting (or due date, or event)."""

    enabled: bool = True
    days_before: int | None = Field(None, ge=0, le=366, description="Days before the meeting start")
    days_after: int | None = Field(None, ge=0, le=366, description="Days after the meeting end (summary)")
    at: Clock | None = Field(None, description="Local time of day to send; default: the meeting's start time")
    template: Id | None = Field(None, description="Template name to use instead of the kind's own")
    review: bool | None = Field(None, description="Hold this kind for review; default: the policy's `review`")

    @model_validator(mode="after")
    def _one_direction(self) -> MailingRule:
        if self.days_before is not None and self.days_after is not None:
            raise ValueError("give days_before or days_after, not both")
        return self


class MailingPolicy(_Model):
    """When each kind of mailing goes out. Meetings may override any rule."""

    invitation: MailingRule = MailingRule(days_before=14, at=time(10, 0))
    agenda: MailingRule = MailingRule(days_before=3, at=time(10, 0))
    reminder: MailingRule = MailingRule(days_before=1, at=time(9, 0))
    summary: MailingRule = MailingRule(days_after=1, at=time(10, 0))
    action_reminder: MailingRule = MailingRule(days_before=3, at=time(9, 0))
    event_reminder: MailingRule = MailingRule(enabled=False, days_before=2, at=time(9, 0))
    update: MailingRule = MailingRule()
    cancellation: MailingRule = MailingRule()
    catch_up_hours: int = Field(
        24, ge=0, le=24 * 30, description="How late a mailing missed during downtime may still go out"
    )
    review: bool = Field(False, description="Hold every automatic mailing as a draft until approved")
    review_days: int = Field(2, ge=0, le=60, description="Days ahead a held mailing is drafted for review")

    def merged(self, override: dict[str, Any] | None) -> MailingPolicy:
        if not override:
            return self
        data = self.model_dump()
        for kind, rule in override.items():
            if kind == "review":  # `mailings: {review: true}` in a meeting's file: every kind of it
                for name in KINDS:
                    data[name] = {**data[name], "review": data[name].get("review") or bool(rule)}
                continue
            data[kind] = {**data.get(kind, {}), **rule} if isinstance(rule, dict) else rule
        return MailingPolicy.model_validate(data)


class DocumentSettings(_Model):
    """How meeting documents travel with the mail."""

    attach_limit_mb: float = Field(
        10,
        gt=0,
        le=19,
        description="Most megabytes of attached files in one message, counted as sent (base64 adds a third); "
        "the rest are linked",
    )


_DOCUMENT_KINDS = Literal["invitation", "agenda", "reminder", "update", "cancellation", "summary"]


def _relative_file(value: str) -> str:
    # A file name goes into mail headers (the attachment's name): no control or line-separator characters.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("a file name may not hold control characters or line separators")
    path = value.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ValueError(f"{value!r} is absolute: give the file relative to the configuration folder")
    if ".." in path.split("/"):
        raise ValueError(f"{value!r} leads out of the configuration folder (..)")
    if path.endswith("/") or not path.strip("./"):
        raise ValueError(f"{value!r} names a folder, not a file")
    return path


class Document(_Model):
    """A file that goes with a meeting's mail: attached, or linked when too big or `attach: link`."""

    file: Annotated[Line, AfterValidator(_relative_file)] = Field(
        description="Path relative to the configuration folder, e.g. documents/План.docx"
    )
    title: Line | None = Field(None, description="What the mail and the index page call it")
    kinds: list[_DOCUMENT_KINDS] | None = Field(
        None,
        description="Mailings it goes with; default: invitation and agenda (in minutes: summary)",
    )
    attach: Literal["auto", "link"] = Field("auto", description="`link`: always a link, never attached")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"file": value} if isinstance(value, str) else value


class ProjectSettings(_Model):
    name: Text = Field(description="The project's full name")
    short_name: Line | None = Field(None, description="A short name for subjects and calendar titles")
    organizer: Organizer = Field(
        description="Organiser: ORGANIZER of every invitation and From of every mail"
    )
    timezone: Zone = Field(description="IANA time zone of the project, e.g. Europe/Moscow")
    language: Language = Field("ru", description="Default language of mail and feeds (ru or en)")
    school_year: SchoolYear
    base_url: HttpUrl = Field(description="Public base URL where the feeds are served")
    reply_to: Email | None = Field(None, description="Reply-To address for mailings, if not the organiser")
    mailings: MailingPolicy = MailingPolicy()
    documents: DocumentSettings = DocumentSettings()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def title(self) -> str:
        return self.short_name or self.name


class Contact(_Model):
    name: Line
    email: Email
    role: Line | None = None
    notify: bool = Field(False, description="Also send this contact the school's mail")
    # How a letter greets them; by default read from `name` («Фамилия Имя Отчество»), see salutation.py.
    first_name: Line | None = Field(None, description="First name, when `name` is not «Фамилия Имя Отчество»")
    patronymic: Line | None = None
    last_name: Line | None = None
    gender: Literal["f", "m"] | None = Field(None, description="f or m: «Уважаемая»/«Уважаемый», Ms/Mr")
    title: Line | None = Field(None, description="Title in English mail, e.g. Dr")
    salutation: Line | None = Field(None, description="The greeting as written, e.g. «Дорогая Анна!»")


class School(_Model):
    id: Id
    name: Text = Field(description="Full name")
    short_name: Line | None = None
    head: Contact = Field(description="The head: receives the school's mail")
    contacts: list[Contact] = []
    language: Language | None = Field(None, description="Language of this school's mail and feed")

    @property
    def title(self) -> str:
        return self.short_name or self.name


class Team(_Model):
    id: Id
    name: Text
    schools: list[Id] = Field(min_length=1, description="Member school ids")
    project: Text | None = Field(None, description="Title of the team's authored project")
    contact: Contact | None = None


class Audience(_Model):
    """Who an item is addressed to: everyone, or named teams and schools."""

    all: bool = False
    teams: list[Id] = []
    schools: list[Id] = []

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "all":
            return {"all": True}
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Audience:
        if not self.all and not self.teams and not self.schools:
            raise ValueError("audience names nobody: write `all` or list teams / schools")
        return self


class Speaker(_Model):
    name: Line
    role: Text | None = None


class AgendaItem(_Model):
    title: Text
    start: Clock | None = Field(None, description="Local start time of the item, if it has a slot")
    end: Clock | None = None
    speakers: list[Speaker] = []

    @model_validator(mode="after")
    def _slot(self) -> AgendaItem:
        if self.end is not None and self.start is None:
            raise ValueError("an agenda item with an end needs a start")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end is not after start")
        return self


class Place(_Model):
    name: Line
    address: Line | None = None

    def one_line(self) -> str:
        return f"{self.name}, {self.address}" if self.address else self.name


class Responsible(_Model):
    """Who answers for an item: a school, a team, or a named person."""

    school: Id | None = None
    team: Id | None = None
    person: Line | None = None

    @model_validator(mode="after")
    def _someone(self) -> Responsible:
        if not (self.school or self.team or self.person):
            raise ValueError("name a school, a team or a person")
        return self


class OnDate(_Model):
    date: date


class DateRange(_Model):
    start: datetime | date
    end: datetime | date

    @model_validator(mode="after")
    def _order(self) -> DateRange:
        if type(self.start) is not type(self.end):
            raise ValueError("start and end must both be dates or both date-times")
        if self.end < self.start:  # type: ignore[operator]
            raise ValueError("end is before start")
        return self


class MonthOnly(_Model):
    month: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]

    @property
    def first_day(self) -> date:
        y, m = map(int, self.month.split("-"))
        return date(y, m, 1)

    @property
    def last_day(self) -> date:
        first = self.first_day
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return nxt - timedelta(days=1)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}


class Recurrence(_Model):
    """A repeating key event, e.g. every last Thursday of the month."""

    every: Literal["week", "month"]
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    week: Literal["first", "second", "third", "fourth", "last"] | None = Field(
        None, description="For monthly events: which week of the month"
    )
    start: date = Field(description="First day the recurrence may fall on")
    until: date = Field(description="Last day the recurrence may fall on")
    time: Clock | None = Field(None, description="Local start time; none for all-day")
    end_time: Clock | None = None
    exclude: list[date] = Field([], description="Dates on which it does not happen (holidays)")

    @model_validator(mode="after")
    def _check(self) -> Recurrence:
        if self.every == "month" and self.week is None:
            raise ValueError("a monthly recurrence needs `week` (first, second, third, fourth or last)")
        if self.every == "week" and self.week is not None:
            raise ValueError("`week` only applies to monthly recurrences")
        if self.until < self.start:
            raise ValueError("until is before start")
        if self.end_time is not None and (self.time is None or self.end_time <= self.time):
            raise ValueError("end_time must come after time")
        return self

    def occurrences(self) -> list[date]:
        from dateutil.rrule import MONTHLY, WEEKLY, rrule, weekday

        wd = weekday(WEEKDAYS.index(self.weekday))
        if self.every == "week":
            rule = rrule(WEEKLY, byweekday=wd, dtstart=self.start, until=self.until)
        else:
            rule = rrule(
                MONTHLY, byweekday=wd(WEEKS[self.week or "first"]), dtstart=self.start, until=self.until
            )
        skip = set(self.exclude)
        return [d.date() for d in rule if d.date() not in skip]


def _when_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict):
        for key, tag in (
            ("every", "Recurrence"),
            ("month", "MonthOnly"),
            ("date", "OnDate"),
            ("start", "DateRange"),
        ):
            if key in value:
                return tag
    return None


When = Annotated[
    Annotated[OnDate, Tag("OnDate")]
    | Annotated[DateRange, Tag("DateRange")]
    | Annotated[MonthOnly, Tag("MonthOnly")]
    | Annotated[Recurrence, Tag("Recurrence")],
    Discriminator(
        _when_kind,
        custom_error_type="when",
        custom_error_message="give one of: date; start and end; month (YYYY-MM); or every/weekday/start/until",
    ),
]


class ActionItem(_Model):
    id: Id
    title: Text
    responsible: Responsible
    due: date
    product: Text | None = None


class KeyEvent(_Model):
    """One entry of the cyclogram: a key event of the school year."""

    id: Id
    title: Line
    description: Text | None = None
    when: When
    timezone: Zone | None = None
    responsible: Responsible | None = None
    audience: Audience = Audience(all=True)
    product: Text | None = None
    place: Place | None = None
    status: Literal["planned", "cancelled"] = "planned"
    source: Id | None = Field(None, description="The meeting whose minutes approved this event")

    @property
    def first_day(self) -> date:
        w = self.when
        if isinstance(w, OnDate):
            return w.date
        if isinstance(w, DateRange):
            return w.start if not isinstance(w.start, datetime) else w.start.date()
        if isinstance(w, MonthOnly):
            return w.first_day
        return w.start

    @property
    def last_day(self) -> date:
        w = self.when
        if isinstance(w, OnDate):
            return w.date
        if isinstance(w, DateRange):
            return w.end if not isinstance(w.end, datetime) else w.end.date()
        if isinstance(w, MonthOnly):
            return w.last_day
        return w.until


class Minutes(_Model):
    """What a meeting decided; `final: true` releases the summary and the follow-up items."""

    final: bool = False
    attendance: list[Id] = Field([], description="Ids of the schools that attended")
    decisions: list[Text] = []
    approved_events: list[KeyEvent] = Field([], description="Key events approved: they join the cyclogram")
    action_items: list[ActionItem] = []
    products: list[Text] = []
    notes: Text | None = None
    documents: list[Document] = Field([], description="Files sent with the summary (see documents[])")


class MeetingStatus(StrEnum):
    planned = "planned"
    cancelled = "cancelled"


class Meeting(_Model):
    id: Id
    title: Line
    short_title: Line | None = Field(None, description="A short title for subjects; default: the title, cut")
    goal: Text | None = None
    tasks: list[Text] = []
    planned_results: list[Text] = []
    products: list[Text] = []
    agenda: list[AgendaItem] = []
    start: datetime = Field(description="Local start, e.g. 2020-09-25 10:00")
    end: datetime = Field(description="Local end")
    timezone: Zone | None = Field(None, description="IANA zone; default: the project's")
    place: Place
    online_url: HttpUrl | None = None
    audience: Audience
    status: MeetingStatus = MeetingStatus.planned
    mailings: dict[str, Any] = Field(
        {}, description="Overrides of the project's mailing policy (and `review: true`)"
    )
    minutes: Minutes | None = None
    documents: list[Document] = Field([], description="Files sent with the invitation and agenda")

    @field_validator("start", "end")
    @classmethod
    def _naive_local(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("write the local time without an offset; the zone comes from `timezone`")
        return value

    @field_validator("mailings")
    @classmethod
    def _known_kinds(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(KINDS) - {"review"})
        if unknown:
            raise ValueError(f"unknown mailing kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
        for kind, rule in value.items():
            if kind == "review":
                if not isinstance(rule, bool):
                    raise ValueError("`review` takes true or false")
                continue
            if not isinstance(rule, dict):
                raise ValueError(f"`{kind}` takes a mapping of rule fields, e.g. {{days_before: 3}}")
            MailingRule.model_validate(rule)  # reports a bad override at load, not at send
            del kind
        return value


class Recipient(_Model):
    """One mailbox a mailing goes to, with every school it speaks for there.

    One person (an address, in any case) may head or be a notified contact of several schools: a mailing
    still goes to them once, naming each school of its audience they answer for (`schools`, in
    configuration order; `school` is the first). Name and language are the person's first role's in
    participants.yaml, so the same person reads every mailing in one language under one name.
    """

    school: Id
    name: Line
    email: Email
    language: Language
    schools: tuple[Id, ...] = ()
    person: Contact | None = None  # the configured contact, for the greeting

    @model_validator(mode="before")
    @classmethod
    def _first_school(cls, value: Any) -> Any:
        if isinstance(value, dict):
            schools = tuple(value.get("schools") or ())
            if not schools and value.get("school") is not None:
                value = {**value, "schools": (value["school"],)}
            elif schools and value.get("school") is None:
                value = {**value, "school": schools[0]}
        return value

    @model_validator(mode="after")
    def _school_first(self) -> Recipient:
        if self.schools[:1] != (self.school,):
            raise ValueError("`school` must be the first of `schools`")
        return self


class Project(_Model):
    """The whole validated configuration."""

    settings: ProjectSettings
    schools: list[School]
    teams: list[Team] = []
    meetings: list[Meeting] = []
    events: list[KeyEvent] = []

    # -- lookups (by id; built once, since a mailing to thousands of schools looks each one up) --------
    @property
    def _by_id(self) -> dict[str, dict[str, Any]]:
        # Kept beside the fields and checked against the lists it indexes, so a model_copy with new
        # meetings (or schools) never answers from the old ones.
        key = (id(self.schools), id(self.teams), id(self.meetings))
        cached = self.__dict__.get("_index")
        if cached is None or cached[0] != key:
            index = {
                "school": {s.id: s for s in self.schools},
                "team": {t.id: t for t in self.teams},
                "meeting": {m.id: m for m in self.meetings},
            }
            cached = self.__dict__["_index"] = (key, index)
        return cached[1]

    def school(self, school_id: str) -> School:
        return self._by_id["school"][school_id]

    def team(self, team_id: str) -> Team:
        return self._by_id["team"][team_id]

    def meeting(self, meeting_id: str) -> Meeting:
        return self._by_id["meeting"][meeting_id]

    def zone(self, item: Meeting | KeyEvent | None = None) -> ZoneInfo:
        name = getattr(item, "timezone", None) or self.settings.timezone
        return ZoneInfo(name)

    def policy(self, meeting: Meeting | None = None) -> MailingPolicy:
        return self.settings.mailings.merged(meeting.mailings if meeting else None)

    def responsible_text(self, responsible: Responsible | None) -> str:
        """Who answers for an item, as a reader names them: the school, the team, the person."""
        if responsible is None:
            return ""
        names = []
        if responsible.school:
            school = self._by_id["school"].get(responsible.school)
            names.append(school.title if school else responsible.school)
        if responsible.team:
            team = self._by_id["team"].get(responsible.team)
            names.append(team.name if team else responsible.team)
        if responsible.person:
            names.append(responsible.person)
        return ", ".join(names)

    def language_of(self, school: School) -> str:
        return school.language or self.settings.language

    # -- time ------------------------------------------------------------------------------------------
    def meeting_start(self, meeting: Meeting) -> datetime:
        """Aware start of a meeting in its own zone."""
        return _localize(meeting.start, self.zone(meeting))

    def meeting_end(self, meeting: Meeting) -> datetime:
        return _localize(meeting.end, self.zone(meeting))

    # -- audiences -------------------------------------------------------------------------------------
    def audience_schools(self, audience: Audience) -> list[School]:
        """The schools an audience reaches, in configuration order."""
        if audience.all:
            return list(self.schools)
        wanted = set(audience.schools)
        for team in self.teams:
            if team.id in audience.teams:
                wanted.update(team.schools)
        return [s for s in self.schools if s.id in wanted]

    def reaches_team(self, audience: Audience, team: Team) -> bool:
        """Whether an item for `audience` belongs in the team's feed."""
        return audience.all or team.id in audience.teams or bool(set(team.schools) & set(audience.schools))

    def recipients(self, audience: Audience) -> list[Recipient]:
        """One entry per mailbox, each address once even if it serves several schools."""
        # The plan asks this for every mailing of the year, again at every step of a rehearsal.
        key = (audience.all, tuple(audience.teams), tuple(audience.schools))
        known = self._by_id.setdefault("recipients", {})
        if key not in known:
            known[key] = self._recipients(audience)
        return list(known[key])

    def _recipients(self, audience: Audience) -> list[Recipient]:
        people = self._people()
        found: dict[str, list[str]] = {}  # address -> the audience's schools it answers for, in order
        for school in self.audience_schools(audience):
            for person in (school.head, *[c for c in school.contacts if c.notify]):
                schools = found.setdefault(person.email.lower(), [])
                if school.id not in schools:
                    schools.append(school.id)
        out: list[Recipient] = []
        for key, schools in found.items():
            person, language = people[key]
            # Built from values the model validated already: no second round of address checks.
            out.append(
                Recipient.model_construct(
                    school=schools[0],
                    schools=tuple(schools),
                    name=person.name,
                    email=person.email,
                    language=language,
                    person=person,
                )
            )
        return out

    def _people(self) -> dict[str, tuple[Contact, str]]:
        """Each mailbox's name, address and language, from its first role in the configuration."""
        known = self._by_id.get("people")
        if known is None:
            known = {}
            for school in self.schools:
                for person in (school.head, *[c for c in school.contacts if c.notify]):
                    known.setdefault(person.email.lower(), (person, self.language_of(school)))
            self._by_id["people"] = known
        return known

    def all_events(self) -> list[KeyEvent]:
        """The cyclogram with the key events approved in final minutes added."""
        events = list(self.events)
        known = {e.id for e in events}
        for m in self.meetings:
            if m.minutes and m.minutes.final:
                for e in m.minutes.approved_events:
                    if e.id not in known:
                        known.add(e.id)
                        events.append(e.model_copy(update={"source": e.source or m.id}))
        return events


def _localize(naive_or_aware: datetime, zone: ZoneInfo) -> datetime:
    if naive_or_aware.tzinfo is not None:
        return naive_or_aware.astimezone(zone)
    return naive_or_aware.replace(tzinfo=zone)
