"""Malformed variants of the example configuration: every one must be rejected with a clear message."""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler.config import load_config
from scheduler.errors import ConfigError

__all__ = ["MUTATIONS", "main", "mutate"]

EXAMPLE = Path(__file__).resolve().parent.parent / "config"
FILES = [
    "project.yaml",
    "participants.yaml",
    "cyclogram.yaml",
    *(f"meetings/{p.name}" for p in sorted((EXAMPLE / "meetings").glob("*.yaml"))),
]

# Paths (per file) whose value is required or constrained, so that breaking them must be an error.
REQUIRED = {
    "project.yaml": [
        ("name",),
        ("organizer",),
        ("organizer", "email"),
        ("timezone",),
        ("school_year",),
        ("base_url",),
    ],
    "participants.yaml": [
        ("schools",),
        ("schools", 0, "id"),
        ("schools", 0, "head"),
        ("schools", 1, "head", "email"),
        ("teams", 0, "schools"),
        ("teams", 1, "id"),
    ],
    "cyclogram.yaml": [
        ("events", 0, "id"),
        ("events", 1, "when"),
        ("events", 2, "title"),
        ("events", 3, "when", "month"),
    ],
}
MEETING_REQUIRED = [("id",), ("title",), ("start",), ("end",), ("place",), ("audience",)]


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _delete(data: Any, path: tuple[Any, ...]) -> None:
    del _get(data, path[:-1])[path[-1]]


def _required(name: str) -> list[tuple[Any, ...]]:
    return REQUIRED.get(name, MEETING_REQUIRED)


def m_delete_required(rnd: random.Random, name: str, data: Any) -> str:
    path = rnd.choice(_required(name))
    _delete(data, path)
    if path == ("place",) and isinstance(data, dict):
        data.pop("online_url", None)  # a meeting needs a place or an online link: take both away
    return f"deleted {'.'.join(map(str, path))}"


def m_wrong_type(rnd: random.Random, name: str, data: Any) -> str:
    path = rnd.choice(_required(name))
    value = rnd.choice([{"x": 1}, [1, 2], 12345, True, None, ""])
    if isinstance(_get(data, path), list) and isinstance(value, list):
        value = {"x": 1}
    _set(data, path, value)
    return f"{'.'.join(map(str, path))} = {value!r}"


def m_unknown_field(rnd: random.Random, name: str, data: Any) -> str:
    target = data
    if name == "participants.yaml":
        target = rnd.choice(data["schools"])
    elif name == "cyclogram.yaml":
        target = rnd.choice(data["events"])
    target[rnd.choice(["titel", "adress", "shools", "extra", "Start"])] = "x"
    return "unknown field"


def m_bad_email(rnd: random.Random, name: str, data: Any) -> str:
    bad = rnd.choice(["not-an-email", "head@", "@school.example.org", "a b@example.org", "head@@x.org"])
    if name == "project.yaml":
        data["organizer"]["email"] = bad
    else:
        rnd.choice(_participants(data))["head"]["email"] = bad
    return f"email {bad!r}"


def _participants(data: Any) -> list[Any]:
    return data["schools"] if isinstance(data, dict) and "schools" in data else [{"head": {}}]


def m_bad_zone(rnd: random.Random, name: str, data: Any) -> str:
    data["timezone"] = rnd.choice(["Europe/Yaroslavl", "MSK+0", "Moscow", "UTC+3", "Europe/Moskva"])
    return "time zone"


def m_unknown_ref(rnd: random.Random, name: str, data: Any) -> str:
    ghost = rnd.choice(["school-999", "team-x", "gymnasium-4"])
    if name == "participants.yaml":
        rnd.choice(data["teams"])["schools"].append(ghost)
    elif name == "cyclogram.yaml":
        rnd.choice(data["events"])["audience"] = {"schools": [ghost]}
    else:
        data["audience"] = {"teams": [ghost]}
    return f"unknown reference {ghost}"


def m_duplicate_id(rnd: random.Random, name: str, data: Any) -> str:
    key = {"participants.yaml": "schools", "cyclogram.yaml": "events"}[name]
    items = data[key]
    items.append(copy.deepcopy(rnd.choice(items)))
    return f"duplicate {key} id"


def m_bad_date(rnd: random.Random, name: str, data: Any) -> str:
    bad = rnd.choice(["2020-13-45", "25.09.2020", "tomorrow", "2019-09-25 10:00", "2031-01-01 10:00"])
    data["start"] = bad
    return f"start {bad!r}"


def m_end_before_start(rnd: random.Random, name: str, data: Any) -> str:
    data["end"] = data["start"]
    return "end not after start"


def m_out_of_year(rnd: random.Random, name: str, data: Any) -> str:
    ev = rnd.choice(data["events"])
    ev["when"] = rnd.choice(
        [{"date": "2019-05-01"}, {"month": "2022-02"}, {"start": "2021-09-02", "end": "2021-09-05"}]
    )
    return "outside the school year"


def m_newline_title(rnd: random.Random, name: str, data: Any) -> str:
    target = rnd.choice(data["events"]) if name == "cyclogram.yaml" else data
    target["title"] = "Встреча\r\nBcc: victim@example.org"
    return "CR/LF in a title"


def m_bad_when(rnd: random.Random, name: str, data: Any) -> str:
    ev = rnd.choice(data["events"])
    ev["when"] = rnd.choice(
        [
            {"month": "2021-13"},
            {"every": "month", "weekday": "thursday", "start": "2020-10-01", "until": "2021-04-30"},
            {"every": "fortnight", "weekday": "friday"},
            {"sometime": True},
            "next spring",
        ]
    )
    return "bad when"


def m_bad_agenda(rnd: random.Random, name: str, data: Any) -> str:
    data["agenda"] = [{"title": "Вне встречи", "start": "07:00", "end": "08:00"}]
    return "agenda slot outside the meeting"


# Mutations of the parsed YAML, by the files they apply to.
MUTATIONS: list[tuple[Any, tuple[str, ...]]] = [
    (m_delete_required, ("project.yaml", "participants.yaml", "cyclogram.yaml", "meeting")),
    (m_wrong_type, ("project.yaml", "participants.yaml", "cyclogram.yaml", "meeting")),
    (m_unknown_field, ("project.yaml", "participants.yaml", "cyclogram.yaml", "meeting")),
    (m_bad_email, ("project.yaml", "participants.yaml")),
    (m_bad_zone, ("project.yaml",)),
    (m_unknown_ref, ("participants.yaml", "cyclogram.yaml", "meeting")),
    (m_duplicate_id, ("participants.yaml", "cyclogram.yaml")),
    (m_bad_date, ("meeting",)),
    (m_end_before_start, ("meeting",)),
    (m_out_of_year, ("cyclogram.yaml",)),
    (m_newline_title, ("cyclogram.yaml", "meeting")),
    (m_bad_when, ("cyclogram.yaml",)),
    (m_bad_agenda, ("meeting",)),
]


def _text_mutation(rnd: random.Random, text: bytes) -> tuple[bytes, str]:
    """Breaks of the file itself rather than of its values."""
    kind = rnd.choice(["truncate", "bracket", "tab", "latin1", "empty", "list", "dupkey", "binary"])
    if kind == "truncate":
        lines = text.splitlines(keepends=True)
        cut = rnd.randint(1, max(1, len(lines) - 1))
        return b"".join(lines[:cut]) + b"  - {broken: [\n", "truncated mid-structure"
    if kind == "bracket":
        # the first flow mapping outside a comment (a bracket changed inside a comment is still valid YAML)
        lines = text.split(b"\n")
        for i, line in enumerate(lines):
            if b"{" in line and not line.lstrip().startswith(b"#"):
                lines[i] = line.replace(b"{", b"[", 1)
                return b"\n".join(lines), "unbalanced bracket"
        return b"key: [unclosed\n" + text, "unbalanced bracket"
    if kind == "tab":
        return b"\tname: x\n" + text, "tab indentation"
    if kind == "latin1":
        return text.replace("а".encode(), b"\xe0", 3) + b"\n# \xff\xfe\n", "not UTF-8"
    if kind == "empty":
        return b"", "empty file"
    if kind == "list":
        return b"- just\n- a list\n", "a list instead of a mapping"
    if kind == "dupkey":
        first = text.split(b"\n")
        keys = [ln for ln in first if ln and not ln.startswith((b" ", b"#", b"-"))]
        return text + b"\n" + (keys[0] if keys else b"id: x") + b"\n", "duplicate key"
    return bytes(rnd.getrandbits(8) for _ in range(64)), "random bytes"


def mutate(rnd: random.Random, directory: Path) -> list[str]:
    """Apply 1-3 breaking mutations to the configuration in `directory`; say what was done."""
    said = []
    for _ in range(rnd.randint(1, 3)):
        name = rnd.choice(FILES)
        path = directory / name
        if rnd.random() < 0.25:
            new, what = _text_mutation(rnd, path.read_bytes())
            if not new and name == "cyclogram.yaml":
                new = b"events: {}\n"  # an empty cyclogram is a valid one; a mapping is not
                what = "events as a mapping"
            path.write_bytes(new)
            said.append(f"{name}: {what}")
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue  # already broken by an earlier mutation
        if not isinstance(data, dict):
            continue
        kind = "meeting" if name.startswith("meetings/") else name
        options = [m for m, files in MUTATIONS if kind in files]
        fn = rnd.choice(options)
        try:
            what = fn(rnd, name, data)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed what this one needed
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        said.append(f"{name}: {what}")
    if not said:  # every pick was skipped: make sure the variant is broken
        (directory / "project.yaml").write_bytes(b"")
        said.append("project.yaml: empty file")
    return said


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--keep", type=Path, help="copy this many failing variants here for inspection")
    p.add_argument("--sample-out", type=Path, help="keep a few variants here for the CLI check")
    p.add_argument("--sample", type=int, default=0)
    args = p.parse_args(argv)
    rnd = random.Random(args.seed)
    accepted, crashed, unclear = [], [], []
    kinds: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.count):
            variant = Path(tmp) / f"v{i}"
            shutil.copytree(EXAMPLE, variant)
            said = mutate(rnd, variant)
            for s in said:
                k = s.split(": ", 1)[1].split(" ")[0]
                kinds[k] = kinds.get(k, 0) + 1
            try:
                load_config(variant)
                accepted.append({"variant": i, "mutations": said})
            except ConfigError as exc:
                if not exc.problems or any(not pr.message or not str(pr.file) for pr in exc.problems):
                    unclear.append({"variant": i, "mutations": said, "message": str(exc)[:300]})
            except Exception as exc:  # a crash is what this drill looks for
                crashed.append(
                    {"variant": i, "mutations": said, "error": repr(exc), "tb": traceback.format_exc()[-800:]}
                )
            if args.sample_out and i < args.sample:
                shutil.copytree(variant, args.sample_out / f"v{i}")
            shutil.rmtree(variant)
    print(
        json.dumps(
            {
                "count": args.count,
                "accepted": accepted,
                "crashed": crashed,
                "unclear": unclear,
                "mutation_kinds": len(kinds),
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
