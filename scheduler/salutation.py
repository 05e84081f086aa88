"""How a letter greets its reader: «Уважаемая Анна Петровна!», "Dear Ms Smith,", from a name or its parts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["SUBJECT_TITLE_LIMIT", "Gender", "NameParts", "gender_of", "greeting", "parse_name", "shorten"]

# A mail list shows about 60 characters of a subject; the date and the kind take the rest.
SUBJECT_TITLE_LIMIT = 48

Gender = Literal["f", "m"]

# Patronymics: Петрович / Петровна / Ильинична / Кузьминична, and the Turkic «Рашид оглы» / «Рашид кызы».
_MALE_PATRONYMIC = re.compile(r"(вич|vich|vitch|ich)$", re.IGNORECASE)
_FEMALE_PATRONYMIC = re.compile(r"(вна|ична|чна|vna|ichna|chna)$", re.IGNORECASE)
_TURKIC: dict[str, Gender] = {
    "оглы": "m",
    "оглу": "m",
    "ogly": "m",
    "кызы": "f",
    "гызы": "f",
    "kyzy": "f",
    "qizi": "f",
}

# Russian first names end in -а/-я mostly for women; these are the men's exceptions and the women's
# names that end otherwise. A name not recognised either way leaves the gender unknown (a neutral greeting).
_MALE_NAMES_IN_A = {
    "никита", "илья", "фома", "кузьма", "лука", "савва", "данила", "гаврила", "добрыня", "фока",
    "саша", "женя", "миша", "ваня", "петя", "дима", "лёша", "леша", "коля", "сережа", "серёжа", "паша",
    "nikita", "ilya", "ilia", "foma", "kuzma", "luka", "savva", "danila",
}  # fmt: skip
_FEMALE_NAMES_OTHER = {
    "любовь", "нинель", "адель", "юдифь", "эсфирь", "руфь", "айгуль", "гузель", "асель", "жанель",
    "рахиль", "ассоль", "мираль", "шамсинур",
}  # fmt: skip
_MALE_LATIN = {
    "john", "james", "michael", "david", "robert", "william", "richard", "thomas", "peter", "paul",
    "mark", "george", "andrew", "sergey", "sergei", "ivan", "alexander", "alexey", "dmitry", "mikhail",
    "nikolai", "vladimir", "pavel", "oleg", "igor", "andrei", "andrey", "boris", "yuri",
}  # fmt: skip
_FEMALE_LATIN = {
    "mary", "anna", "anne", "ann", "elizabeth", "jane", "susan", "sarah", "emma", "olga", "maria",
    "elena", "irina", "natalia", "natalya", "tatiana", "tatyana", "svetlana", "ekaterina", "julia",
    "yulia", "marina", "galina", "lyudmila", "valentina", "alice", "kate", "helen", "linda",
}  # fmt: skip

# Surnames by their Russian endings, to tell «Иванова Анна» (surname first) from «Анна Иванова».
_SURNAME = re.compile(
    r"(ов|ова|ев|ева|ёв|ёва|ин|ина|ын|ына|ский|ская|цкий|цкая|ской|ых|их|енко|ук|юк|ко|dze|швили)$",
    re.IGNORECASE,
)
# First names that end like surnames: «Ирина Петрова» and «Петрова Ирина» are both read right.
_FIRST_LIKE_SURNAME = {
    "ирина", "марина", "полина", "алина", "кристина", "галина", "екатерина", "нина", "карина", "арина",
    "валентина", "ангелина", "регина", "дина", "зарина", "сабина", "эвелина", "марьина", "валентин",
    "константин", "вениамин", "антонин", "мартин", "ростислав",
}  # fmt: skip
_INITIAL = re.compile(r"^(?:\w\.\s*)+$")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)

_RU_DEAR = {"f": "Уважаемая", "m": "Уважаемый"}
_EN_TITLE = {"f": "Ms", "m": "Mr"}


@dataclass(frozen=True)
class NameParts:
    """A person's name as a letter uses it; `initials` when only initials are known («Иванова А. П.»)."""

    first: str | None = None
    patronymic: str | None = None
    last: str | None = None
    initials: str | None = None
    whole: str = ""


def _is_surname(word: str) -> bool:
    return bool(_CYRILLIC.search(word) and _SURNAME.search(word)) and word.lower() not in _FIRST_LIKE_SURNAME


def _is_patronymic(word: str) -> bool:
    return bool(_MALE_PATRONYMIC.search(word) or _FEMALE_PATRONYMIC.search(word))


def _spaced_initials(text: str) -> str:
    return " ".join(f"{c}." for c in re.findall(r"(\w)\.", text))


def parse_name(whole: str) -> NameParts:
    """Read «Фамилия Имя Отчество», «Имя Отчество Фамилия», «Иванова А.П.», "Anna Smith" into parts."""
    text = " ".join(whole.split())
    words = text.split(" ") if text else []
    if not words:
        return NameParts(whole=text)
    # Initials anywhere: «Иванова А.П.», «Иванова А. П.», «А.П. Иванова».
    initials = [w for w in words if _INITIAL.match(w)]
    if initials:
        rest = [w for w in words if not _INITIAL.match(w)]
        return NameParts(
            last=" ".join(rest) or None, initials=_spaced_initials(" ".join(initials)), whole=text
        )
    # «Мамедов Эльдар Рашид оглы»: the Turkic patronymic is two words.
    if len(words) >= 3 and words[-1].lower() in _TURKIC:
        patronymic = f"{words[-2]} {words[-1]}"
        head = words[:-2]
        if len(head) >= 2:
            return NameParts(first=head[1], patronymic=patronymic, last=head[0], whole=text)
        return NameParts(first=head[0] if head else None, patronymic=patronymic, whole=text)
    if len(words) == 3:
        if _is_patronymic(words[2]):
            return NameParts(first=words[1], patronymic=words[2], last=words[0], whole=text)
        if _is_patronymic(words[1]):
            return NameParts(first=words[0], patronymic=words[1], last=words[2], whole=text)
        return NameParts(first=words[0], last=" ".join(words[1:]), whole=text)
    if len(words) == 2:
        a, b = words
        if _is_patronymic(b):
            return NameParts(first=a, patronymic=b, whole=text)
        if _is_surname(a) and not _is_surname(b):
            return NameParts(first=b, last=a, whole=text)  # «Иванова Анна»: the official order
        return NameParts(first=a, last=b, whole=text)
    if len(words) > 3:
        return NameParts(whole=text)  # no order to read: the name as written
    if len(words) == 1:
        if _is_surname(words[0]):
            return NameParts(last=words[0], whole=text)
        return NameParts(first=words[0], whole=text)
    return NameParts(first=words[0], last=words[-1], whole=text)


def gender_of(parts: NameParts) -> Gender | None:
    """From the patronymic's ending, else from the first name; None when neither tells."""
    if parts.patronymic:
        tail = parts.patronymic.split(" ")[-1].lower()
        if tail in _TURKIC:
            return _TURKIC[tail]
        if _FEMALE_PATRONYMIC.search(tail):
            return "f"
        if _MALE_PATRONYMIC.search(tail):
            return "m"
    if parts.first:
        first = parts.first.split("-")[0].lower()
        if first in _MALE_NAMES_IN_A or first in _MALE_LATIN:
            return "m"
        if first in _FEMALE_NAMES_OTHER or first in _FEMALE_LATIN:
            return "f"
        if _CYRILLIC.search(first):
            return "f" if first[-1] in "ая" else "m" if first[-1] in "бвгджзйклмнпрстфхцчшщ" else None
    return None


def greeting(
    name: str,
    language: str,
    *,
    first_name: str | None = None,
    patronymic: str | None = None,
    last_name: str | None = None,
    gender: Gender | None = None,
    title: str | None = None,
    salutation: str | None = None,
) -> str:
    """The greeting line of a letter, its punctuation included.

    Explicit parts (from the configuration) win over what is read from the whole name; `salutation` is
    written as given. Russian: «Уважаемая Анна Петровна!» or, with the gender unknown, «Здравствуйте,
    Анна Петровна!». English: "Dear Ms Smith," when a title or the gender is known, else "Dear Anna Smith,".
    """
    if salutation:
        return salutation
    parsed = parse_name(name)
    parts = NameParts(
        first=first_name or parsed.first,
        patronymic=patronymic or parsed.patronymic,
        last=last_name or parsed.last,
        initials=None if first_name else parsed.initials,
        whole=parsed.whole,
    )
    sex = gender or gender_of(parts)
    if language == "en":
        return _english(parts, sex, title)
    return _russian(parts, sex)


def _russian(parts: NameParts, sex: Gender | None) -> str:
    if parts.initials:
        # «Иванова А. П.»: no first name to address; the initials go before the surname, as in a letter.
        addressed = " ".join(x for x in (parts.initials, parts.last) if x)
    elif parts.first and parts.patronymic:
        addressed = f"{parts.first} {parts.patronymic}"
    else:
        addressed = " ".join(x for x in (parts.first, parts.last) if x) or parts.whole
    if sex is not None and not parts.initials:
        return f"{_RU_DEAR[sex]} {addressed}!"
    return f"Здравствуйте, {addressed}!"


def _english(parts: NameParts, sex: Gender | None, title: str | None) -> str:
    surname = parts.last or (parts.first if title and not parts.patronymic else None)
    honorific = title or (_EN_TITLE[sex] if sex else None)
    if honorific and surname:
        return f"Dear {honorific} {surname},"
    if parts.initials:
        return f"Dear {' '.join(x for x in (parts.initials, parts.last) if x)},"
    full = " ".join(x for x in (parts.first, parts.last) if x) or parts.whole
    return f"Dear {full},"


def shorten(title: str, limit: int = SUBJECT_TITLE_LIMIT) -> str:
    """A title cut at a word boundary to fit a mail list's subject column, marked with an ellipsis."""
    text = title  # whitespace kept as written: a line break must still reach the header check
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(' ,;:.–—-«"(') + "…"
