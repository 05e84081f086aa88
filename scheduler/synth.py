"""Synthetic configurations of any size: deterministic, valid and realistic, for rehearsals and benchmarks."""

from __future__ import annotations

import csv
import io
import os
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from .errors import CyclogramError
from .model import Recurrence

__all__ = [
    "DST_ZONES",
    "FEATURES",
    "ROSTER_TABLE_FROM",
    "RUSSIAN_ZONES",
    "Shape",
    "SynthSpec",
    "synth_files",
    "write_config",
]

# --- vocabulary ------------------------------------------------------------------------------------------


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


_SURNAMES_M = _words(
    "Иванов Петров Смирнов Кузнецов Соколов Попов Лебедев Козлов Новиков Морозов Волков "
    "Соловьёв Васильев Зайцев Павлов Семёнов Голубев Виноградов Богданов Воробьёв Фёдоров "
    "Михайлов Беляев Тарасов Белов Комаров Орлов Киселёв Макаров Андреев Ковалёв Ильин Гусев "
    "Титов Кудрявцев Баранов Куликов Алексеев Степанов Яковлев Сорокин Сергеев Романов Захаров "
    "Борисов Королёв Герасимов Пономарёв"
)
_NAMES_M = _words(
    "Александр Алексей Андрей Сергей Дмитрий Михаил Николай Владимир Игорь Олег Павел Юрий "
    "Виктор Евгений Константин Илья Роман Максим Георгий Борис"
)
_NAMES_F = _words(
    "Анна Мария Елена Ольга Татьяна Наталья Ирина Светлана Людмила Галина Екатерина Юлия Марина "
    "Надежда Вера Любовь Валентина Оксана Алла Лариса"
)
_PATRONYMIC_ROOTS = _words(
    "Александров Алексеев Андреев Сергеев Дмитриев Михайлов Николаев Владимиров Игорев Олегов "
    "Павлов Юрьев Викторов Евгеньев Борисов Петров Иванов"
)
_EN_FIRST = ("Jane", "John", "Mary", "Peter", "Emma", "David", "Sarah", "Michael", "Laura", "James")
_EN_LAST = ("Smith", "Brown", "Taylor", "Wilson", "Clarke", "Evans", "Walker", "Wright", "Green", "Hall")

_SCHOOL_KINDS = (
    ("Средняя школа № {n}", "СШ № {n}", 60),
    ("Гимназия № {n}", "Гимназия № {n}", 12),
    ("Лицей № {n}", "Лицей № {n}", 8),
    ("Основная школа № {n}", "ОШ № {n}", 10),
    ("Средняя школа № {n} с углублённым изучением {subject}", "СШ № {n}", 10),
)
_SUBJECTS = _words("математики|физики|химии|иностранных языков|информатики|русского языка|биологии", "|")
_STREETS = (
    "ул. Свободы",
    "Б. Октябрьская ул.",
    "ул. Собинова",
    "Московский пр-т",
    "ул. Республиканская",
    "Ленинградский пр-т",
    "ул. Чайковского",
    "Красноперекопская ул.",
    "ул. Угличская",
    "ул. Кирова",
)
_ROLES = (
    "заместитель директора по учебной работе",
    "заместитель директора по научно-методической работе",
    "руководитель методического объединения",
    "педагог-психолог",
    "координатор проекта в школе",
)
_SPEAKER_ROLES = (
    "директор МОУ «ГЦРО», руководитель муниципального проекта",
    "методист МОУ «ГЦРО»",
    "заместитель директора МОУ «ГЦРО»",
    "руководитель сетевой команды",
    "руководитель авторского проекта",
    "специалист департамента образования мэрии города Ярославля",
    "директор школы-участника проекта",
)
_TEAM_TOPICS = (
    "Цифровая школа",
    "Проектное управление",
    "Функциональная грамотность",
    "Школа полного дня",
    "Инклюзивная среда",
    "Профильное обучение",
    "Наставничество",
    "Успех каждого ребёнка",
    "Современная школа",
    "Учитель будущего",
    "Точка роста",
    "Родительский университет",
)
_MEETING_KINDS = (
    "Встреча руководителей образовательных учреждений, участников проекта",
    "Семинар сетевых команд",
    "Методический совет проекта",
    "Мастерская авторских проектов",
    "Круглый стол «{topic}»",
    "Стратегическая сессия команд проекта",
    "Консультация для руководителей команд «{topic}»",
)
_AGENDA = (
    "Регистрация участников.",
    "Приветствие участников встречи. Информация об условиях и порядке работы в проекте.",
    "Презентация промежуточных результатов команд.",
    "Проработка содержания и логики Сетевого проекта, его связи с авторскими проектами.",
    "Работа в группах: продукты проекта и вклад каждой команды.",
    "Утверждение ключевых мероприятий и основных продуктов.",
    "О публикациях в сборнике проекта.",
    "Обмен опытом: практики сетевого взаимодействия.",
    "Подведение итогов встречи.",
    "Разное.",
)
_GOALS = (
    "Согласовать позиции руководителей по ключевым вопросам реализации проекта «{topic}».",
    "Подвести промежуточные итоги работы команд и определить дальнейшие шаги.",
    "Обсудить продукты проекта и порядок их представления.",
    "Выработать общее видение сетевого взаимодействия школ-участников.",
)
_TASKS = (
    "Проанализировать ход реализации авторских проектов.",
    "Определить формат взаимодействия команд.",
    "Утвердить ключевые мероприятия на следующий период.",
    "Проинформировать руководителей об условиях работы в проекте.",
    "Конкретизировать перечень основных результатов и продуктов.",
)
_RESULTS = (
    "У участников сформировано представление о продвижении каждой команды.",
    "Намечены перспективы работ и ключевые мероприятия.",
    "Определён вклад каждой команды в совокупный продукт проекта.",
)
_PRODUCTS = (
    "Циклограмма работы",
    "Методические рекомендации",
    "Паспорт проекта",
    "Сборник материалов",
    "Аналитическая справка",
    "Программа стажировки",
    "Банк лучших практик",
    "Дорожная карта",
)
_DECISIONS = (
    "Позиции руководителей по ключевым вопросам согласованы.",
    "Утвердить план работы команд на следующий период.",
    "Командам подготовить материалы для сборника проекта.",
    "Провести открытые мероприятия на базе школ-участников.",
    "Рекомендовать опыт команд к распространению в сети проекта.",
)
_EVENT_TITLES = (
    "Семинар «{topic}»",
    "Мастер-класс «{topic}»",
    "Открытое мероприятие «{topic}»",
    "Отчёт команд по направлению «{topic}»",
    "Конкурс проектов «{topic}»",
    "Стажировка «{topic}»",
    "Вебинар «{topic}»",
    "Фестиваль практик «{topic}»",
)
_HOLIDAYS = (date(2020, 12, 31), date(2021, 1, 7), date(2021, 2, 23), date(2021, 3, 8), date(2021, 5, 10))
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
_WEEKS = ("first", "second", "third", "fourth", "last")


# Every zone of Russia (with the eras of 2011-2014 and the regional changes of 2016 and 2020 in their
# history) and zones abroad that keep daylight saving, in both hemispheres.
RUSSIAN_ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Simferopol", "Europe/Kirov", "Europe/Volgograd",
    "Europe/Astrakhan", "Europe/Saratov", "Europe/Ulyanovsk", "Europe/Samara", "Asia/Yekaterinburg",
    "Asia/Omsk", "Asia/Novosibirsk", "Asia/Barnaul", "Asia/Tomsk", "Asia/Novokuznetsk",
    "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Chita", "Asia/Yakutsk", "Asia/Khandyga",
    "Asia/Vladivostok", "Asia/Ust-Nera", "Asia/Magadan", "Asia/Sakhalin", "Asia/Srednekolymsk",
    "Asia/Kamchatka", "Asia/Anadyr",
)  # fmt: skip
DST_ZONES = (
    "Europe/Berlin", "Europe/London", "Europe/Chisinau", "America/New_York", "America/Santiago",
    "Australia/Sydney", "Pacific/Auckland", "Asia/Tehran", "Europe/Kyiv",
)  # fmt: skip

# What `--shape` may switch on, each a kind of plan real organisers write.
FEATURES = {
    "no-minutes": "no meeting has minutes yet (the start of a year)",
    "draft-minutes": "minutes exist but none is final",
    "no-actions": "final minutes set no action items",
    "rrule": "recurrences in the RRULE vocabulary (intervals, last weekdays, month days, counts, rdates)",
    "all-day": "some meetings given as dates only",
    "online": "some meetings online only (a link, no place)",
    "night": "some meetings run past midnight (20:00-02:00)",
    "early-slots": "agendas open with registration before the start",
    "odd-events": "month ranges, events across the school-year boundary and in the summer",
    "school-zones": "some schools in other zones than the project",
    "cyrillic": "some heads with Cyrillic addresses (завуч@пример.рф)",
}


@dataclass(frozen=True)
class Shape:
    """What kind of plan to write beyond its size; the default is the shape of the example."""

    features: frozenset[str] = frozenset()
    zone: str = "Europe/Moscow"
    school_zones: tuple[str, ...] = ("Europe/Kaliningrad", "Asia/Yekaterinburg", "Asia/Vladivostok")

    @classmethod
    def parse(cls, text: str, zone: str = "Europe/Moscow") -> Shape:
        """`rrule,all-day,online` (or `all`) as the command line gives it."""
        names = {n.strip() for n in text.split(",") if n.strip()}
        if "all" in names:
            names = (names - {"all"}) | (set(FEATURES) - {"no-minutes", "draft-minutes"})
        unknown = sorted(names - set(FEATURES))
        if unknown:
            raise CyclogramError(f"unknown shape {', '.join(unknown)}; known: all, {', '.join(FEATURES)}")
        return cls(features=frozenset(names), zone=zone)

    def has(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class SynthSpec:
    """The size and seed of a synthetic configuration; the same spec always gives the same bytes."""

    schools: int = 20
    teams: int = 4
    meetings: int = 5
    events: int = 20
    seed: int = 0
    year: int = 2020
    notify_share: float = 0.1  # share of schools with a second contact who also gets the mail
    english_share: float = 0.03
    shape: Shape = Shape()

    def check(self) -> None:
        if self.schools < 1:
            raise CyclogramError("--schools must be at least 1")
        if not 2000 <= self.year <= 2099:
            raise CyclogramError("--year must lie between 2000 and 2099")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.shape.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CyclogramError(f"unknown time zone {self.shape.zone!r}") from None
        if min(self.teams, self.meetings, self.events) < 0:
            raise CyclogramError("--teams, --meetings and --events cannot be negative")
        if not (0 <= self.notify_share <= 1 and 0 <= self.english_share <= 1):
            raise CyclogramError("shares must lie between 0 and 1")


def _dump(data: Any, header: str) -> str:
    # libyaml's emitter when present: 10,000 schools would take seconds in pure Python
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False, width=100)
    return f"# {header}\n{body}"


class _Gen:
    """One generation run: all randomness flows from a single Random(seed)."""

    def __init__(self, spec: SynthSpec):
        self.spec = spec
        self.shape = spec.shape
        self.rnd = random.Random(spec.seed)
        # The shape's choices draw from their own stream: the default shape gives the same bytes as ever.
        self.odd = random.Random(f"{spec.seed}/shape")
        self.first = date(spec.year, 9, 1)
        self.last = date(spec.year + 1, 8, 31)
        self.width = max(4, len(str(spec.schools)))
        self.school_ids = [f"school-{i:0{self.width}d}" for i in range(1, spec.schools + 1)]
        self.team_ids = [f"team-{i:03d}" for i in range(1, spec.teams + 1)]
        self.topics = [self._topic(i) for i in range(spec.teams)]
        self._teams_cache: list[dict[str, Any]] = []
        self.roster = "yaml"

    def _topic(self, i: int) -> str:
        base = _TEAM_TOPICS[i % len(_TEAM_TOPICS)]
        return base if i < len(_TEAM_TOPICS) else f"{base}-{i // len(_TEAM_TOPICS) + 1}"

    # -- people -----------------------------------------------------------------------------------------
    def person(self) -> str:
        r = self.rnd
        male = r.random() < 0.35  # most heads of Russian schools are women
        surname = r.choice(_SURNAMES_M)
        root = r.choice(_PATRONYMIC_ROOTS)
        if male:
            return f"{surname} {r.choice(_NAMES_M)} {root}ич"
        return f"{surname}а {r.choice(_NAMES_F)} {root}на"

    def initials(self) -> str:
        r = self.rnd
        ending = "а" if r.random() < 0.65 else ""
        return f"{r.choice(_SURNAMES_M)}{ending} {r.choice('АБВГДЕИЛМНОСТ')}.{r.choice('АБВГДЕИЛМНОСТ')}."

    def address(self) -> str:
        return f"{self.rnd.choice(_STREETS)}, д. {self.rnd.randint(1, 120)}"

    # -- participants -----------------------------------------------------------------------------------
    def schools(self) -> list[dict[str, Any]]:
        r, out = self.rnd, []
        weights = [w for _, _, w in _SCHOOL_KINDS]
        for n, sid in enumerate(self.school_ids, start=1):
            full, short, _ = r.choices(_SCHOOL_KINDS, weights)[0]
            school: dict[str, Any] = {
                "id": sid,
                "name": full.format(n=n, subject=r.choice(_SUBJECTS)),
                "short_name": short.format(n=n),
            }
            english = r.random() < self.spec.english_share
            head = f"{r.choice(_EN_FIRST)} {r.choice(_EN_LAST)}" if english else self.person()
            school["head"] = {"name": head, "email": f"head@{sid}.example.org"}
            if r.random() < self.spec.notify_share:
                school["contacts"] = [
                    {
                        "name": self.person(),
                        "email": f"deputy@{sid}.example.org",
                        "role": r.choice(_ROLES),
                        "notify": True,
                    }
                ]
            if english:
                school["language"] = "en"
            if self.shape.has("school-zones") and self.odd.random() < 0.3:
                school["timezone"] = self.odd.choice(self.shape.school_zones)
            if self.shape.has("cyrillic") and self.odd.random() < 0.3:
                school["head"]["email"] = f"завуч{n}@пример.рф"
            out.append(school)
        return out

    def teams(self) -> list[dict[str, Any]]:
        r, out = self.rnd, []
        for i, tid in enumerate(self.team_ids):
            size = min(len(self.school_ids), r.randint(2, 8))
            members = sorted(r.sample(self.school_ids, size))
            out.append(
                {
                    "id": tid,
                    "name": f"Команда «{self.topics[i]}»",
                    "schools": members,
                    "project": f"Авторский проект «{self.topics[i]}»",
                    "contact": {"name": self.person(), "email": f"coordinator@{tid}.example.org"},
                }
            )
        return out

    # -- audiences and responsibility -------------------------------------------------------------------
    def audience(self) -> Any:
        r = self.rnd
        roll = r.random()
        if roll < 0.4 or (not self.team_ids and roll < 0.7):
            return "all"
        if roll < 0.75 and self.team_ids:
            return {"teams": sorted(r.sample(self.team_ids, min(len(self.team_ids), r.randint(1, 3))))}
        aud: dict[str, Any] = {}
        if self.team_ids and r.random() < 0.3:
            aud["teams"] = [r.choice(self.team_ids)]
        aud["schools"] = sorted(r.sample(self.school_ids, min(len(self.school_ids), r.randint(1, 5))))
        return aud

    def responsible(self) -> dict[str, str]:
        r = self.rnd
        roll = r.random()
        if roll < 0.3 and self.team_ids:
            return {"team": r.choice(self.team_ids)}
        if roll < 0.55:
            return {"school": r.choice(self.school_ids)}
        return {"person": self.initials()}

    def topic(self) -> str:
        return self.rnd.choice(self.topics or list(_TEAM_TOPICS))

    # -- time -------------------------------------------------------------------------------------------
    def workday(self, start: date, end: date) -> date:
        day = start + timedelta(days=self.rnd.randint(0, max(0, (end - start).days)))
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day if day >= start else start

    def when(self, kind: str, after: date | None = None) -> dict[str, Any]:
        r = self.rnd
        first = max(self.first, after or self.first)
        last = min(self.last, date(self.spec.year + 1, 6, 30))
        if first > last:
            first = last
        if kind == "recurring" and self.shape.has("rrule") and self.odd.random() < 0.7:
            return self.rrule(first, last)
        if kind == "recurring":
            every = "month" if r.random() < 0.7 else "week"
            start = self.workday(first, min(last, first + timedelta(days=60)))
            until = min(last, start + timedelta(days=r.randint(60, 240)))
            w: dict[str, Any] = {"every": every, "weekday": r.choice(_WEEKDAYS)}
            if every == "month":
                w["week"] = r.choice(_WEEKS)
            w.update(start=start, until=until)
            if r.random() < 0.7:
                hour = r.choice((10, 14, 15, 16))
                w.update(time=f"{hour:02d}:00", end_time=f"{hour + 1:02d}:30")
            skip = [d for d in _HOLIDAYS if start <= d.replace(year=d.year - 2020 + self.spec.year) <= until]
            if skip:
                w["exclude"] = [d.replace(year=d.year - 2020 + self.spec.year) for d in skip]
            return w
        if kind == "month":
            day = self.workday(first, last)
            return {"month": f"{day.year:04d}-{day.month:02d}"}
        if kind == "date":
            return {"date": self.workday(first, last)}
        day = self.workday(first, last)
        if r.random() < 0.5:
            hour = r.choice((10, 11, 14, 15))
            return {
                "start": datetime.combine(day, time(hour, 0)),
                "end": datetime.combine(day, time(hour + 2, 0)),
            }
        return {"start": day, "end": min(self.last, day + timedelta(days=r.randint(1, 4)))}

    def rrule(self, first: date, last: date) -> dict[str, Any]:
        """A recurrence as organisers say it: monthly on the 10th, every two weeks, the last Thursday..."""
        o = self.odd
        start = self.workday(first, min(last, first + timedelta(days=45)))
        form = o.choice(
            ("month-day", "fortnight", "last-weekday", "ordinal-words", "last-workday", "yearly", "daily")
        )
        w: dict[str, Any]
        if form == "month-day":
            w = {"freq": "monthly", "by_month_day": o.choice((10, 15, 1, -1))}
        elif form == "fortnight":
            w = {
                "freq": "weekly",
                "interval": 2,
                "by_day": o.sample(["MO", "TU", "WE", "TH", "FR"], o.randint(1, 2)),
            }
        elif form == "last-weekday":
            w = {"freq": "monthly", "by_day": f"-1{o.choice(['MO', 'TU', 'WE', 'TH', 'FR'])}"}
        elif form == "ordinal-words":
            w = {
                "freq": "monthly",
                "by_day": f"{o.choice(['first', 'second', 'third', 'last'])} {o.choice(_WEEKDAYS)}",
            }
        elif form == "last-workday":
            w = {"freq": "monthly", "by_day": ["MO", "TU", "WE", "TH", "FR"], "by_set_pos": -1}
        elif form == "yearly":
            w = {
                "freq": "yearly",
                "by_month": sorted(o.sample(range(1, 13), 2)),
                "by_month_day": o.randint(1, 28),
            }
        else:
            w = {"freq": "daily", "interval": o.choice((1, 3, 7))}
        w["start"] = start
        if o.random() < 0.4:
            w["count"] = o.randint(1, 12)
        else:
            w["until"] = min(last, start + timedelta(days=o.randint(30, 240)))
        if o.random() < 0.6:
            hour = o.choice((9, 10, 14, 15, 16))
            w.update(time=f"{hour:02d}:00", end_time=f"{hour + 1:02d}:30")
        probe = Recurrence.model_validate(w)
        days = probe.rule_days()
        if len(days) > 2 and o.random() < 0.5:
            w["exclude"] = [days[1]]
        if o.random() < 0.4:
            w["rdates"] = [self.workday(start, last)]
        return w

    def odd_events(self) -> list[dict[str, Any]]:
        """A month range, a week across the start of the year, a summer school, a recurrence past it."""
        o, y = self.odd, self.spec.year
        month = o.randint(9, 11)
        return [
            {
                "id": "event-months",
                "title": "Отчёты команд (дата уточняется)",
                "when": {"month": f"{y:04d}-{month:02d}", "end_month": f"{y:04d}-{month + 1:02d}"},
                "audience": "all",
            },
            {
                "id": "event-boundary",
                "title": "Августовское совещание и неделя запуска",
                "when": {"start": date(y, 8, 26), "end": date(y, 9, 2)},
                "audience": "all",
            },
            {
                "id": "event-summer",
                "title": "Летняя школа проекта",
                "when": {"start": date(y + 1, 7, o.randint(1, 10)), "end": date(y + 1, 7, 20)},
                "audience": self.audience(),
            },
        ]

    # -- key events -------------------------------------------------------------------------------------
    def event(self, eid: str, after: date | None = None) -> dict[str, Any]:
        r = self.rnd
        kind = r.choices(("recurring", "month", "date", "range"), (10, 15, 45, 30))[0]
        ev: dict[str, Any] = {"id": eid, "title": r.choice(_EVENT_TITLES).format(topic=self.topic())}
        if r.random() < 0.5:
            ev["description"] = r.choice(_GOALS).format(topic=self.topic())
        ev["when"] = self.when(kind, after)
        if r.random() < 0.8:
            ev["responsible"] = self.responsible()
        ev["audience"] = self.audience()
        if r.random() < 0.4:
            ev["product"] = r.choice(_PRODUCTS)
        if r.random() < 0.3:
            ev["place"] = {"name": f"Средняя школа № {r.randint(1, 99)}", "address": self.address()}
        return ev

    def cyclogram(self) -> dict[str, Any]:
        events = [self.event(f"event-{i:04d}") for i in range(1, self.spec.events + 1)]
        if self.shape.has("odd-events"):
            events += self.odd_events()
        return {"events": events}

    # -- meetings ---------------------------------------------------------------------------------------
    def meeting_days(self) -> list[date]:
        n = self.spec.meetings
        first, last = date(self.spec.year, 9, 15), date(self.spec.year + 1, 6, 20)
        span = (last - first).days
        days = []
        for i in range(n):
            day = first + timedelta(
                days=span * i // max(1, n) + self.rnd.randint(0, max(0, span // max(1, n) - 1))
            )
            while day.weekday() >= 5:
                day += timedelta(days=1)
            days.append(min(day, last))
        return days

    def agenda(self, start: time, end: time) -> list[dict[str, Any]]:
        r = self.rnd
        items = r.randint(3, 7)
        titles = [_AGENDA[0], *r.sample(_AGENDA[1:-2], items - 2), _AGENDA[-2]]
        minutes_total = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
        step = minutes_total // len(titles)
        out, at = [], start.hour * 60 + start.minute
        for i, title in enumerate(titles):
            stop = at + step if i < len(titles) - 1 else end.hour * 60 + end.minute
            item: dict[str, Any] = {"title": title}
            if r.random() < 0.85:
                item["start"] = f"{at // 60:02d}:{at % 60:02d}"
                item["end"] = f"{stop // 60:02d}:{stop % 60:02d}"
            if 0 < i < len(titles) - 1:
                item["speakers"] = [
                    {"name": self.initials(), "role": r.choice(_SPEAKER_ROLES)}
                    if r.random() < 0.7
                    else {"name": self.initials()}
                    for _ in range(r.randint(1, 3))
                ]
            out.append(item)
            at = stop
        return out

    def meeting(self, i: int, day: date, final: bool, approved: list[str]) -> dict[str, Any]:
        r = self.rnd
        mid = f"meeting-{i:03d}"
        hour = r.choice((10, 10, 11, 14, 15))
        start, end = time(hour, 0), time(hour + 2, 0)
        audience = self.audience() if i > 1 else "all"
        m: dict[str, Any] = {
            "id": mid,
            "title": r.choice(_MEETING_KINDS).format(topic=self.topic()),
            "goal": r.choice(_GOALS).format(topic=self.topic()),
            "tasks": r.sample(_TASKS, r.randint(2, 4)),
            "planned_results": r.sample(_RESULTS, r.randint(1, 3)),
            "products": r.sample(_PRODUCTS, r.randint(1, 3)),
            "agenda": self.agenda(start, end),
            "start": datetime.combine(day, start),
            "end": datetime.combine(day, end),
            "place": {"name": "МОУ «ГЦРО»", "address": "Б. Октябрьская, д.44/60"}
            if r.random() < 0.6
            else {"name": f"Средняя школа № {r.randint(1, 99)}", "address": self.address()},
            "audience": audience,
        }
        if r.random() < 0.3:
            m["online_url"] = f"https://meet.example.org/{mid}"
        self.reshape(m, day, hour)
        if r.random() < 0.05 and i > 1:
            m["status"] = "cancelled"
            return m
        if self.shape.has("no-minutes"):
            return m
        if final and not self.shape.has("draft-minutes"):
            m["minutes"] = self.minutes(mid, day, audience, approved)
            if self.shape.has("no-actions"):
                m["minutes"]["action_items"] = []
        elif r.random() < 0.3 or (final and self.shape.has("draft-minutes")):
            m["minutes"] = {"final": False, "decisions": r.sample(_DECISIONS, 1)}
        return m

    def reshape(self, m: dict[str, Any], day: date, hour: int) -> None:
        """The shape's variations of one meeting: online only, all day, at night, registration first."""
        o = self.odd
        if self.shape.has("online") and o.random() < 0.3:
            m.pop("place")
            m["online_url"] = f"https://meet.example.org/{m['id']}"
        if self.shape.has("all-day") and o.random() < 0.3:
            m["start"], m["end"] = day, day + timedelta(days=o.randint(0, 2))
            for item in m["agenda"]:
                item.pop("start", None), item.pop("end", None)
            return
        if self.shape.has("night") and o.random() < 0.3:
            m["start"] = datetime.combine(day, time(20, 0))
            m["end"] = datetime.combine(day + timedelta(days=1), time(2, 0))
            slots = [("20:00", "22:00"), ("22:00", "23:30"), ("23:30", "00:30"), ("00:30", "02:00")]
            for k, item in enumerate(m["agenda"]):
                item.pop("start", None), item.pop("end", None)
                if k < len(slots):
                    item["start"], item["end"] = slots[k]
            return
        if self.shape.has("early-slots") and m["agenda"]:
            first = m["agenda"][0]
            first["start"], first["end"] = f"{hour - 1:02d}:30", f"{hour:02d}:00"

    def minutes(self, mid: str, day: date, audience: Any, approved: list[str]) -> dict[str, Any]:
        r = self.rnd
        pool = self.school_ids if audience == "all" else self._audience_ids(audience)
        attended = sorted(r.sample(pool, max(1, int(len(pool) * r.uniform(0.6, 1.0))))) if pool else []
        events = []
        for j in range(r.randint(0, 2)):
            eid = f"{mid}-event-{j + 1}"
            approved.append(eid)
            events.append(self.event(eid, after=day + timedelta(days=7)))
        items = []
        for j in range(r.randint(1, 4)):
            due = min(self.last, day + timedelta(days=r.randint(14, 90)))
            item: dict[str, Any] = {
                "id": f"{mid}-action-{j + 1}",
                "title": f"Подготовить {r.choice(_PRODUCTS).lower()}",
                "responsible": self.responsible(),
                "due": due,
            }
            if r.random() < 0.5:
                item["product"] = r.choice(_PRODUCTS)
            items.append(item)
        return {
            "final": True,
            "attendance": attended,
            "decisions": r.sample(_DECISIONS, r.randint(2, 4)),
            "approved_events": events,
            "action_items": items,
            "products": r.sample(_PRODUCTS, r.randint(1, 3)),
        }

    def _audience_ids(self, audience: dict[str, Any]) -> list[str]:
        wanted = set(audience.get("schools", []))
        if audience.get("teams"):
            for team in self._teams_cache:
                if team["id"] in audience["teams"]:
                    wanted.update(team["schools"])
        return sorted(wanted)

    # -- the whole directory ----------------------------------------------------------------------------
    def files(self) -> dict[str, str]:
        spec = self.spec
        tag = (
            f"Synthetic configuration: {spec.schools} schools, {spec.teams} teams, {spec.meetings} meetings, "
            f"{spec.events} key events, seed {spec.seed}."
        )
        project = {
            "name": "Региональный проект «Развитие культуры проектного управления в условиях реализации "
            "Национального проекта «Образование»»",
            "short_name": "Проектное управление",
            "organizer": {"name": "МОУ «ГЦРО»", "email": "gcro@example.org"},
            "timezone": self.shape.zone,
            "language": "ru",
            "school_year": {"start": spec.year},
            "base_url": "https://cyclogram.example.org/",
            "mailings": {
                "invitation": {"days_before": 14, "at": "10:00"},
                "agenda": {"days_before": 3, "at": "10:00"},
                "reminder": {"days_before": 1, "at": "09:00"},
                "summary": {"days_after": 1, "at": "10:00"},
                "action_reminder": {"days_before": 3, "at": "09:00"},
                "event_reminder": {"enabled": True, "days_before": 2, "at": "09:00"},
                "catch_up_hours": 24,
            },
        }
        schools = self.schools()
        self._teams_cache = self.teams()
        table = self.roster == "csv" or (self.roster == "auto" and spec.schools >= ROSTER_TABLE_FROM)
        out = {"project.yaml": _dump(project, tag)}
        if table:
            out["schools.csv"] = _roster_csv(schools)
            out["participants.yaml"] = _dump({"teams": self._teams_cache}, tag)
        else:
            out["participants.yaml"] = _dump({"schools": schools, "teams": self._teams_cache}, tag)
        out["cyclogram.yaml"] = _dump(self.cyclogram(), tag)
        days = self.meeting_days()
        # the earlier part of the year is "past": its meetings carry final minutes
        past = int(len(days) * 0.6 + 0.5)
        approved: list[str] = []
        for i, day in enumerate(days, start=1):
            m = self.meeting(i, day, final=i <= past, approved=approved)
            out[f"meetings/{day.isoformat()}-{m['id']}.yaml"] = _dump(m, tag)
        return out


# From this many schools `synth` writes them as schools.csv (a roster of that size is a table, read row by
# row) unless asked otherwise; below it, in participants.yaml as an organiser writes a small network.
ROSTER_TABLE_FROM = 10_000
ROSTER_COLUMNS = (
    "id", "name", "short_name", "head.name", "head.email", "language", "timezone",
    "contact.name", "contact.email", "contact.role", "contact.notify",
)  # fmt: skip


def _roster_csv(schools: list[dict[str, Any]]) -> str:
    """The schools as schools.csv: UTF-8 with a BOM (so Excel opens it as such), one row a school."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROSTER_COLUMNS)
    for school in schools:
        head = school["head"]
        contact = (school.get("contacts") or [{}])[0]
        writer.writerow(
            [
                school["id"], school["name"], school.get("short_name", ""), head["name"], head["email"],
                school.get("language", ""), school.get("timezone", ""), contact.get("name", ""),
                contact.get("email", ""), contact.get("role", ""), "yes" if contact.get("notify") else "",
            ]
        )  # fmt: skip
    return "\ufeff" + out.getvalue()


def synth_files(spec: SynthSpec, roster: str = "auto") -> dict[str, str]:
    """The files of a configuration directory (relative path -> text) for `spec`.

    `roster`: "yaml" puts the schools in participants.yaml, "csv" in schools.csv, "auto" chooses the
    table from ROSTER_TABLE_FROM schools."""
    spec.check()
    if roster not in ("auto", "yaml", "csv"):
        raise CyclogramError(f"--roster takes auto, yaml or csv, not {roster!r}")
    gen = _Gen(spec)
    gen.roster = roster
    return gen.files()


def write_config(out: str | os.PathLike[str], files: dict[str, str], force: bool = False) -> list[Path]:
    """Write `files` under `out`; an existing configuration is replaced only with `force`."""
    root = Path(out)
    if (root / "project.yaml").exists() and not force:
        raise CyclogramError(f"{root} already holds a configuration; pass --force to replace it")
    (root / "meetings").mkdir(parents=True, exist_ok=True)
    if force:
        # stale meetings from a previous, larger run would otherwise join the new configuration
        for old in (root / "meetings").glob("*.yaml"):
            if f"meetings/{old.name}" not in files:
                old.unlink()
        for name in ("schools.csv", "schools.xlsx"):  # a table left beside schools now in YAML
            if name not in files and (root / name).is_file():
                (root / name).unlink()
    written = []
    for rel, text in files.items():
        path = root / rel
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
