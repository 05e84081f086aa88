"""Private feed URLs: HMAC tokens from one secret, so rotating the secret revokes every URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING

from .model import Project

if TYPE_CHECKING:
    from .store import StateStore

__all__ = [
    "PRIVATE_KINDS",
    "SECRET_ENV",
    "document_token",
    "feed_secret",
    "feed_token",
    "private_feed_path",
    "private_feed_url",
    "public_feed_url",
    "rotate_secret",
    "verify_token",
    "webcal_url",
]

SECRET_ENV = "CYCLOGRAM_FEED_SECRET"
SECRET_NAME = "feed"
PRIVATE_KINDS = ("school", "team")
_TOKEN_BYTES = 24  # 192 bits of the HMAC-SHA256: unguessable, and short enough for a URL


def feed_secret(store: StateStore) -> str:
    """$CYCLOGRAM_FEED_SECRET if set, else a random secret generated once and kept in the state store."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        return from_env
    return store.secret(SECRET_NAME, lambda: secrets.token_urlsafe(32))


def rotate_secret(store: StateStore) -> str:
    """Replace the stored secret: every private URL given out so far stops working."""
    value = secrets.token_urlsafe(32)
    store.set_secret(SECRET_NAME, value)
    return value


def feed_token(secret: str, kind: str, ident: str) -> str:
    """The URL-safe token of one private feed."""
    if kind not in PRIVATE_KINDS:
        raise ValueError(f"no private feeds of kind {kind!r}")
    mac = hmac.new(secret.encode("utf-8"), f"feed:{kind}:{ident}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_TOKEN_BYTES]).decode("ascii").rstrip("=")


def document_token(secret: str, meeting_id: str) -> str:
    """The token in the URLs of a non-public meeting's documents: one per meeting, from the same secret."""
    mac = hmac.new(
        secret.encode("utf-8"), f"documents:meeting:{meeting_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac[:_TOKEN_BYTES]).decode("ascii").rstrip("=")


def verify_token(secret: str, kind: str, ident: str, token: str) -> bool:
    """Constant-time check, so response timing tells nothing about how much of a token was right."""
    if kind not in PRIVATE_KINDS:
        return False
    return hmac.compare_digest(feed_token(secret, kind, ident).encode(), token.encode("utf-8", "replace"))


def _base(project: Project) -> str:
    return str(project.settings.base_url).rstrip("/")


def private_feed_path(secret: str, kind: str, ident: str) -> str:
    """The path under the base URL: /schools/<id>/<token>.ics."""
    return f"/{kind}s/{ident}/{feed_token(secret, kind, ident)}.ics"


def private_feed_url(project: Project, secret: str, kind: str, ident: str) -> str:
    """The https URL of a school's or team's feed, as invitations and `feeds urls` give it."""
    return _base(project) + private_feed_path(secret, kind, ident)


def public_feed_url(project: Project, relative: str) -> str:
    """The URL of a public feed such as project.ics or meetings/<id>.ics."""
    return f"{_base(project)}/{relative.lstrip('/')}"


def webcal_url(url: str) -> str:
    """The same feed as a webcal:// link, which opens the subscribe dialog of most calendar apps."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return "webcal://" + url[len(scheme) :]
    return url
