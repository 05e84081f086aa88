"""Latin ids from Russian names: a fixed transliteration, so the same name always gives the same id."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

__all__ = ["make_id", "transliterate"]

# The Russian passport rule (ICAO Doc 9303, used since 2014): plain ASCII, one spelling per letter.
_TABLE = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ъ": "ie", "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia",
    # Ukrainian, Belarusian and Kazakh letters that turn up in school names of the region.
    "і": "i", "ї": "i", "є": "ie", "ґ": "g", "ў": "u", "ә": "a", "ғ": "g", "қ": "k", "ң": "n",
    "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
}  # fmt: skip
_MAX = 63  # model.ID_PATTERN allows 63 characters


def transliterate(text: str) -> str:
    """Lower-case ASCII for `text`: Cyrillic by the table, accented Latin without its accents."""
    out = []
    for char in text.lower():
        if char in _TABLE:
            out.append(_TABLE[char])
            continue
        if char == "№":  # "Школа № 5" is school-5, not school-no-5
            out.append(" ")
            continue
        decomposed = unicodedata.normalize("NFKD", char)
        out.append("".join(c for c in decomposed if c.isascii()).lower())
    return "".join(out)


def make_id(name: str, taken: Container[str] = (), fallback: str = "school") -> str:
    """An id matching model.ID_PATTERN from a name; `-2`, `-3`... when the plain one is taken."""
    words = re.findall(r"[a-z0-9]+", transliterate(name))
    base = ""
    for word in words:
        candidate = f"{base}-{word}" if base else word
        if len(candidate) > _MAX - 4:  # room for a -NNN suffix
            break
        base = candidate
    if not base:
        base = (words[0][: _MAX - 4] if words else "") or fallback
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
