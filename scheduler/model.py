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
    PlainSerializer,
    PlainValidator,
    Tag,
    field_validator,
    model_validator,
)

from .translation import _

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
    "built",
    "plain_address",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

# Field sizes: far above what any plan needs, far below what breaks a mail line or a server's size limit.
NAME_MAX = 300  # a person, a school, a team, a project's short name
LINE_MAX = 500  # a title, a place, an address, a role
TEXT_MAX = 20_000  # a goal, a description, notes: several pages of text

# Mailing kinds. The first seven concern a meeting; the last two are planned from minutes and the cyclogram.
MEETING_KINDS = ("invitation", "agenda", "reminder", "update", "cancellation", "summary", "rsvp_reminder")
KINDS = (*MEETING_KINDS, "action_reminder", "event_reminder")

Language = Literal["ru", "en"]


# Embeddings, overrides and isolates reorder what a reader sees ("Trojan Source"): a name could show one
# text in a subject and be another. The plain marks (U+200E, U+200F) stay allowed for right-to-left names.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


_BAD_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_BAD_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _bad_char(value: str, multiline: bool) -> str | None:
    """The first character a field of this kind may not hold, described for the organiser; else None.

    Single-line fields reach mail headers, calendar property values and file names: every control
    character (CR, LF, TAB, NUL...) and the Unicode line and paragraph separators (U+2028, U+2029, and
    U+0085, a control) would split or forge a line there. Multi-line fields may hold line feeds and tabs.
    Neither may hold the bidirectional embedding, override and isolate controls.
    """
    # One scan in C finds whether any character is a candidate (Cc is exactly U+0000-001F and
    # U+007F-009F; Zl and Zp are U+2028 and U+2029): most values have none, and the loop below,
    # which words the message, runs only for those that do.
    if (_BAD_IN_TEXT if multiline else _BAD_IN_LINE).search(value) is None:
        return None
    for index, char in enumerate(value, start=1):
        if multiline and char in "\n\t":
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            if char in "\r\n\u2028\u2029\u0085\x0b\x0c":
                what = (
                    _("a line break (U+{code}) at character {index}")
                    if not multiline
                    else _("a line break other than LF (U+{code}) at character {index}")
                )
            else:
                what = _("a control character (U+{code}) at character {index}")
            return what.format(code=f"{ord(char):04X}", index=index)
        if char in _BIDI_CONTROLS:
            return _("a bidirectional text control (U+{code}) at character {index}").format(
                code=f"{ord(char):04X}", index=index
            )
    return None


def _one_line(value: str) -> str:
    bad = _bad_char(value, multiline=False)
    if bad:
        raise ValueError(_("must be a single line of text; found {bad}").format(bad=bad))
    return value


def _multi_line(value: str) -> str:
    # YAML already gives LF; a CRLF written as an escape in a quoted string means the same break.
    value = value.replace("\r\n", "\n")
    bad = _bad_char(value, multiline=True)
    if bad:
        raise ValueError(
            _("may hold line breaks (LF) and tabs but no other control characters; found {bad}").format(
                bad=bad
            )
        )
    return value


def _check_zone(value: str) -> str:
    _one_line(value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            _("unknown time zone {value!r}; use an IANA name such as Europe/Moscow").format(value=value)
        ) from None
    return value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _check_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    _one_line(value)
    plain = plain_address(value)
    if plain is not None:
        return plain
    try:
        # A Cyrillic local part (завуч@пример.рф) needs SMTPUTF8 on the way anyway, so the address
        # stays as written; an ASCII local part keeps its domain in ASCII (punycode), which every
        # server accepts without SMTPUTF8.
        checked = validate_email(
            value, check_deliverability=False, test_environment=True, allow_smtputf8=True
        )
        return checked.ascii_email or checked.normalized
    except EmailNotValidError as exc:
        raise ValueError(
            _("invalid email address {value!r}: {reason}").format(value=value, reason=exc)
        ) from None


# An address email_validator would accept unchanged but for the case of its domain: a dot-atom local
# part of letters, digits and _ + - (no RFC 2142 role name, which it lowercases), and host labels of
# letters, digits and inner hyphens ending in a top-level label that ends with a letter. Anything else
# (IDN, Punycode, quoting, other characters, special-use names, lengths near a limit) goes to the library.
_PLAIN_ADDRESS = re.compile(
    r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z])"
)
_ROLE_NAMES: frozenset[str] | None = None
_SPECIAL_DOMAIN: re.Pattern[str] = re.compile("")


def plain_address(value: str) -> str | None:
    """The address as email_validator normalises it (the domain lower-cased), when it is provably plain;
    else None, and the library decides. tests/test_roster.py checks the two agree on any input."""
    global _ROLE_NAMES, _SPECIAL_DOMAIN
    found = _PLAIN_ADDRESS.fullmatch(value)
    if found is None or len(value) > 254:
        return None
    local, domain = found[1], found[2].lower()
    if _ROLE_NAMES is None:
        from email_validator import SPECIAL_USE_DOMAIN_NAMES
        from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

        # The library's own list, whatever its version: the domain or any parent of it ("test" is allowed,
        # as test_environment=True below allows it).
        special = "|".join(re.escape(d) for d in SPECIAL_USE_DOMAIN_NAMES if d != "test")
        _SPECIAL_DOMAIN = re.compile(rf"(?:^|\.)(?:{special})\Z")
        _ROLE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
    if len(local) > 64 or len(domain) > 253 or "--" in domain or local.lower() in _ROLE_NAMES:
        return None
    if _SPECIAL_DOMAIN.search(domain) is not None:
        return None
    return f"{local}@{domain}"


def built(cls: type[BaseModel], values: dict[str, Any]) -> Any:
    """A model from values already checked by the model's own rules: model_construct without its
    per-field loop (a hundred thousand schools and recipients are made so at load).

    Instances given the same fields share one set of their names (frozen models never change it): a
    hundred thousand schools do not each carry a copy."""
    shape = (cls, *values)
    known = _SHAPES.get(shape)
    if known is None:
        every = {name: info.get_default(call_default_factory=True) for name, info in cls.model_fields.items()}
        # a list default is a fresh list per instance, as pydantic makes it; the others are immutable
        lists = tuple(
            name for name, default in every.items() if isinstance(default, list) and name not in values
        )
        known = _SHAPES[shape] = (every, lists, set(values))
    data = known[0].copy()  # in the fields' order, as pydantic keeps them
    data.update(values)
    for name in known[1]:
        data[name] = []
    model = cls.__new__(cls)
    _set_dict(model, data)
    _set_fields(model, known[2])
    _set_extra(model, None)
    _set_private(model, None)
    return model


_SHAPES: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[str, ...], set[str]]] = {}
# The slots pydantic's own model_construct sets, through their descriptors (a call each, no lookup).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class Limit:
    """The longest a text field may be; kept as an object so the reference can state it."""

    def __init__(self, most: int):
        self.most = most

    def __call__(self, value: str) -> str:
        if len(value) > self.most:
            raise ValueError(
                _("is {length:,} characters long; at most {most:,} are allowed").format(
                    length=len(value), most=self.most
                )
            )
        return value


# The one rule for text: every string field of the model is one of these types (tests/test_config.py
# checks that no field escapes it). Line and Name are single lines: anything that may reach a mail
# header or a calendar property; Text may span lines (goals, descriptions, notes).
Line = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1),
    AfterValidator(Limit(LINE_MAX)),
    AfterValidator(_one_line),
]
Name = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1),
    AfterValidator(Limit(NAME_MAX)),
    AfterValidator(_one_line),
]
Text = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1),
    AfterValidator(Limit(TEXT_MAX)),
    AfterValidator(_multi_line),
]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Email = Annotated[str, AfterValidator(Limit(NAME_MAX)), AfterValidator(_check_email)]
Zone = Annotated[str, AfterValidator(Limit(64)), AfterValidator(_check_zone)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _not_boolean(value: Any) -> Any:
    """Refuse YAML's yes/no/true/false where a number goes: pydantic would read true as 1."""
    if isinstance(value, bool):
        raise ValueError(f"a number is expected here, not true/false (YAML reads `{str(value).lower()}` so)")
    return value


Count = Annotated[int, BeforeValidator(_not_boolean)]


def _parse_clock(value: Any) -> Any:
    """Accept 10:00 and 10.00 (as the seed writes it)."""
    if isinstance(value, bool):  # true would pass as sexagesimal 1, that is 00:01
        raise ValueError('a time of day such as "10:00" is expected here, not true/false')
    if isinstance(value, str):
        return value.strip().replace(".", ":")
    if isinstance(value, int):
        # YAML 1.1 reads 10:00 as sexagesimal 600; below 60 it was a bare number (`at: 10`), which
        # would become 00:10, and past a day it is no hour at all
        if not 60 <= value < 24 * 60:
            raise ValueError(f'a time of day such as "10:00" is expected here, not the number {value}')
        return time(value // 60, value % 60)
    if isinstance(value, float):  # pydantic would take 1.5 for 1.5 seconds past midnight
        raise ValueError(f'a time of day such as "10:00" is expected here, not the number {value}')
    return value


Clock = Annotated[time, BeforeValidator(_parse_clock)]

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_AND_CLOCK = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2})[.:](\d{2})$")


def _parse_moment(value: Any) -> Any:
    """A day (all-day) or a day and a clock time: 2021-01-28, 2021-01-28 10:00, 2021-01-28 10.00."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _DAY.match(text):
        return date.fromisoformat(text)  # a quoted day is still a day, not midnight
    found = _DAY_AND_CLOCK.match(text)
    if found:
        return f"{found[1]} {int(found[2]):02d}:{found[3]}"
    return text


def _moment(value: Any) -> datetime | date:
    value = _parse_moment(value)
    if isinstance(value, datetime | date):
        return value
    reason = ""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            reason = f" ({exc})" if "range" in str(exc) else ""
    raise ValueError(
        _("{value!r} is not a date (2021-01-28) or a date with a time (2021-01-28 10:00)").format(value=value)
        + reason
    )


# One validator, not a union: an error then names the field once, not once per member of the union.
Moment = Annotated[
    datetime | date,
    PlainValidator(_moment),
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
]


class Organizer(_Model):
    name: Name
    email: Email


class SchoolYear(_Model):
    """1 September to 31 August; `start` names the calendar year the school year begins in."""

    start: Count = Field(
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
    days_before: Count | None = Field(None, ge=0, le=366, description="Days before the meeting start")
    days_after: Count | None = Field(None, ge=0, le=366, description="Days after the meeting end (summary)")
    at: Clock | None = Field(None, description="Local time of day to send; default: the meeting's start time")
    template: Id | None = Field(None, description="Template name to use instead of the kind's own")
    review: bool | None = Field(None, description="Hold this kind for review; default: the policy's `review`")

    @model_validator(mode="after")
    def _one_direction(self) -> MailingRule:
        if self.days_before is not None and self.days_after is not None:
            raise ValueError(_("give days_before or days_after, not both"))
        return self


class MailingPolicy(_Model):
    """When each kind of mailing goes out. Meetings may override any rule."""

    invitation: MailingRule = MailingRule(days_before=14, at=time(10, 0))
    agenda: MailingRule = MailingRule(days_before=3, at=time(10, 0))
    reminder: MailingRule = MailingRule(days_before=1, at=time(9, 0))
    summary: MailingRule = MailingRule(days_after=1, at=time(10, 0))
    action_reminder: MailingRule = MailingRule(days_before=3, at=time(9, 0))
    event_reminder: MailingRule = MailingRule(enabled=False, days_before=2, at=time(9, 0))
    # To those who have not answered the invitation yet (by link or from their calendar).
    rsvp_reminder: MailingRule = MailingRule(enabled=False, days_before=5, at=time(10, 0))
    update: MailingRule = MailingRule()
    cancellation: MailingRule = MailingRule()
    catch_up_hours: Count = Field(
        24, ge=0, le=24 * 30, description="How late a mailing missed during downtime may still go out"
    )
    review: bool = Field(False, description="Hold every automatic mailing as a draft until approved")
    review_days: Count = Field(2, ge=0, le=60, description="Days ahead a held mailing is drafted for review")

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
    name: Line = Field(description="The project's full name")
    short_name: Name | None = Field(None, description="A short name for subjects and calendar titles")
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
    name: Name
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
    name: Line = Field(description="Full name")
    short_name: Name | None = None
    head: Contact = Field(description="The head: receives the school's mail")
    contacts: list[Contact] = []
    language: Language | None = Field(None, description="Language of this school's mail and feed")
    timezone: Zone | None = Field(
        None,
        description="IANA zone of the school, if not the project's: its mail also gives each time "
        "in the school's own local time",
    )

    @property
    def title(self) -> str:
        return self.short_name or self.name


class Team(_Model):
    id: Id
    name: Name
    schools: list[Id] = Field(min_length=1, description="Member school ids")
    project: Line | None = Field(None, description="Title of the team's authored project")
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
            raise ValueError(_("audience names nobody: write `all` or list teams / schools"))
        return self


class Speaker(_Model):
    name: Name
    role: Line | None = None


SLOT_LEAD = timedelta(hours=2)


class AgendaItem(_Model):
    """One item of the agenda. A slot's clock time belongs to the day that puts it inside the meeting,
    or in the two hours before its start (registration at 09:30 for a 10:00 meeting); so 01:00 in a
    meeting that runs 20:00-02:00 is the night after the first day. A slot must end by the meeting's
    end; an end earlier than the start runs past midnight."""

    title: Line
    start: Clock | None = Field(None, description="Local start time of the item, if it has a slot")
    end: Clock | None = Field(None, description="Local end time of the slot")
    speakers: list[Speaker] = []

    @model_validator(mode="after")
    def _slot(self) -> AgendaItem:
        if self.end is not None and self.start is None:
            raise ValueError(_("an agenda item with an end needs a start"))
        if self.start is not None and self.end == self.start:
            raise ValueError(_("end equals start"))
        return self

    def slot(self, meeting_start: datetime, meeting_end: datetime) -> tuple[datetime, datetime | None] | None:
        """The slot as local date-times of the meeting's days, or None if no day puts it within reach."""
        if self.start is None:
            return None
        days = (meeting_end.date() - meeting_start.date()).days
        candidates = [
            datetime.combine(meeting_start.date() + timedelta(days=d), self.start) for d in range(days + 1)
        ]
        reach = [c for c in candidates if meeting_start - SLOT_LEAD <= c < meeting_end]
        if not reach:
            return None
        inside = [c for c in reach if c >= meeting_start]
        begin = (inside or reach)[0]
        if self.end is None:
            return begin, None
        end = datetime.combine(begin.date(), self.end)
        if end <= begin:  # past midnight
            end += timedelta(days=1)
        return (begin, end) if end <= meeting_end else None


class Place(_Model):
    name: Line
    address: Line | None = None

    def one_line(self) -> str:
        return f"{self.name}, {self.address}" if self.address else self.name


class Responsible(_Model):
    """Who answers for an item: a school, a team, or a named person."""

    school: Id | None = None
    team: Id | None = None
    person: Name | None = None

    @model_validator(mode="after")
    def _someone(self) -> Responsible:
        if not (self.school or self.team or self.person):
            raise ValueError(_("name a school, a team or a person"))
        return self


class OnDate(_Model):
    date: date


class DateRange(_Model):
    start: datetime | date
    end: datetime | date

    @model_validator(mode="after")
    def _order(self) -> DateRange:
        if type(self.start) is not type(self.end):
            raise ValueError(_("start and end must both be dates or both date-times"))
        if self.end < self.start:  # type: ignore[operator]
            raise ValueError(_("end is before start"))
        return self


_MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


def _month_text(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 2020-10 as the string it is, but 2020-10-01 as a date: take its month.
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}"
    return value


MonthText = Annotated[str, BeforeValidator(_month_text), Field(pattern=_MONTH)]


def _month_first(text: str) -> date:
    y, m = map(int, text.split("-"))
    return date(y, m, 1)


class MonthOnly(_Model):
    """A month (or a range of months, "October-November") agreed while the day is still to be fixed."""

    month: MonthText = Field(description="The month, YYYY-MM")
    end_month: MonthText | None = Field(None, description="Last month of a range, YYYY-MM")

    @model_validator(mode="after")
    def _order(self) -> MonthOnly:
        if self.end_month is not None and self.end_month < self.month:
            raise ValueError(_("end_month is before month"))
        return self

    @property
    def first_day(self) -> date:
        return _month_first(self.month)

    @property
    def last_day(self) -> date:
        first = _month_first(self.end_month or self.month)
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return nxt - timedelta(days=1)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}
BYDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
FREQS = ("daily", "weekly", "monthly", "yearly")
_ORDINALS = {**WEEKS, "second-last": -2, "penultimate": -2}
_BYDAY_CODE = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")


def _parse_by_day(value: Any) -> Any:
    """Days as RRULE writes them (TH, -1TH, 2MO) or in words (thursday, last thursday, second monday)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(
                _("{item!r} is not a day; write e.g. TH, -1TH or 'last thursday'").format(item=item)
            )
        text = " ".join(item.strip().split())
        code = _BYDAY_CODE.match(text.upper())
        if code:
            n = int(code[1]) if code[1] else None
            if n is not None and not (1 <= abs(n) <= 53):
                raise ValueError(
                    _("{item!r}: the ordinal must lie between 1 and 53 (or -1 and -53)").format(item=item)
                )
            out.append((code[2], n))
            continue
        words = text.lower().split(" ")
        day = words[-1]
        if day not in WEEKDAYS or len(words) > 2 or (len(words) == 2 and words[0] not in _ORDINALS):
            raise ValueError(
                _(
                    "{item!r} is not a day; write e.g. TH, -1TH, 2MO, thursday, 'last thursday', 'second monday'"
                ).format(item=item)
            )
        n = _ORDINALS[words[0]] if len(words) == 2 else None
        out.append((BYDAY_CODES[WEEKDAYS.index(day)], n))
    return [f"{n}{code}" if n is not None else code for code, n in out]


ByDay = Annotated[list[str], BeforeValidator(_parse_by_day)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, int | date) and not isinstance(value, bool) else value


class Recurrence(_Model):
    """A repeating key event: the RRULE vocabulary (freq, interval, by_day, by_month_day, by_month,
    count or until, exclude, rdates), or the short form every/weekday/week."""

    freq: Literal["daily", "weekly", "monthly", "yearly"] | None = Field(
        None, description="daily / weekly / monthly / yearly (RRULE FREQ)"
    )
    interval: Count = Field(
        1, ge=1, le=366, description="Every n-th period: 2 with weekly is every two weeks"
    )
    by_day: ByDay = Field(
        [], description="Days: TH, -1TH (last Thursday), 2MO, or in words: thursday, 'last thursday'"
    )
    by_month_day: Annotated[list[Annotated[int, Field(ge=-31, le=31)]], BeforeValidator(_one_or_many)] = (
        Field([], description="Days of the month: 10, or -1 for the last day")
    )
    by_month: Annotated[list[Annotated[int, Field(ge=1, le=12)]], BeforeValidator(_one_or_many)] = Field(
        [], description="Months, 1-12"
    )
    by_set_pos: Annotated[list[Annotated[int, Field(ge=-366, le=366)]], BeforeValidator(_one_or_many)] = (
        Field([], description="Which of the days found to keep: -1 for the last (RRULE BYSETPOS)")
    )
    every: Literal["week", "month"] | None = Field(None, description="Short form: week or month")
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None = (
        Field(None, description="Short form: the day of the week")
    )
    week: Literal["first", "second", "third", "fourth", "last"] | None = Field(
        None, description="Short form, monthly events: which week of the month"
    )
    start: date = Field(description="First day the recurrence may fall on")
    until: date | None = Field(None, description="Last day the recurrence may fall on")
    count: Count | None = Field(None, ge=1, le=1000, description="How many times, instead of until")
    time: Clock | None = Field(None, description="Local start time; none for all-day")
    end_time: Clock | None = None
    exclude: Annotated[list[date], BeforeValidator(_one_or_many)] = Field(
        [], description="Dates on which it does not happen (holidays; RRULE EXDATE)"
    )
    rdates: Annotated[list[date], BeforeValidator(_one_or_many)] = Field(
        [], description="Dates on which it also happens (RRULE RDATE)"
    )

    @model_validator(mode="after")
    def _check(self) -> Recurrence:
        if (self.freq is None) == (self.every is None):
            raise ValueError(
                _("give `freq` (daily, weekly, monthly, yearly) or the short form `every`, not both")
            )
        if self.every is not None:
            if self.weekday is None:
                raise ValueError(_("the short form needs `weekday`"))
            if self.by_day or self.by_month_day or self.by_month or self.by_set_pos or self.interval != 1:
                raise ValueError(_("write by_day, by_month_day, interval... with `freq`, not with `every`"))
            if self.every == "month" and self.week is None:
                raise ValueError(
                    _("a monthly recurrence needs `week` (first, second, third, fourth or last)")
                )
            if self.every == "week" and self.week is not None:
                raise ValueError(_("`week` only applies to monthly recurrences"))
        elif self.weekday is not None or self.week is not None:
            raise ValueError(
                _("`weekday` and `week` belong to the short form (`every`); with `freq` use by_day")
            )
        if self.freq is not None:
            ordinal = any(d[:-2] for d in self.by_day)
            if ordinal and (
                self.freq not in ("monthly", "yearly") or (self.freq == "yearly" and self.by_month)
            ):
                raise ValueError(
                    _(
                        "a day with an ordinal (-1TH, 'last thursday') needs freq monthly (or yearly without by_month)"
                    )
                )
            if self.by_month_day and self.freq == "weekly":
                raise ValueError(_("by_month_day does not go with freq weekly"))
            if 0 in self.by_month_day or 0 in self.by_set_pos:
                raise ValueError(
                    _("0 is not a day of the month or a position; count from 1, or from -1 back")
                )
        if self.until is None and self.count is None:
            raise ValueError(_("give `until` (the last day) or `count` (how many times)"))
        if self.until is not None and self.count is not None:
            raise ValueError(_("give `until` or `count`, not both"))
        if self.until is not None and self.until < self.start:
            raise ValueError(_("until is before start"))
        if self.end_time is not None and (self.time is None or self.end_time <= self.time):
            raise ValueError(_("end_time must come after time"))
        return self

    def rule_parts(self) -> dict[str, Any]:
        """FREQ, INTERVAL and the BY parts, in RRULE's terms (the short form translated)."""
        if self.every is not None:
            code = BYDAY_CODES[WEEKDAYS.index(self.weekday or "monday")]
            if self.every == "week":
                return {"freq": "WEEKLY", "byday": [code]}
            return {"freq": "MONTHLY", "byday": [f"{WEEKS[self.week or 'first']}{code}"]}
        parts: dict[str, Any] = {"freq": (self.freq or "weekly").upper()}
        if self.interval != 1:
            parts["interval"] = self.interval
        if self.by_day:
            parts["byday"] = list(self.by_day)
        if self.by_month_day:
            parts["bymonthday"] = list(self.by_month_day)
        if self.by_month:
            parts["bymonth"] = list(self.by_month)
        if self.by_set_pos:
            parts["bysetpos"] = list(self.by_set_pos)
        return parts

    def rule_days(self) -> list[date]:
        """The days the rule itself generates (dateutil's expansion), before exclude and rdates."""
        from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, weekday

        parts = self.rule_parts()
        freq = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY, "YEARLY": YEARLY}[parts["freq"]]
        byweekday = None
        if "byday" in parts:
            byweekday = []
            for code in parts["byday"]:
                wd = weekday(BYDAY_CODES.index(code[-2:]))
                byweekday.append(wd(int(code[:-2])) if code[:-2] else wd)
        start = datetime.combine(self.start, time(0))
        rule = rrule(
            freq,
            interval=parts.get("interval", 1),
            dtstart=start,
            until=datetime.combine(self.until, time(0)) if self.until else None,
            count=self.count,
            byweekday=byweekday,
            bymonthday=parts.get("bymonthday"),
            bymonth=parts.get("bymonth"),
            bysetpos=parts.get("bysetpos"),
            wkst=0,  # Monday, as RFC 5545's default WKST
        )
        return [d.date() for d in rule]

    def occurrences(self) -> list[date]:
        """Every day it happens: the rule's days without `exclude`, with `rdates`, in order."""
        skip = set(self.exclude)
        return sorted((set(self.rule_days()) | set(self.rdates)) - skip)


def _when_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict):
        for key, tag in (
            ("freq", "Recurrence"),
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
        custom_error_message=(
            "give one of: date; start and end; month (YYYY-MM, optionally end_month); "
            "or a recurrence (freq or every, with start)"
        ),
    ),
]


class ActionItem(_Model):
    id: Id
    title: Line
    responsible: Responsible
    due: date
    product: Line | None = None


class KeyEvent(_Model):
    """One entry of the cyclogram: a key event of the school year."""

    id: Id
    title: Line
    description: Text | None = None
    when: When
    timezone: Zone | None = None
    responsible: Responsible | None = None
    audience: Audience = Audience(all=True)
    product: Line | None = None
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
        days = w.occurrences()
        return days[0] if days else w.start

    @property
    def last_day(self) -> date:
        w = self.when
        if isinstance(w, OnDate):
            return w.date
        if isinstance(w, DateRange):
            return w.end if not isinstance(w.end, datetime) else w.end.date()
        if isinstance(w, MonthOnly):
            return w.last_day
        days = w.occurrences()
        return days[-1] if days else (w.until or w.start)


class Minutes(_Model):
    """What a meeting decided; `final: true` releases the summary and the follow-up items."""

    final: bool = False
    attendance: list[Id] = Field([], description="Ids of the schools that attended")
    decisions: list[Text] = []
    approved_events: list[KeyEvent] = Field([], description="Key events approved: they join the cyclogram")
    action_items: list[ActionItem] = []
    products: list[Line] = []
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
    products: list[Line] = []
    agenda: list[AgendaItem] = []
    start: Moment = Field(
        description="Local start, e.g. 2020-09-25 10:00 (or 10.00); a date alone makes an all-day meeting"
    )
    end: Moment = Field(description="Local end; for an all-day meeting, its last day")
    timezone: Zone | None = Field(None, description="IANA zone; default: the project's")
    place: Place | None = Field(None, description="Where it happens; an online meeting may have none")
    online_url: HttpUrl | None = Field(None, description="Link to join online")
    audience: Audience
    status: MeetingStatus = MeetingStatus.planned
    mailings: dict[str, Any] = Field(
        {}, description="Overrides of the project's mailing policy (and `review: true`)"
    )
    minutes: Minutes | None = None
    documents: list[Document] = Field([], description="Files sent with the invitation and agenda")

    @field_validator("start", "end")
    @classmethod
    def _naive_local(cls, value: datetime | date) -> datetime | date:
        if isinstance(value, datetime) and value.tzinfo is not None:
            raise ValueError(_("write the local time without an offset; the zone comes from `timezone`"))
        return value

    @model_validator(mode="after")
    def _where_and_when(self) -> Meeting:
        if self.place is None and self.online_url is None:
            raise ValueError(_("give a place, an online_url, or both"))
        if isinstance(self.start, datetime) != isinstance(self.end, datetime):
            raise ValueError(
                _("start and end must both be dates (an all-day meeting) or both dates with times")
            )
        return self

    @property
    def all_day(self) -> bool:
        """Given as dates only: an all-day (or multi-day) meeting."""
        return not isinstance(self.start, datetime)

    @property
    def location(self) -> str:
        """Where to go: the place, else the link of an online-only meeting."""
        if self.place is not None:
            return self.place.one_line()
        return str(self.online_url)

    @field_validator("mailings")
    @classmethod
    def _known_kinds(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(KINDS) - {"review"})
        if unknown:
            raise ValueError(
                _("unknown mailing kind(s) {kinds}; known: {known}").format(
                    kinds=", ".join(unknown), known=", ".join(KINDS)
                )
            )
        for kind, rule in value.items():
            if kind == "review":
                if not isinstance(rule, bool):
                    raise ValueError(_("`review` takes true or false"))
                continue
            if not isinstance(rule, dict):
                raise ValueError(
                    _("`{kind}` takes a mapping of rule fields, e.g. {example}").format(
                        kind=kind, example="{days_before: 3}"
                    )
                )
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
    name: Name
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
            raise ValueError(_("`school` must be the first of `schools`"))
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
        """Aware start of a meeting in its own zone (an all-day meeting: midnight of its first day)."""
        if not isinstance(meeting.start, datetime):
            return datetime.combine(meeting.start, time(0), tzinfo=self.zone(meeting))
        return _localize(meeting.start, self.zone(meeting))

    def meeting_end(self, meeting: Meeting) -> datetime:
        """Aware end (an all-day meeting: midnight after its last day, as DTEND is exclusive)."""
        if not isinstance(meeting.end, datetime):
            return datetime.combine(meeting.end + timedelta(days=1), time(0), tzinfo=self.zone(meeting))
        return _localize(meeting.end, self.zone(meeting))

    def school_zone(self, school: School) -> ZoneInfo:
        """The zone a school lives in: its own, else the project's."""
        return ZoneInfo(school.timezone or self.settings.timezone)

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
        found: dict[str, dict[str, None]] = {}  # address -> the audience's schools it answers for, in order
        for school in self.audience_schools(audience):
            sid = school.id
            found.setdefault(school.head.email.lower(), {})[sid] = None
            if school.contacts:  # most schools have none: no list made for them
                for c in school.contacts:
                    if c.notify:
                        found.setdefault(c.email.lower(), {})[sid] = None
        out: list[Recipient] = []
        for key, ids in found.items():
            person, language = people[key]
            schools = tuple(ids)
            # Built from values the model validated already: no second round of address checks.
            out.append(
                built(
                    Recipient,
                    {
                        "school": schools[0],
                        "name": person.name,
                        "email": person.email,
                        "language": language,
                        "schools": schools,
                        "person": person,
                    },
                )
            )
        return out

    def _people(self) -> dict[str, tuple[Contact, str]]:
        """Each mailbox's name, address and language, from its first role in the configuration."""
        known = self._by_id.get("people")
        if known is None:
            known = {}
            default = self.settings.language
            for school in self.schools:
                language = school.language or default
                key = school.head.email.lower()
                if key not in known:
                    known[key] = (school.head, language)
                if school.contacts:
                    for c in school.contacts:
                        if c.notify:
                            known.setdefault(c.email.lower(), (c, language))
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
