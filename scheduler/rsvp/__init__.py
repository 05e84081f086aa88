"""Answers to invitations: signed links, iTIP replies read over IMAP, and the roster."""

from .attendance import Roster, RosterEntry, roster
from .links import ANSWERS, answer_token, answer_url, answer_urls, person_key, verify_answer_token

__all__ = [
    "ANSWERS",
    "Roster",
    "RosterEntry",
    "answer_token",
    "answer_url",
    "answer_urls",
    "person_key",
    "roster",
    "verify_answer_token",
]
