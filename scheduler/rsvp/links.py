"""Answer links: an HMAC token per (meeting, person) from the feed secret, so rotating it revokes them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..model import Project

__all__ = [
    "ANSWERS",
    "PARTSTAT_OF",
    "WORD_OF",
    "answer_path",
    "answer_token",
    "answer_url",
    "answer_urls",
    "person_key",
    "roster_path",
    "roster_token",
    "split_token",
    "verify_answer_token",
]

# The words in the URL and the iCalendar PARTSTAT each records.
ANSWERS = ("yes", "no", "maybe")
PARTSTAT_OF = {"yes": "ACCEPTED", "no": "DECLINED", "maybe": "TENTATIVE"}
WORD_OF = {v: k for k, v in PARTSTAT_OF.items()}

_KEY_CHARS = 11  # 64 bits of a plain hash: finds the person, proves nothing
_MAC_BYTES = 24  # 192 bits of HMAC-SHA256: the proof


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def person_key(email: str) -> str:
    """A short public handle of an address, so the server finds the person without trying every MAC."""
    return _b64(hashlib.sha256(f"person:{email.lower()}".encode()).digest()[:8])[:_KEY_CHARS]


def _mac(secret: str, meeting: str, email: str) -> str:
    message = f"rsvp:{meeting}:{email.lower()}".encode()
    return _b64(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:_MAC_BYTES])


def answer_token(secret: str, meeting: str, email: str) -> str:
    """The token of one person's links for one meeting: their public handle, then the MAC."""
    return person_key(email) + _mac(secret, meeting, email)


def split_token(token: str) -> tuple[str, str]:
    """(person key, MAC) of a token as it came in a URL."""
    return token[:_KEY_CHARS], token[_KEY_CHARS:]


def verify_answer_token(secret: str, meeting: str, email: str, token: str) -> bool:
    """Constant-time check, so response timing tells nothing about how much of a token was right."""
    expected = answer_token(secret, meeting, email).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def answer_path(secret: str, meeting: str, email: str, answer: str | None = None) -> str:
    """/rsvp/<meeting>/<token>[/<answer>]"""
    path = f"/rsvp/{meeting}/{answer_token(secret, meeting, email)}"
    return f"{path}/{answer}" if answer else path


def answer_url(project: Project, secret: str, meeting: str, email: str, answer: str | None = None) -> str:
    return str(project.settings.base_url).rstrip("/") + answer_path(secret, meeting, email, answer)


def roster_token(secret: str, meeting: str) -> str:
    """The token of the organiser's private roster page of one meeting."""
    message = f"roster:{meeting}".encode()
    return _b64(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:_MAC_BYTES])


def roster_path(secret: str, meeting: str) -> str:
    """/attendance/<meeting>/<token>: who comes, for the organiser (the link is the key: keep it private)."""
    return f"/attendance/{meeting}/{roster_token(secret, meeting)}"


def answer_urls(project: Project, secret: str, meeting: str, email: str) -> dict[str, str]:
    """The three links a mail carries, by answer word, and `page`: where the person sees what they said."""
    urls = {a: answer_url(project, secret, meeting, email, a) for a in ANSWERS}
    urls["page"] = answer_url(project, secret, meeting, email)
    return urls
