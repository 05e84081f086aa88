"""The bytes of a MIME message, written directly: headers encoded exactly, bodies in base64, CRLF."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from urllib.parse import quote

__all__ = ["Part", "address", "attachment", "encode_words", "header", "multipart", "part"]

CRLF = b"\r\n"
_WORD_BYTES = 45  # UTF-8 bytes per encoded-word: 60 base64 characters, under RFC 2047's limit of 75
_LINE = 76


def encode_words(text: str) -> str:
    """RFC 2047 encoded-words for a non-ASCII header value, folded between words.

    Every space travels inside an encoded-word, since whitespace *between* encoded-words is ignored by
    decoders. (CPython 3.11's own folder puts a space there at some folds, so a long Russian subject
    reached readers as "проекта«Развитие"; that is why cyclogram writes its headers itself.)
    """
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if chunk and len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    if chunk:
        words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _fold_ascii(text: str, room: int) -> str:
    """Fold a plain ASCII value at spaces so lines stay near 78 characters (RFC 5322 2.2.3)."""
    if len(text) <= room:
        return text
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, _LINE
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def header(name: str, value: str) -> bytes:
    """One unstructured header (Subject, List-Id phrase...), encoded only if it must be."""
    text = _fold_ascii(value, _LINE - len(name) - 2) if value.isascii() else encode_words(value)
    return f"{name}: {text}".encode("ascii") + CRLF


def address(display_name: str, addr_spec: str) -> str:
    """`Name <addr>`: a non-ASCII name as one encoded-word, an ASCII one quoted where RFC 5322 needs it.

    One word even past RFC 2047's 75 characters: decoders accept that, while some (Python's own) put a
    space between the words of a name split in two.
    """
    if display_name.isascii():
        return str(Address(display_name=display_name, addr_spec=addr_spec))
    word = base64.b64encode(display_name.encode("utf-8")).decode("ascii")
    return f"=?utf-8?b?{word}?= <{addr_spec}>"


@dataclass(frozen=True)
class Part:
    """A finished MIME entity: its headers and body, as bytes."""

    data: bytes


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def part(content_type: str, body: bytes, *, disposition: str | None = None) -> Part:
    """A leaf part in base64: safe for any UTF-8 text and keeps CRLF inside calendar data exactly."""
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n"
    if disposition:
        head += f"Content-Disposition: {disposition}\r\n"
    return Part(head.encode("ascii") + CRLF + _b64(body))


def multipart(subtype: str, parts: Sequence[Part], seed: str) -> Part:
    """A multipart entity; the boundary derives from `seed`, so the same message gives the same bytes."""
    boundary = "=_" + hashlib.sha256(f"{seed}/{subtype}".encode()).hexdigest()[:32]
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")]
    for p in parts:
        out += [f"--{boundary}\r\n".encode("ascii"), p.data, CRLF]
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return Part(b"".join(out))


def _rfc2231(name: str, value: str) -> str:
    """`name*=UTF-8''...` (RFC 2231), split into `name*0*`, `name*1*`... on lines of their own when long.

    Sections end on character boundaries: the RFC joins them before decoding, but some readers decode
    each section alone.
    """
    pieces, chunk = [], ""
    for char in value:
        encoded = quote(char, safe="!#$&+-.^_`|~")
        if chunk and len(chunk) + len(encoded) > 60:
            pieces.append(chunk)
            chunk = ""
        chunk += encoded
    pieces.append(chunk)
    if len(pieces) == 1:
        return f"{name}*=UTF-8''{pieces[0]}"
    parts = [f"{name}*0*=UTF-8''{pieces[0]}"] + [f"{name}*{i}*={p}" for i, p in enumerate(pieces[1:], 1)]
    return ";\r\n ".join(parts)


def attachment(content_type: str, filename: str, body: bytes) -> Part:
    """A file attached under its own name, in both forms mail readers look for.

    Content-Disposition carries RFC 2231's `filename*` (Gmail, Apple Mail, Thunderbird, current Outlook);
    Content-Type carries `name=` as an RFC 2047 encoded-word, which older Outlook and webmails show.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise ValueError(f"unsafe attachment name {filename!r}")
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        shown = f'"{filename}"'
    else:
        shown = '"=?utf-8?b?' + base64.b64encode(filename.encode("utf-8")).decode("ascii") + '?="'
    head = (
        f"Content-Type: {content_type};\r\n name={shown}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment;\r\n {_rfc2231('filename', filename)}\r\n"
    )
    return Part(head.encode("ascii") + CRLF + _b64(body))
