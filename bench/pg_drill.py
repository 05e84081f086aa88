"""PostgreSQL drills: three `run --no-serve` instances on one database, kill -9 twice; claim throughput.

Usage: python bench/pg_drill.py [--recipients N] [--database URL] [--claims N] [--seed S]
Writes its section of bench/RESULTS.md (between the postgres markers; bench/run keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import BENCH, CLI, PY, ROOT, shown, start, synth

__all__ = ["main"]

BEGIN, END = "<!-- postgres:begin -->", "<!-- postgres:end -->"
LEASE_SECONDS = 10  # short, so the drill sees a dead instance's rows taken over within seconds


def _database(url: str | None) -> tuple[str, object | None]:
    """A fresh database on the given server, or on a throwaway one started here."""
    import psycopg

    server = None
    if url is None:
        from tests.pg_server import start_server

        server = start_server(port=5433)
        url = server.url  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cyclogram_drill WITH (FORCE)")
        conn.execute("CREATE DATABASE cyclogram_drill")
    return re.sub(r"/postgres\?", "/cyclogram_drill?", url, count=1) if "/postgres?" in url else url, server


def _counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())


def drill(url: str, n: int, seed: int, work: Path, notes: list[str]) -> bool:
    cfg, state = work / "cfg", work / "state"
    notes.append("$ " + shown(synth(cfg, n, max(1, n // 100), 1, 0)))
    plan = json.loads(
        subprocess.run([*CLI, "--config", str(cfg), "plan", "--json"], capture_output=True, check=True).stdout
    )
    entry = next(e for e in plan["entries"] if e["kind"] == "invitation")
    base = datetime.fromisoformat(entry["at"]) + timedelta(minutes=1)
    t_base = time.monotonic()
    record = work / "sink.jsonl"
    rnd = random.Random(seed)
    env = {
        "CYCLOGRAM_CONFIG": str(cfg),
        "CYCLOGRAM_STATE": str(state),
        "CYCLOGRAM_DATABASE_URL": url,
        "CYCLOGRAM_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "CYCLOGRAM_SMTP_HOST": "127.0.0.1",
        "CYCLOGRAM_SMTP_SECURITY": "none",
    }

    # Each instance's clock starts at `--now` when it starts: an instance started later is given a later
    # instant, so all share one timeline, as wall clocks kept by NTP do (leases compare their clocks).
    def cmd() -> list[str]:
        return [
            *CLI,
            "--now",
            (base + timedelta(seconds=time.monotonic() - t_base)).isoformat(),
            "run",
            "--no-serve",
        ]

    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: list[Path] = []
    kills: list[tuple[str, float, int]] = []

    def launch(name: str) -> None:
        log = work / f"{name}-{len(logs)}.log"
        logs.append(log)
        with open(log, "wb") as fh:
            procs[name] = subprocess.Popen(
                cmd(), env={**os.environ, **env}, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    sink = [PY, str(BENCH / "smtpd.py"), "--record", str(record), "--delay-ms", "2"]
    t0 = time.monotonic()
    with start(sink, None, work / "sink.log", port_from_stdout=True) as srv:
        env["CYCLOGRAM_SMTP_PORT"] = str(srv.port)
        notes.append("$ " + shown(cmd(), {k: v for k, v in env.items() if k != "CYCLOGRAM_DATABASE_URL"})
                     + "   (three instances, CYCLOGRAM_DATABASE_URL set)")  # fmt: skip
        for name in ("a", "b", "c"):
            launch(name)
        # Two kills at random moments: a (restarted at once, as a supervisor would), then b (left dead).
        plan_kills = [("a", rnd.uniform(0.15, 0.4), True), ("b", rnd.uniform(0.55, 0.8), False)]
        deadline = time.monotonic() + max(600, n / 5)
        while time.monotonic() < deadline:
            counts = _counts(url) if _has_outbox(url) else {}
            sent = counts.get("sent", 0)
            if plan_kills and sent >= plan_kills[0][1] * n:
                name, _, restart = plan_kills.pop(0)
                in_flight = counts.get("sending", 0)
                os.killpg(procs[name].pid, signal.SIGKILL)
                procs[name].wait()
                kills.append((name, time.monotonic() - t0, in_flight))
                if restart:
                    launch(name)
            if not plan_kills and sent >= n and not counts.get("queued") and not counts.get("sending"):
                break
            time.sleep(0.2)
        wall = time.monotonic() - t0
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        time.sleep(0.5)  # the sink records the last closes
    events = []
    for line in record.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    got = Counter(a.lower() for e in events if e["ev"] == "msg" for a in e["rcpt"])
    width = max(4, len(str(n)))
    expected = {f"head@school-{i:0{width}d}.example.org" for i in range(1, n + 1)}
    missing = expected - set(got)
    dupes = sum(c - 1 for c in got.values() if c > 1)
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    in_doubt = text.count("action=in-doubt")
    composed = len(re.findall(r"action=queued mailing=\S+/invitation", text))
    per_instance = {p.name: p.read_text(errors="replace").count("action=sent") for p in logs}
    tracebacks = text.count("Traceback")
    final = _counts(url)
    notes.append(
        f"{n:,} recipients, 3 instances; kill -9 of "
        + ", ".join(
            f"instance {k} at {t:.1f} s ({f} rows in `sending` across all instances)" for k, t, f in kills
        )
        + f"; finished in {wall:.1f} s. {len(missing)} lost, {dupes} duplicates, {in_doubt} rows taken over in "
        f"doubt (the killed instances' leased rows), invitation composed {composed} time(s) for 3+1 starts; "
        f"deliveries per instance log: {per_instance}; outbox at the end {final}; {tracebacks} tracebacks"
    )
    return not missing and dupes <= in_doubt and len(kills) == 2 and composed == 1 and not tracebacks


def _has_outbox(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT to_regclass('outbox')").fetchone()[0])


def claim_rates(url: str, count: int, work: Path) -> list[str]:
    from scheduler.store import NewMessage, SQLiteStore
    from scheduler.store.postgres import PostgresStore

    body = b"Subject: x\r\n\r\n" + b"x" * 20_000  # about one invitation
    now = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
    msgs = [
        NewMessage(f"m/invitation|r{i}@example.org|0", "m/invitation", "invitation", "m", f"r{i}@example.org", 0,
                   body, "o@example.org")
        for i in range(count)
    ]  # fmt: skip
    lines = []

    def drain(store, workers: int) -> float:
        done = [0]
        lock = threading.Lock()

        def worker():
            while True:
                rows = store.claim(now, 1)
                if not rows:
                    return
                store.mark_sent(rows[0].id, now, "250")
                with lock:
                    done[0] += 1

        t = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert done[0] == count, done
        return count / (time.perf_counter() - t)

    lite = SQLiteStore(work / "claims.db")
    lite.enqueue(msgs, now)
    lines.append(f"SQLite, one deliverer: {drain(lite, 1):,.0f} claims+marks/s")
    lite.close()
    for workers in (1, 3):
        pg = PostgresStore(url, max_connections=workers + 1)
        with pg._tx() as conn:  # a clean outbox for each round
            conn.execute("TRUNCATE outbox, outbox_messages")
        pg.enqueue(msgs, now)
        lines.append(
            f"PostgreSQL, {workers} deliverer{'s' if workers > 1 else ''} (threads, a connection each): "
            f"{drain(pg, workers):,.0f} claims+marks/s"
        )
        pg.close()
    return lines


def pgbench(url: str, seconds: int) -> str:
    import shutil

    exe = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if exe is None:
        return "pgbench not installed"
    init = subprocess.run([str(exe), "-i", "-q", "-s", "1", url], capture_output=True, text=True)
    if init.returncode:
        return f"pgbench -i failed: {init.stderr.strip()[-300:]}"
    out = subprocess.run(
        [str(exe), "-c", "3", "-j", "3", "-T", str(seconds), "-N", url], capture_output=True, text=True
    )
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    return (
        f"pgbench -N (simple update, no branch contention), 3 clients, {seconds} s, scale 1: "
        f"{float(tps.group(1)):,.0f} tps"
        if tps
        else f"pgbench failed: {out.stderr[-300:]}"
    )


def write_section(lines: list[str]) -> None:
    path = BENCH / "RESULTS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = "\n".join([BEGIN, *lines, END])
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipients", type=int, default=2000)
    p.add_argument("--claims", type=int, default=2000)
    p.add_argument("--database", help="a PostgreSQL URL (a database is created there); default: start one")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--pgbench-seconds", type=int, default=10)
    p.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = p.parse_args(argv)
    started = time.monotonic()
    url, server = _database(args.database)
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cyclogram-pg-drill-") as tmp:
            ok = drill(url, args.recipients, args.seed, Path(tmp), notes)
            rates = claim_rates(url, args.claims, Path(tmp))
            reference = pgbench(url, args.pgbench_seconds)
    finally:
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    lines = [
        "## PostgreSQL: several instances on one store",
        "",
        f"Written by `python bench/pg_drill.py --recipients {args.recipients} --claims {args.claims}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {time.monotonic() - started:.0f} s; {os.cpu_count()} cores shared "
        "with other work; a throwaway PostgreSQL 15 (fsync off) on a Unix socket, the bench SMTP recorder "
        f"(2 ms per reply) on 127.0.0.1; outbox lease {LEASE_SECONDS} s.",
        "",
        f"- **{'PASS' if ok else 'FAIL'}** three `run --no-serve` instances, one mailing, kill -9 twice: "
        + notes[-1],
        "- Claim throughput (claim one row, mark it sent; 20 KB messages; in-process, same machine): "
        + "; ".join(rates),
        f"- Reference for the database itself: {reference}",
        "- Leases compare the instances' clocks. A first run of this drill started each instance's `--now` clock at its own start, so the restarted instance ran 50 s behind the others: they took its live rows over as expired (486 duplicates of 2,000). Instances on one database need synchronised clocks (NTP); the drill now gives a later-started instance a later `--now`.",
        "",
        "```",
        *notes[:-1],
        "```",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
