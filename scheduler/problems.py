"""Pydantic's errors as sentences a person reads: what is expected, with an example, in their language."""

from __future__ import annotations

from typing import Any

from .translation import N_, _

__all__ = ["error_sentence"]

# Pydantic error type -> what the field expects, with an example (ids are English, shown translated).
_EXPECTED = {
    "datetime_parsing": N_("expected a date and time, for example 2020-09-25 10:00"),
    "datetime_from_date_parsing": N_("expected a date and time, for example 2020-09-25 10:00"),
    "datetime_type": N_("expected a date and time, for example 2020-09-25 10:00"),
    "date_parsing": N_("expected a date, for example 2020-09-25"),
    "date_from_datetime_parsing": N_("expected a date, for example 2020-09-25"),
    "date_from_datetime_inexact": N_("expected a date without a time, for example 2020-09-25"),
    "date_type": N_("expected a date, for example 2020-09-25"),
    "time_parsing": N_("expected a time of day, for example 10:00"),
    "time_type": N_("expected a time of day, for example 10:00"),
    "int_parsing": N_("expected a whole number, for example 2"),
    "int_type": N_("expected a whole number, for example 2"),
    "int_from_float": N_("expected a whole number, for example 2"),
    "float_parsing": N_("expected a number, for example 1.5"),
    "float_type": N_("expected a number, for example 1.5"),
    "bool_parsing": N_("expected yes or no (true or false)"),
    "bool_type": N_("expected yes or no (true or false)"),
    "string_type": N_(
        "expected text, for example «Школа № 1» (quote it if it looks like a number or a date)"
    ),
    "list_type": N_("expected a list: one item per line, each starting with «- »"),
    "tuple_type": N_("expected a list: one item per line, each starting with «- »"),
    "set_type": N_("expected a list: one item per line, each starting with «- »"),
    "dict_type": N_("expected a group of fields (name: value), one per line, indented"),
    "model_type": N_("expected a group of fields (name: value), one per line, indented"),
    "model_attributes_type": N_("expected a group of fields (name: value), one per line, indented"),
    "url_parsing": N_("expected a web address, for example https://example.org/path"),
    "url_type": N_("expected a web address, for example https://example.org/path"),
    "url_scheme": N_("expected a web address starting with http:// or https://"),
    "missing": N_("required field is missing"),
    "extra_forbidden": N_("unknown field (check the spelling)"),
    "string_too_short": N_("must not be empty"),
    "too_short": N_("must not be empty"),
}


def error_sentence(err: Any) -> str:
    """One pydantic error as a sentence: the expectation for type errors, else the model's own words."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "string_pattern_mismatch":  # the model has two patterns: ids and months
        month = str(ctx.get("pattern", "")).startswith("^\\d{4}-")
        text = (
            _("expected a month, for example 2021-02")
            if month
            else _("expected an id: small Latin letters, digits, «-» and «_», for example school-2")
        )
        return text + _(" (given: {value})").format(value=repr(err.get("input")))
    if kind in _EXPECTED:
        text = _(_EXPECTED[kind])
        given = err.get("input")
        if (
            kind not in ("missing", "extra_forbidden")
            and isinstance(given, str | int | float)
            and given != ""
        ):
            text += _(" (given: {value})").format(value=repr(given) if isinstance(given, str) else given)
        return text
    if kind in ("literal_error", "enum"):
        return _("expected one of: {choices}").format(choices=ctx.get("expected", ""))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), "")
        words = {
            "greater_than": N_("expected a value greater than {bound}"),
            "greater_than_equal": N_("expected a value of at least {bound}"),
            "less_than": N_("expected a value less than {bound}"),
            "less_than_equal": N_("expected a value of at most {bound}"),
        }
        return _(words[kind]).format(bound=bound)
    message = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return _(message)


# The model's one sentence that is not raised (a discriminator's message, scheduler/model.py): marked here
# so that the catalog carries it; error_sentence translates it like the raised ones.
MODEL_MESSAGES = (
    N_(
        "give one of: date; start and end; month (YYYY-MM, optionally end_month); "
        "or a recurrence (freq or every, with start)"
    ),
)
