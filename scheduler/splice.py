"""Render a mailing's templates once per group of like recipients and splice in what is personal."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from markupsafe import escape

__all__ = ["PERSONAL", "Skeleton", "SkeletonCache", "split_personal"]

# A mailing to 100,000 heads renders the same letter 100,000 times with only a few strings changed: the
# greeting, the school's name and feed link, the answer links. Here the three templates are rendered once
# per *shape* (language, the reader's time zone, and the structure of the personal values: how many
# schools, which values are empty) with a marked stand-in for each personal string, and each message is
# then the rendered text with the person's strings put where the stand-ins came out, escaped exactly as
# the template escaped the stand-in.
#
# Templates are the organiser's to edit, so this is only done where it is provably the same as rendering
# for each person; anywhere else the caller renders per person (`Skeleton` is None):
#
# - statically, the templates involved (with everything they extend and include) must not capture
#   output (`{% set %}...{% endset %}`, `{% filter %}`, macros, call blocks, `super()` or `self.x()`
#   inside an expression), nor hand a personal value to a function call, an `in` test, a subscript (as
#   a key) or a filter or test outside a short list whose behaviour on a string is known;
# - at render time a stand-in refuses everything but being output whole and being tested for
#   emptiness (its `__bool__` answers for the real value: the shape holds it); reading its length,
#   characters or case, comparing, concatenating or formatting it raises, and the group is rendered
#   per person;
# - the rendered text must hold the stand-ins intact and nothing else of them (a stand-in carries a
#   random number that any transformation would leave behind, mangled, and that is checked for).
#
# The tests render hostile, Cyrillic and multi-school recipients both ways and compare the bytes.

# The context keys whose values differ from one recipient to the next (see messages.personal_context).
PERSONAL = ("recipient", "school", "schools", "feed_url", "rsvp")

# Filters and tests whose behaviour on a personal value is what it would be on the real one: they keep
# the value whole, look only at truthiness or a list's length, or touch the string (and so raise).
_FILTERS = frozenset(
    {"length", "count", "map", "join", "default", "d", "first", "last", "list", "e", "escape", "safe",
     "string"}
)  # fmt: skip
_TESTS = frozenset({"defined", "undefined", "none", "string", "mapping", "sequence", "iterable"})
# Expressions whose value is rendered output (it may hold stand-ins): only whole, straight to output.
_CAPTURING = (nodes.AssignBlock, nodes.FilterBlock, nodes.Macro, nodes.CallBlock, nodes.Import,
              nodes.FromImport)  # fmt: skip


class _Unsplicable(Exception):
    """A template did something with a personal value that a stand-in cannot answer for."""


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise _Unsplicable


class _Leaf(str):
    """A personal non-empty string in a group's rendering: its text is a unique marker; only output (the
    overlay's `finalize` turns it into the marker text) and truthiness are allowed."""

    def __getattribute__(self, name: str) -> Any:
        if name == "__class__":  # isinstance() reads it; nothing of the text
            return object.__getattribute__(self, name)
        raise _Unsplicable(name)

    def __bool__(self) -> bool:
        return True

    __hash__ = str.__hash__
    __str__ = __repr__ = __format__ = __len__ = __iter__ = __getitem__ = __contains__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse  # type: ignore[assignment]
    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = __reversed__ = _refuse  # type: ignore[assignment]
    __getnewargs__ = __reduce__ = __reduce_ex__ = __copy__ = __deepcopy__ = _refuse  # type: ignore[assignment]


class _EmptyLeaf(_Leaf):
    """A personal empty string: false, like the value it stands for."""

    def __bool__(self) -> bool:
        return False


_LEAVES = (_Leaf, _EmptyLeaf)


# --- the personal part of a context ------------------------------------------------------------------


def split_personal(personal: Mapping[str, Any], strings: list[str]) -> tuple[Any, ...] | None:
    """The shape of the personal values (structure and emptiness), appending their strings to `strings`
    in a fixed order; None if a value is of a kind the splice does not handle."""
    try:
        return tuple((k, _shape(v, strings)) for k, v in personal.items())
    except TypeError:
        return None


def _shape(value: Any, strings: list[str]) -> Any:
    if type(value) is str:
        strings.append(value)
        return bool(value)
    if value is None:
        return None
    if type(value) is dict:
        return ("d", tuple((k, _shape(v, strings)) for k, v in value.items()))
    if type(value) in (list, tuple):
        return ("l", tuple(_shape(v, strings) for v in value))
    raise TypeError(type(value).__name__)


def _stand_ins(shape: Any, marker: Callable[[bool], _Leaf]) -> Any:
    if shape is True or shape is False:
        return marker(shape)
    if shape is None:
        return None
    tag, items = shape
    if tag == "d":
        return {k: _stand_ins(v, marker) for k, v in items}
    return [_stand_ins(v, marker) for v in items]


# --- static check ------------------------------------------------------------------------------------


def _names(node: nodes.Node) -> set[str]:
    """The names an expression reads or binds, itself included (find_all looks only below a node)."""
    found = [node, *node.find_all((nodes.Name, nodes.NSRef))]
    return {n.name for n in found if isinstance(n, (nodes.Name, nodes.NSRef))}


def _graph(env: jinja2.Environment, names: tuple[str, ...]) -> list[nodes.Template] | None:
    """Every template `names` use (extended, included), parsed; None if one is named by an expression."""
    seen: dict[str, nodes.Template] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert env.loader is not None
        source = env.loader.get_source(env, name)[0]
        tree = env.parse(source, name)
        seen[name] = tree
        for node in tree.find_all((nodes.Extends, nodes.Include)):
            template = node.template
            if isinstance(template, nodes.Const) and isinstance(template.value, str):
                todo.append(template.value)
            elif isinstance(template, (nodes.List, nodes.Tuple)) and all(
                isinstance(i, nodes.Const) and isinstance(i.value, str) for i in template.items
            ):
                todo.extend(i.value for i in template.items)  # type: ignore[attr-defined]
            else:
                return None
    return list(seen.values())


def _tainted(trees: list[nodes.Template]) -> set[str]:
    """The personal names and every name bound (set, for, with) from an expression that uses one."""
    tainted = set(PERSONAL)
    while True:
        before = len(tainted)
        for tree in trees:
            for node in tree.find_all((nodes.Assign, nodes.For, nodes.With)):
                if isinstance(node, nodes.Assign) and _names(node.node) & tainted:
                    tainted |= _names(node.target)
                elif isinstance(node, nodes.For) and _names(node.iter) & tainted:
                    tainted |= _names(node.target) | {"loop"}
                elif isinstance(node, nodes.With):
                    for target, value in zip(node.targets, node.values, strict=False):
                        if _names(value) & tainted:
                            tainted |= _names(target)
        if len(tainted) == before:
            return tainted


def _safe(node: nodes.Node, parent: nodes.Node | None, tainted: set[str]) -> bool:
    if isinstance(node, _CAPTURING):
        return False
    if isinstance(node, nodes.Call):
        callee = node.node
        blocks = (isinstance(callee, nodes.Name) and callee.name in ("super", "caller")) or (
            isinstance(callee, nodes.Getattr)
            and isinstance(callee.node, nodes.Name)
            and callee.node.name == "self"
        )
        if blocks and not isinstance(parent, nodes.Output):
            return False  # a block's rendered text, taken as a value: it could be transformed
        if not blocks and _names(node) & tainted:
            return False
    elif isinstance(node, nodes.Compare):
        if _names(node) & tainted and any(op.op in ("in", "notin") for op in node.ops):
            return False
    elif isinstance(node, nodes.Filter) and _names(node) & tainted:
        if node.name not in _FILTERS:
            return False
        if node.name == "map" and (
            node.args
            or node.dyn_args
            or node.dyn_kwargs
            or any(k.key not in ("attribute", "default") for k in node.kwargs)
        ):
            return False  # map('a filter') applies that filter to each value; map(attribute=) only reads
    elif isinstance(node, nodes.Getitem) and _names(node.arg) & tainted:
        return False  # a personal value as a key: looked up by its stand-in's text
    elif isinstance(node, nodes.Test) and node.name not in _TESTS and _names(node) & tainted:
        return False
    return all(_safe(child, node, tainted) for child in node.iter_child_nodes())


@lru_cache(maxsize=64)
def _static_ok(env: jinja2.Environment, names: tuple[str, ...]) -> bool:
    try:
        trees = _graph(env, names)
    except Exception:  # missing or broken: the per-person rendering reports it as it always has
        return False
    if trees is None:
        return False
    tainted = _tainted(trees)
    return all(_safe(tree, None, tainted) for tree in trees)


# --- the skeleton ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skeleton:
    """The rendered templates of one group, as literal text and (string index, escaped) slots."""

    pieces: tuple[tuple[str | tuple[int, bool], ...], ...]

    def fill(self, strings: list[str]) -> list[str]:
        out = []
        for pieces in self.pieces:
            buf = []
            for piece in pieces:
                if type(piece) is str:
                    buf.append(piece)
                else:
                    i, escaped = piece  # type: ignore[misc]
                    buf.append(str(escape(strings[i])) if escaped else strings[i])
            out.append("".join(buf))
        return out


def _render_skeleton(env: jinja2.Environment, names: tuple[str, ...], context: dict[str, Any],
                     shape: tuple[Any, ...]) -> Skeleton | None:  # fmt: skip
    nonce = "".join(secrets.choice("0123456789") for _ in range(18))
    count = 0

    def marker(truth: bool) -> _Leaf:
        nonlocal count
        leaf = (_Leaf if truth else _EmptyLeaf)(f"\ue000{nonce}Qz{count}&\ue001")
        count += 1
        return leaf

    personal = {k: _stand_ins(v, marker) for k, v in shape}
    marked = re.compile(f"\ue000{nonce}Qz(\\d+)(&amp;|&)\ue001")
    overlay = _overlay(env)
    pieces = []
    try:
        for name in names:
            text = overlay.get_template(name).render({**context, **personal})
            parts = marked.split(text)
            one: list[str | tuple[int, bool]] = []
            for i, part in enumerate(parts):
                if i % 3 == 0:
                    if nonce in part or "\ue000" in part or "\ue001" in part:
                        return None  # a stand-in was cut or changed: the template transformed a value
                    if part:
                        one.append(part)
                elif i % 3 == 1:
                    index = int(part)
                    if index >= count:
                        return None
                    one.append((index, parts[i + 1] == "&amp;"))
            pieces.append(tuple(one))
    except Exception:  # _Unsplicable, or any failure: the per-person rendering decides (and reports)
        return None
    return Skeleton(tuple(pieces))


def _finalize(value: Any) -> Any:
    # type() is not intercepted by the stand-in; its text is its marker
    return str.__str__(value) if type(value) in _LEAVES else value


@lru_cache(maxsize=8)
def _overlay(env: jinja2.Environment) -> jinja2.Environment:
    if env.finalize is not None:
        raise _Unsplicable("the environment has its own finalize")
    # A cache of its own: the base environment's compiled templates know nothing of `finalize`.
    return env.overlay(finalize=_finalize, cache_size=64)


class SkeletonCache:
    """Skeletons of one mailing by group; at most `limit` of them (then per-person rendering)."""

    def __init__(self, env: jinja2.Environment, limit: int = 512):
        self.env = env
        self.limit = limit
        self.skeletons: dict[Any, Skeleton | None] = {}

    def get(self, names: tuple[str, ...], group: Any, context: dict[str, Any],
            shape: tuple[Any, ...] | None) -> Skeleton | None:  # fmt: skip
        """The skeleton of `names` for this group and shape, made on first use; None: render per person.

        `context` is the group's shared context (everything but the PERSONAL keys).
        """
        if shape is None or not _static_ok(self.env, names):
            return None
        key = (names, group, shape)
        try:
            return self.skeletons[key]
        except KeyError:
            pass
        skeleton = _render_skeleton(self.env, names, context, shape)
        if len(self.skeletons) < self.limit:
            self.skeletons[key] = skeleton
        return skeleton
