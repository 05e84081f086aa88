"""`rsvp fetch`: read the organiser's mailbox over IMAP and record the answers calendar clients sent."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import CyclogramError
from ..model import Project
from ..store import StateStore
from .replies import HANDLED, LEFT, NOT_A_REPLY, Matcher

__all__ = ["FetchReport", "ImapError", "ImapSettings", "fetch_answers", "imap_settings"]

log = logging.getLogger("cyclogram.rsvp")

_SECURITY = ("none", "starttls", "tls")
_BATCH = 25
_MAX_BYTES = 10 * 1024 * 1024  # a reply is a few kilobytes; larger mail is somebody's attachments


class ImapError(CyclogramError):
    """The mailbox could not be read: settings, connection, login or folder."""


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)  # never printed or logged
    folder: str = "INBOX"
    done_folder: str | None = None
    interval: int = 300
    ca_file: str | None = None  # a CA bundle to trust besides the system's (a school's own server)

    def ssl_context(self) -> ssl.SSLContext:
        """Certificates checked, always: against the system's CAs, or the bundle given."""
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ImapError(f"CYCLOGRAM_IMAP_CA_FILE {self.ca_file!r} cannot be used: {exc}") from None

    def describe(self) -> str:
        return f"{self.username}@{self.host}:{self.port} ({self.security}) folder {self.folder}"


def imap_settings(environ: Mapping[str, str] | None = None) -> ImapSettings | None:
    """IMAP settings from the environment (CYCLOGRAM_IMAP_HOST and the rest); None when no host is set (answers come by link only)."""
    env = os.environ if environ is None else environ
    host = env.get("CYCLOGRAM_IMAP_HOST", "").strip()
    if not host:
        return None
    security = env.get("CYCLOGRAM_IMAP_SECURITY", "tls").strip().lower() or "tls"
    if security not in _SECURITY:
        raise ImapError(f"CYCLOGRAM_IMAP_SECURITY must be one of {', '.join(_SECURITY)}, not {security!r}")
    port_text = env.get("CYCLOGRAM_IMAP_PORT", "").strip()
    try:
        port = int(port_text) if port_text else (993 if security == "tls" else 143)
    except ValueError:
        raise ImapError(f"CYCLOGRAM_IMAP_PORT must be a port number, not {port_text!r}") from None
    if not 0 < port < 65536:
        raise ImapError(f"CYCLOGRAM_IMAP_PORT must be between 1 and 65535, not {port}")
    interval_text = env.get("CYCLOGRAM_IMAP_INTERVAL", "").strip()
    try:
        interval = int(interval_text) if interval_text else 300
    except ValueError:
        raise ImapError(f"CYCLOGRAM_IMAP_INTERVAL must be whole seconds, not {interval_text!r}") from None
    if interval <= 0:
        raise ImapError(f"CYCLOGRAM_IMAP_INTERVAL must be positive, not {interval}")
    username = env.get("CYCLOGRAM_IMAP_USERNAME", "").strip()
    password = env.get("CYCLOGRAM_IMAP_PASSWORD", "")
    if not username or not password:
        raise ImapError(
            "CYCLOGRAM_IMAP_HOST is set: set CYCLOGRAM_IMAP_USERNAME and CYCLOGRAM_IMAP_PASSWORD too"
        )
    for name in ("CYCLOGRAM_IMAP_FOLDER", "CYCLOGRAM_IMAP_DONE_FOLDER"):
        if any(ord(c) < 32 for c in env.get(name, "")):
            raise ImapError(f"{name} holds a control character")
    folder = env.get("CYCLOGRAM_IMAP_FOLDER", "").strip() or "INBOX"
    done = env.get("CYCLOGRAM_IMAP_DONE_FOLDER", "").strip() or None
    if done is not None and done == folder:
        raise ImapError("CYCLOGRAM_IMAP_DONE_FOLDER must differ from the folder read (CYCLOGRAM_IMAP_FOLDER)")
    ca_file = env.get("CYCLOGRAM_IMAP_CA_FILE", "").strip() or None
    return ImapSettings(host, port, security, username, password, folder, done, interval, ca_file)


@dataclass
class FetchReport:
    """What one fetch did."""

    read: int = 0  # messages looked at this time
    counts: dict[str, int] = field(default_factory=dict)  # outcome -> messages
    moved: int = 0
    left: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (uid, outcome, lines)
    recorded: list[str] = field(default_factory=list)  # lines describing recorded answers

    def add(self, verdict: str) -> None:
        self.counts[verdict] = self.counts.get(verdict, 0) + 1

    def summary(self) -> str:
        parts = [f"{n} {v}" for v, n in sorted(self.counts.items())]
        text = f"read {self.read} message(s)" + (f": {', '.join(parts)}" if parts else "")
        return text + (f"; moved {self.moved} to the done folder" if self.moved else "")


def _connect(settings: ImapSettings, context: ssl.SSLContext | None) -> Any:
    from imapclient import IMAPClient
    from imapclient.exceptions import IMAPClientError, LoginError

    where = f"{settings.host}:{settings.port}"
    if context is None and settings.security != "none":
        context = settings.ssl_context()
    try:
        if settings.security == "tls":
            client = IMAPClient(settings.host, settings.port, ssl=True, ssl_context=context, timeout=60)
        else:
            client = IMAPClient(settings.host, settings.port, ssl=False, timeout=60)
            if settings.security == "starttls":
                client.starttls(context)
    except (TimeoutError, OSError, IMAPClientError, ssl.SSLError) as exc:
        raise ImapError(f"cannot connect to the IMAP server {where}: {exc}") from None
    try:
        client.login(settings.username, settings.password)
    except LoginError:
        _quietly_close(client)
        raise ImapError(
            f"the IMAP server {where} refused the login of {settings.username!r} "
            "(check CYCLOGRAM_IMAP_USERNAME / CYCLOGRAM_IMAP_PASSWORD; Gmail and Yandex want an app password)"
        ) from None
    except (OSError, IMAPClientError) as exc:
        _quietly_close(client)
        raise ImapError(f"IMAP login at {where} failed: {exc}") from None
    return client


def _quietly_close(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # the connection is going away anyway: drop it without a word
        with contextlib.suppress(Exception):
            client.shutdown()


def _server_name(client: Any, folder: str) -> str:
    """A folder path written with / in the server's own hierarchy delimiter (Dovecot often uses a dot)."""
    listed = client.list_folders("", "")
    delimiter = listed[0][1] if listed else None
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode("ascii", "replace")
    return folder.replace("/", delimiter) if delimiter and delimiter != "/" else folder


def _move(client: Any, uids: list[int], target: str) -> None:
    if not uids:
        return
    if client.has_capability("MOVE"):
        client.move(uids, target)
        return
    client.copy(uids, target)
    client.delete_messages(uids)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    # Without UIDPLUS an EXPUNGE would also remove what the organiser deleted; the \\Deleted flag stays.


def fetch_answers(
    project: Project,
    store: StateStore,
    now: datetime,
    settings: ImapSettings,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchReport:
    """Read the folder, record every REPLY that checks out, move the handled mail to the done folder.

    Messages already handled (by UIDVALIDITY and UID) are not read again; ones left in place are
    looked at again each time, since a meeting or a person added to the configuration may match them.
    """
    from imapclient.exceptions import IMAPClientError

    client = _connect(settings, ssl_context)
    report = FetchReport()
    try:
        try:
            selected = client.select_folder(settings.folder)
        except IMAPClientError as exc:
            raise ImapError(f"cannot open the IMAP folder {settings.folder!r}: {exc}") from None
        uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        done = _server_name(client, settings.done_folder) if settings.done_folder else None
        if done and not client.folder_exists(done):
            client.create_folder(done)
            log.info("action=imap-folder-created folder=%r", done)
        seen = store.imap_seen(settings.folder, uidvalidity)
        todo = [int(u) for u in client.search("ALL") if seen.get(int(u)) in (None, *LEFT)]
        matcher = Matcher(project, store, now)
        handled: list[int] = []
        for start in range(0, len(todo), _BATCH):
            batch = todo[start : start + _BATCH]
            sizes = client.fetch(batch, ["RFC822.SIZE"])
            small = [u for u in batch if int(sizes.get(u, {}).get(b"RFC822.SIZE", 0)) <= _MAX_BYTES]
            for uid in sorted(set(batch) - set(small)):
                store.mark_imap_seen(settings.folder, uidvalidity, uid, NOT_A_REPLY, "too large", now)
                report.add(NOT_A_REPLY)
            bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            for uid in small:
                raw = bodies.get(uid, {}).get(b"BODY[]")
                if raw is None:
                    continue
                report.read += 1
                source = f"{settings.folder} {uidvalidity}/{uid}"
                outcome = matcher.apply(bytes(raw), source)
                report.add(outcome.verdict)
                store.mark_imap_seen(
                    settings.folder, uidvalidity, uid, outcome.verdict, "\n".join(outcome.lines)[:2000], now
                )
                if outcome.verdict in HANDLED:
                    handled.append(uid)
                    report.recorded.extend(f"UID {uid}: {line}" for line in outcome.lines)
                elif outcome.verdict in LEFT:
                    report.left.append((uid, outcome.verdict, outcome.lines))
                    if seen.get(uid) != outcome.verdict:
                        for line in outcome.lines:
                            log.warning(
                                "action=reply-left uid=%d outcome=%s detail=%r", uid, outcome.verdict, line
                            )
        if done and handled:
            _move(client, handled, done)
            report.moved = len(handled)
    except IMAPClientError as exc:
        raise ImapError(f"IMAP error while reading {settings.folder!r} at {settings.host}: {exc}") from None
    except (TimeoutError, OSError) as exc:
        raise ImapError(f"the connection to {settings.host}:{settings.port} failed: {exc}") from None
    finally:
        _quietly_close(client)
    return report
