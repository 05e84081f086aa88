"""What `run` pays in its own process when one meeting is edited: the feeds rebuilt, against a full build."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["edit_title", "for_a_few_teams", "main"]


def edit_title(path: Path) -> None:
    """The benchmarks' edit: a meeting renamed (its first `title:` line, the meeting's own)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^title: (.*)$", r"title: \1 (перенос)", text, count=1), encoding="utf-8")


def for_a_few_teams(text: str) -> bool:
    """A meeting addressed to teams, without minutes (whose follow-up items may be for everyone)."""
    return bool(re.search(r"(?m)^audience:\n  teams:", text)) and not re.search(r"(?m)^minutes:", text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="a configuration this script may edit")
    p.add_argument("--state", type=Path, required=True, help="an empty state folder")
    args = p.parse_args(argv)
    from scheduler.clock import SystemClock
    from scheduler.config import load_project
    from scheduler.server import FeedServer
    from scheduler.store.url import open_url

    args.state.mkdir(parents=True, exist_ok=True)
    store = open_url(None, args.state)
    server = FeedServer(store, SystemClock(), args.config, state=args.state)
    project = load_project(args.config)
    t0 = time.perf_counter()
    server.update(project)
    full = time.perf_counter() - t0
    out = {"full": full, "feeds": len(server.published.feeds) if server.published else 0}
    meetings = sorted((args.config / "meetings").glob("*.yaml"))
    for name, pick in (
        ("everyone", lambda t: re.search(r"(?m)^audience: all", t)),
        ("teams", for_a_few_teams),
    ):
        path = next((m for m in meetings if pick(m.read_text(encoding="utf-8"))), None)
        if path is None:
            continue
        edit_title(path)
        t0 = time.perf_counter()
        project = load_project(args.config)
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        server.update(project)
        out[name] = {"load": loaded, "rebuild": time.perf_counter() - t0, "meeting": path.name}
    store.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
