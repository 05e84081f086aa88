"""participants.yaml as the organiser wrote it: a ruamel.yaml round trip that keeps comments and style."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import ScalarString

__all__ = ["flow_map", "flow_seq", "like", "move_gap", "plain", "round_trip_yaml", "write_atomically"]


def round_trip_yaml(text: str) -> YAML:
    """A round-trip YAML that writes the list indentation the file already uses."""
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap the organiser's long lines
    found = re.search(r"^[ \t]*schools:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( *)-( +)\S", text, re.M)
    offset, gap = (len(found.group(1)), len(found.group(2))) if found else (2, 1)
    y.indent(mapping=2, sequence=offset + 1 + gap, offset=offset)
    return y


def _tail_comment(entry: Any) -> tuple[Any, Any] | None:
    """The comment token that ends an entry (its last key's, or that key's value's): (holder, key)."""
    while isinstance(entry, CommentedMap) and len(entry):
        key = list(entry)[-1]
        slot = entry.ca.items.get(key)
        if slot and len(slot) > 2 and slot[2] is not None:
            return entry, key
        entry = entry[key]
    return None


def move_gap(previous: Any, new: Any) -> None:
    """Blank lines and comments after the last school belong after the school appended below it."""
    found = _tail_comment(previous)
    if found is None:
        return
    holder, key = found
    token = holder.ca.items[key][2]
    first, newline, rest = token.value.partition("\n")
    if not rest:
        return
    token.value = first + newline
    last = list(new)[-1]
    new.yaml_add_eol_comment("# x", last)  # creates the slot, replaced just below
    slot = new.ca.items[last]
    slot[2].value = "\n" + rest


def plain(node: Any) -> Any:
    """A ruamel node as plain Python values, for the model to check."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, ScalarString):
        return str(node)
    return node


def like(old: Any, new: str) -> Any:
    """`new` in the quoting style of the value it replaces."""
    return type(old)(new) if isinstance(old, ScalarString) else new


def flow_map(**items: Any) -> CommentedMap:
    out = CommentedMap(items)
    out.fa.set_flow_style()
    return out


def flow_seq(items: list[str]) -> CommentedSeq:
    out = CommentedSeq(items)
    out.fa.set_flow_style()
    return out


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
