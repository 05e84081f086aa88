"""Meeting documents: which go with which mail, attached or linked, their URLs, types and checks."""

from __future__ import annotations

import contextlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import yaml

from .atomic import write_bytes
from .errors import CyclogramError, Problem
from .model import Document, Meeting, Project
from .tokens import document_token

if TYPE_CHECKING:
    from .config import LoadedConfig

__all__ = [
    "DEFAULT_KINDS",
    "DocumentError",
    "Planned",
    "check_documents",
    "content_type",
    "document_notes",
    "document_path",
    "document_url",
    "documents_of",
    "is_public",
    "plan_documents",
    "resolve",
    "sent_size",
    "write_documents",
]

DEFAULT_KINDS = {"meeting": ("invitation", "agenda"), "minutes": ("summary",)}
MB = 1024 * 1024
OUTBOX_NOTE = 1024**3  # validate notes a mailing whose attachments would fill the outbox past this

# mimetypes reads the system's tables, which differ between machines and lack the office formats on
# some; the types the organisers actually send are fixed here.
# The folder a non-public meeting's documents are copied into: named by its token (see tokens.py).
_TOKEN_DIR = re.compile(r"[A-Za-z0-9_-]{32}")

_TYPES = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".rtf": "application/rtf",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


def sent_size(size: int) -> int:
    """Bytes a file takes in a message: base64 (4 for 3), in lines of 76 with CRLF, and its part headers."""
    encoded = 4 * -(-size // 3)
    return encoded + 2 * -(-encoded // 76) + 512


class DocumentError(CyclogramError):
    """A meeting's document cannot be read or lies outside the configuration folder."""


def content_type(name: str) -> str:
    """The MIME type of a file by its name: the table above, then the system's, then bytes."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def is_public(meeting: Meeting) -> bool:
    """A meeting for everyone has public documents; any other's are behind a token."""
    return meeting.audience.all


def documents_of(meeting: Meeting, kind: str | None = None) -> list[tuple[str, Document]]:
    """(where, document) of a meeting and of its minutes, those for `kind` only if given.

    `where` is "meeting" or "minutes". Minutes' documents count once the minutes are final.
    """
    out = [("meeting", d) for d in meeting.documents]
    if meeting.minutes is not None and meeting.minutes.final:
        out += [("minutes", d) for d in meeting.minutes.documents]
    if kind is None:
        return out
    return [(w, d) for w, d in out if kind in (d.kinds if d.kinds is not None else DEFAULT_KINDS[w])]


def resolve(directory: Path, document: Document) -> Path:
    """The file of a document, checked to be a regular file inside the configuration folder."""
    root = directory.resolve()
    path = root / document.file
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise DocumentError(
            f"{document.file}: no such file in the configuration folder {directory}"
        ) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise DocumentError(f"{document.file}: cannot be opened ({exc})") from None
    if not real.is_relative_to(root):
        raise DocumentError(f"{document.file}: leads out of the configuration folder (a link to {real})")
    if not real.is_file():
        raise DocumentError(f"{document.file}: not a regular file")
    return real


def document_path(secret: str | None, meeting: Meeting, document: Document) -> str:
    """The server path of a document: /documents/<meeting>[/<token>]/<file name>."""
    name = PurePosixPath(document.file).name
    if is_public(meeting):
        return f"/documents/{meeting.id}/{name}"
    if secret is None:
        raise ValueError("a private meeting's document path needs the secret")
    return f"/documents/{meeting.id}/{document_token(secret, meeting.id)}/{name}"


def document_url(project: Project, secret: str | None, meeting: Meeting, document: Document) -> str:
    """The URL the mail, the calendar item (ATTACH) and the index page give for a document."""
    base = str(project.settings.base_url).rstrip("/")
    return base + quote(document_path(secret, meeting, document), safe="/")


@dataclass(frozen=True)
class Planned:
    """One document of one mailing: attached (with its bytes) or linked."""

    document: Document
    name: str  # the file name the recipient sees
    content_type: str
    size: int
    url: str
    data: bytes | None  # None: linked, not attached

    @property
    def attached(self) -> bool:
        return self.data is not None

    @property
    def title(self) -> str:
        return self.document.title or self.name

    def context(self) -> dict[str, Any]:
        """What a mail template shows of it."""
        return {
            "title": self.title,
            "name": self.name,
            "url": self.url,
            "attached": self.attached,
            "size_kb": max(1, round(self.size / 1024)),
        }


def plan_documents(
    directory: Path,
    project: Project,
    meeting: Meeting,
    kind: str,
    secret: str | None,
    *,
    read: bool = True,
) -> list[Planned]:
    """The documents of one mailing, in order: attached while they fit in the limit, then linked.

    Without `read`, an attached document carries empty bytes (enough to say what would be attached).
    """
    limit = int(project.settings.documents.attach_limit_mb * MB)
    used = 0
    out = []
    for _, doc in documents_of(meeting, kind):
        path = resolve(directory, doc)
        size = path.stat().st_size
        name = PurePosixPath(doc.file).name
        data = None
        if doc.attach == "auto" and used + sent_size(size) <= limit:
            try:
                data = path.read_bytes() if read else b""
            except OSError as exc:
                raise DocumentError(f"{doc.file}: cannot be read ({exc.strerror})") from None
            used += sent_size(size)
        out.append(
            Planned(doc, name, content_type(name), size, document_url(project, secret, meeting, doc), data)
        )
    return out


def write_documents(directory: Path, project: Project, secret: str, out: Path) -> tuple[int, list[str]]:
    """Copy every document to OUT at its URL's path, for a static web server; unchanged files stay.

    Returns how many documents there are and the relative paths written. Copies under a token that is no
    longer current (after `feeds rotate-secret`, or a document removed) are deleted: a static server would
    otherwise keep serving revoked URLs.
    """
    total, written, current = 0, [], set()
    for meeting in project.meetings:
        for _, doc in documents_of(meeting):
            source = resolve(directory, doc)
            rel = document_path(secret, meeting, doc).lstrip("/")
            current.add(rel)
            target = out / rel
            total += 1
            data = source.read_bytes()
            if target.is_file() and target.read_bytes() == data:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(target, data)
            written.append(rel)
    _prune_revoked(out, current)
    return total, written


def _prune_revoked(out: Path, current: set[str]) -> None:
    """Delete document copies in token folders (documents/<meeting>/<token>/) that no URL names now."""
    for folder in sorted((out / "documents").glob("*/*/")):
        if not _TOKEN_DIR.fullmatch(folder.name):
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.relative_to(out).as_posix() not in current:
                path.unlink()
        with contextlib.suppress(OSError):  # still holds current documents
            folder.rmdir()


# --- validate ---------------------------------------------------------------------------------------------


def _document_lines(path: Path) -> dict[tuple[str, int], int]:
    """Line of each entry of `documents:` and `minutes.documents:` in a meeting file (1-based)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    out: dict[tuple[str, int], int] = {}

    def child(node: Any, key: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if getattr(k, "value", None) == key:
                    return v
        return None

    for where, node in (
        ("meeting", child(root, "documents")),
        ("minutes", child(child(root, "minutes"), "documents")),
    ):
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[(where, i)] = item.start_mark.line + 1
    return out


def check_documents(loaded: LoadedConfig) -> list[Problem]:
    """Every document exists inside the configuration folder; names are unique within a meeting."""
    problems: list[Problem] = []
    for meeting in loaded.project.meetings:
        file = loaded.meeting_files.get(meeting.id, loaded.directory / "meetings")
        lines: dict[tuple[str, int], int] | None = None
        names: dict[str, str] = {}
        groups = [("meeting", meeting.documents)]
        if meeting.minutes is not None:
            groups.append(("minutes", meeting.minutes.documents))
        for where, docs in groups:
            for i, doc in enumerate(docs):
                field = f"documents[{i}].file" if where == "meeting" else f"minutes.documents[{i}].file"
                if lines is None:
                    lines = _document_lines(file)
                line = lines.get((where, i))
                try:
                    resolve(loaded.directory, doc)
                except DocumentError as exc:
                    problems.append(Problem(file, line, field, str(exc)))
                name = PurePosixPath(doc.file).name
                if name in names:
                    problems.append(
                        Problem(
                            file,
                            line,
                            field,
                            f"another document of this meeting is also named {name!r} ({names[name]}): "
                            "its link would be the same; rename one",
                        )
                    )
                names.setdefault(name, doc.file)
    return problems


def document_notes(loaded: LoadedConfig) -> list[str]:
    """What validate tells but does not refuse: documents that will be linked because of the size limit."""
    project = loaded.project
    limit_mb = project.settings.documents.attach_limit_mb
    notes = []
    for meeting in project.meetings:
        kinds = sorted(
            {k for _, d in documents_of(meeting) for k in (d.kinds or ())}
            | {"invitation", "agenda", "summary"}
        )
        for kind in kinds:
            try:
                planned = plan_documents(loaded.directory, project, meeting, kind, "-", read=False)
            except DocumentError:
                continue  # reported by check_documents
            for p in planned:
                if not p.attached and p.document.attach == "auto":
                    notes.append(
                        f"{meeting.id}: {kind}: {p.document.file} ({p.size / MB:.1f} MB, "
                        f"{sent_size(p.size) / MB:.1f} MB as sent) goes as a link: the files attached to one "
                        f"message may not exceed {limit_mb:g} MB (documents.attach_limit_mb in project.yaml)"
                    )
            # Every copy is kept in the outbox until it is sent: attachments times recipients.
            attached = sum(p.size for p in planned if p.attached)
            # Nothing attached, nothing to count: the recipients of 100,000 schools are not made for it.
            total = attached and sum(sent_size(p.size) for p in planned if p.attached) * len(
                project.recipients(meeting.audience)
            )
            if total > OUTBOX_NOTE:
                notes.append(
                    f"{meeting.id}: {kind}: {attached / MB:.1f} MB attached to each of "
                    f"{len(project.recipients(meeting.audience))} messages: about {total / 1024**3:.1f} GB in "
                    "the outbox until sent; `attach: link` keeps such documents out of the messages"
                )
    return notes
