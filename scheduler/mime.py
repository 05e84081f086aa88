"""The bytes of a MIME message, written directly: headers encoded exactly, bodies in base64, CRLF."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from functools import lru_cache
from urllib.parse import quote

from .errors import CyclogramError

__all__ = [
    "HeaderValueError",
    "Part",
    "address",
    "attachment",
    "control_characters",
    "encode_words",
    "header",
    "multipart",
    "part",
    "refuse_controls",
]

CRLF = b"\r\n"
_LINE = 78  # RFC 5322 2.1.1: lines SHOULD stay within 78 characters (and MUST within 998)
_WORD = 75  # RFC 2047 2: an encoded-word is at most 75 characters
_PREFIX, _SUFFIX = "=?utf-8?b?", "?="


class HeaderValueError(CyclogramError, ValueError):
    """A value that cannot go into a header as it is (a control character or a line break)."""


# Exactly the characters of Unicode categories Cc (U+0000-U+001F, U+007F-U+009F), Zl and Zp: one search
# answers for the common case (none there) at C speed; test_mime checks it against unicodedata.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_characters(value: str) -> list[str]:
    """The characters a header must never carry raw: C0/C1 controls (NUL, CR, LF, TAB, U+0085...), DEL,
    and the Unicode line and paragraph separators (U+2028, U+2029)."""
    if _CONTROLS.search(value) is None:
        return []
    return sorted({c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")})


def refuse_controls(name: str, value: str) -> str:
    """`value` unchanged, or HeaderValueError naming the header and the characters found."""
    found = control_characters(value)
    if found:
        shown = ", ".join(f"U+{ord(c):04X}" for c in found)
        raise HeaderValueError(
            f"refusing to send: the {name} header would contain a control character ({shown}): {value!r}"
        )
    return value


def _word(chunk: bytes) -> str:
    return f"{_PREFIX}{base64.b64encode(chunk).decode('ascii')}{_SUFFIX}"


def _word_bytes(room: int) -> int:
    """How many UTF-8 bytes fit in one encoded-word of at most `room` characters (and at most 75)."""
    return max(3, (min(room, _WORD) - len(_PREFIX) - len(_SUFFIX)) // 4 * 3)


@lru_cache(maxsize=4096)  # a mailing's subject and sender are the same in every copy
def encode_words(text: str, first: int = _LINE - 1) -> str:
    """RFC 2047 encoded-words for a header value, at most 75 characters each, one per folded line.

    Words are cut between characters, never inside a UTF-8 sequence, and every space travels inside a
    word, since whitespace *between* encoded-words is ignored by decoders. (CPython 3.11's own folder
    puts a space there at some folds, so a long Russian subject reached readers as "проекта«Развитие";
    that is why cyclogram writes its headers itself.) `first` is the room left on the header's first line.
    """
    words: list[str] = []
    limit = _word_bytes(first)
    chunk = b""
    for char in text:
        encoded = char.encode("utf-8")
        if chunk and len(chunk) + len(encoded) > limit:
            words.append(_word(chunk))
            chunk = b""
            limit = _word_bytes(_LINE - 1)  # later lines start with one space
        chunk += encoded
    if chunk or not words:
        words.append(_word(chunk))
    return "\r\n ".join(words)


def _fold_ascii(text: str, room: int) -> str | None:
    """Fold a plain ASCII value at spaces so lines stay within 78 characters (RFC 5322 2.2.3); None if
    some word is too long for a line, for the caller to encode instead."""
    lines, line, limit = [], "", room
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > limit:
            lines.append(line)
            line, limit = word, _LINE - 1  # later lines start with one space
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if len(lines[0]) > room or any(len(one) > _LINE - 1 for one in lines[1:]):
        return None
    return "\r\n ".join(lines)


@lru_cache(maxsize=1024)  # Subject and List-Id repeat in every copy of a mailing
def header(name: str, value: str) -> bytes:
    """One unstructured header (Subject, List-Id phrase...), encoded only if it must be, folded within 78."""
    refuse_controls(name, value)
    room = _LINE - len(name) - 2
    text = None
    if value.isascii() and "=?" not in value:  # text that looks like an encoded-word is encoded itself
        text = _fold_ascii(value, room)
    if text is None:
        text = encode_words(value, room)
    return f"{name}: {text}".encode("ascii") + CRLF


@lru_cache(maxsize=1024)  # the sender's is the same in every message
def address(display_name: str, addr_spec: str, *, header_name: str = "To") -> str:
    """`Name <addr>` folded for the header `header_name`: an ASCII name quoted where RFC 5322 needs it and
    folded at its spaces, any other (or one with a word too long for a line) as encoded-words of at most
    75 characters each, one per line.

    Python before 3.14 (gh-128110) keeps the whitespace between the encoded-words of a display name, which
    RFC 2047 says to drop; mail clients drop it, so names decode exactly there and in `email.header`.
    """
    if not addr_spec.isascii():
        # RFC 6532: a UTF-8 addr-spec goes raw (the message travels with SMTPUTF8); the name as usual.
        plain = address(display_name, "x@x.invalid", header_name=header_name)
        return plain.removesuffix("<x@x.invalid>") + f"<{addr_spec}>"
    refuse_controls(header_name, display_name)
    refuse_controls(header_name, addr_spec)
    room = _LINE - len(header_name) - 2
    if not display_name:
        return f"<{addr_spec}>"
    if display_name.isascii() and "=?" not in display_name:
        plain = str(Address(display_name=display_name, addr_spec=addr_spec))
        folded = _fold_ascii(plain, room)  # at spaces, inside the quotes too (FWS is allowed there)
        if folded is not None:
            return folded
    words = encode_words(display_name, room)
    last = words.rsplit("\r\n ", 1)[-1]
    fits = len(last) + 2 + len(addr_spec) + 1 <= (_LINE - 1 if "\r\n" in words else room)
    return words + (" " if fits else "\r\n ") + f"<{addr_spec}>"


@dataclass(frozen=True)
class Part:
    """A finished MIME entity: its headers and body, as bytes."""

    data: bytes


def _b64(data: bytes) -> bytes:
    """Base64 in lines of 76 characters ending in CRLF: `base64.encodebytes`'s bytes with CRLF, made by one
    encoding of the whole body (encodebytes calls the encoder once per 57-byte line)."""
    if not data:
        return b""
    text = binascii.b2a_base64(data, newline=False)
    return CRLF.join([text[i : i + 76] for i in range(0, len(text), 76)]) + CRLF


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
    refuse_controls("Content-Disposition", filename)
    if filename.isascii() and '"' not in filename and "\\" not in filename and "=?" not in filename:
        shown = f'"{filename}"'
    else:
        # One word, however long: a quoted-string folded between encoded-words is where old readers
        # (the ones this form is for) go wrong; the line stays far under 998 (a file name is <= 255 bytes).
        shown = f'"{_word(filename.encode("utf-8"))}"'
    head = (
        f"Content-Type: {content_type};\r\n name={shown}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment;\r\n {_rfc2231('filename', filename)}\r\n"
    )
    return Part(head.encode("ascii") + CRLF + _b64(body))
