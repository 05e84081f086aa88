"""Benchmarks side by side with the reference tools, and fault drills; writes bench/RESULTS.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smtpd import rejected

from drill_auth import drill as auth_drill
from harness import BENCH, CLI, PY, ROOT, Figure, cli_has, free_port, run, shown, start, synth
from rebuild import edit_title, for_a_few_teams

__all__ = ["main"]

SIZES = {
    "quick": {
        "raw": [1000],
        "relay": 200,
        "relay_ref": 20,
        "rate": (30, 600),
        "feeds": (200, 20, 20, 100),
        "wrk_s": 2,
        "faulty": 200,
        "kill": 400,
        "fuzz": 300,
        "fuzz_cli": 5,
        "synth_year": True,
        "growth": [200, 1000],
    },
    "full": {
        "raw": [10000, 100000],
        "relay": 1000,
        "relay_ref": 100,
        "rate": (60, 600),
        "feeds": (1000, 100, 100, 500),
        "wrk_s": 10,
        "faulty": 100000,
        "kill": 100000,
        "fuzz": 1000,
        "fuzz_cli": 30,
        "synth_year": True,
        "growth": [1000, 10000, 100000],
    },
}


class Bench:
    def __init__(self, mode: str, work: Path, profile: bool):
        self.mode = mode
        self.size = SIZES[mode]
        self.work = work
        self.profile = profile
        self.figures: list[Figure] = []
        self.drills: list[tuple[str, bool | None, str, list[str]]] = []
        self.profiles: list[tuple[str, str, str]] = []
        self._avg_size: int | None = None
        self.log: list[str] = []
        # command -> recipients -> (wall seconds, peak RSS MB), for the growth table
        self.growth: dict[str, dict[int, tuple[float, float]]] = {}

    # -- helpers ----------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def figure(self, section: str, name: str, **kw: Any) -> Figure:
        fig = Figure(section, name, **kw)
        self.figures.append(fig)
        return fig

    def guarded(self, fig_or_section: Any, fn: Callable[[], None]) -> None:
        """Run one measurement; a failure becomes a 'not measured' line, never a crash."""
        try:
            fn()
        except Exception as exc:
            self.say(f"error: {exc!r}")
            tb = traceback.format_exc(limit=3)
            target = fig_or_section if isinstance(fig_or_section, Figure) else None
            if target is not None and target.value is None:
                target.missing = f"error: {str(exc)[:300]}"
            else:
                self.log.append(f"{fig_or_section}: {tb[-600:]}")

    def need(self, fig: Figure, *command: str) -> bool:
        if not cli_has(*command):
            fig.missing = f"`cyclogram {' '.join(command)}` does not exist yet"
            return False
        return True

    def smtp_env(self, config: Path, state: Path, port: int, security: str = "none") -> dict[str, str]:
        return {
            "CYCLOGRAM_CONFIG": str(config),
            "CYCLOGRAM_STATE": str(state),
            "CYCLOGRAM_SMTP_HOST": "127.0.0.1",
            "CYCLOGRAM_SMTP_PORT": str(port),
            "CYCLOGRAM_SMTP_SECURITY": security,
        }

    def fresh(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def sink_cmd(self, port: int) -> list[str]:
        cmd = ["/usr/sbin/smtp-sink"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        return [*cmd, f"127.0.0.1:{port}", "1024"]

    def recorder(self, record: Path, *extra: str) -> list[str]:
        return [PY, str(BENCH / "smtpd.py"), "--record", str(record), *extra]

    @staticmethod
    def records(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def send_cmd(self, meeting: str = "meeting-001") -> list[str]:
        return [*CLI, "send", "invitation", meeting, "--yes"]

    # -- calibration: the average size of one invitation --------------------------------------------------
    def avg_size(self) -> int:
        if self._avg_size is None:
            cfg, state = self.fresh("calib-cfg"), self.fresh("calib-state")
            synth(cfg, 50, 5, 1, 10)
            record = self.work / "calib.jsonl"
            record.unlink(missing_ok=True)
            with start(self.recorder(record), None, self.work / "calib.log", port_from_stdout=True) as srv:
                r = run(self.send_cmd(), self.smtp_env(cfg, state, srv.port), timeout=300)
            sizes = [e["size"] for e in self.records(record) if e["ev"] == "msg"]
            if not sizes:
                raise RuntimeError(f"calibration send delivered nothing: {r.err[-400:]}")
            self._avg_size = sum(sizes) // len(sizes)
        return self._avg_size

    # -- raw delivery -------------------------------------------------------------------------------------
    def raw_delivery(self) -> None:
        for n in self.size["raw"]:
            fig = self.figure(
                "raw delivery",
                f"`send invitation` to {n:,} recipients into smtp-sink",
                unit="msg/s",
                ref_name="smtp-source, same count and size, same sink",
                target=">= 0.2 of smtp-source; peak RSS < 300 MB at 10,000",
                target_ratio=0.2,
            )
            if not self.need(fig, "send"):
                continue
            self.guarded(fig, lambda n=n, fig=fig: self._raw(n, fig))

    def _raw(self, n: int, fig: Figure) -> None:
        size = self.avg_size()
        cfg, state = self.fresh(f"raw{n}-cfg"), self.fresh(f"raw{n}-state")
        fig.commands.append(shown(synth(cfg, n, max(1, n // 100), 1, 0)))
        port = free_port()
        with start(self.sink_cmd(port), port, self.work / f"sink{n}.log"):
            env = self.smtp_env(cfg, state, port)
            self.say(f"raw delivery: cyclogram send to {n}")
            r = run(self.send_cmd(), env, timeout=3600)
            fig.commands.append(shown(r.cmd, env))
            if r.rc != 0:
                fig.missing = f"send failed, exit {r.rc}: {r.err.strip()[-300:]}"
                return
            fig.value = n / r.wall
            self.growth.setdefault("send", {})[n] = (r.wall, r.maxrss_mb)
            fig.notes.append(
                f"{r.wall:.1f} s wall, peak RSS {r.maxrss_mb:.0f} MB, average message {size:,} bytes"
            )
            if n == 10000:
                fig.ok = r.maxrss_mb < 300
            sessions = 4  # cyclogram's default CYCLOGRAM_SMTP_CONCURRENCY
            ref = [
                "/usr/sbin/smtp-source",
                "-d",
                "-s",
                str(sessions),
                "-m",
                str(n),
                "-l",
                str(max(100, size - 300)),
                "-f",
                "gcro@example.org",
                "-t",
                "head@school-0001.example.org",
                f"127.0.0.1:{port}",
            ]
            self.say(f"raw delivery: smtp-source {n}")
            rr = run(ref, timeout=3600)
            fig.commands.append(shown(ref))
            fig.ref_value = n / rr.wall
            fig.notes.append(
                f"smtp-source: {rr.wall:.2f} s wall, {sessions} sessions, connections reused (-d)"
            )
        if self.profile and n == min(self.size["raw"]):
            self._profile("send invitation", cfg, port_cmd=True, n=n)

    def _profile(self, what: str, cfg: Path, port_cmd: bool = False, n: int = 0) -> None:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            self.profiles.append((what, "", "pyinstrument is not installed: not profiled"))
            return
        out = self.work / f"profile-{what.replace(' ', '-')}.txt"
        state = self.fresh(f"profile-{what.replace(' ', '-')}-state")
        profiler = [PY, "-m", "pyinstrument", "-r", "text", "-o", str(out), "cli.py"]
        if port_cmd:
            port = free_port()
            with start(self.sink_cmd(port), port, self.work / "sink-prof.log"):
                env = self.smtp_env(cfg, state, port)
                cmd = [*profiler, "send", "invitation", "meeting-001", "--yes"]
                run(cmd, env, timeout=1800)
        else:
            env = {"CYCLOGRAM_CONFIG": str(cfg), "CYCLOGRAM_STATE": str(state)}
            cmd = [*profiler, "feeds", "build", "--out", str(self.work / "prof-feeds")]
            run(cmd, env, timeout=1800)
        text = out.read_text(errors="replace") if out.exists() else "(no profile written)"
        self.profiles.append((what, shown(cmd, env), _top_of_profile(text)))

    # -- distant relay ------------------------------------------------------------------------------------
    def relay(self) -> None:
        fig = self.figure(
            "distant relay",
            f"`send invitation` to {self.size['relay']:,} recipients via a STARTTLS+AUTH relay offering "
            "PIPELINING, 20 ms per reply",
            unit="msg/s",
            ref_name="smtplib loop, one connection per message",
            target=">= 20x the smtplib loop",
            target_ratio=20,
        )
        rate = self.figure(
            "distant relay",
            f"rate limit {self.size['rate'][1]} msg/min honoured ({self.size['rate'][0]} messages)",
            unit="msg/min",
            target="measured rate <= limit",
        )
        if not self.need(fig, "send"):
            rate.missing = fig.missing
            return
        self.guarded(fig, lambda: self._relay(fig, rate))

    def _cert(self) -> tuple[Path, Path]:
        cert, key = self.work / "relay-cert.pem", self.work / "relay-key.pem"
        if not cert.exists():
            cmd = [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ]
            r = run(cmd, timeout=60)
            if r.rc != 0:
                raise RuntimeError(f"openssl failed: {r.err[-300:]}")
        return cert, key

    def _relay(self, fig: Figure, rate: Figure) -> None:
        cert, key = self._cert()
        n, n_ref = self.size["relay"], self.size["relay_ref"]
        cfg = self.fresh("relay-cfg")
        fig.commands.append(shown(synth(cfg, n, max(1, n // 100), 1, 0)))
        relay = ["--delay-ms", "20", "--tls-cert", str(cert), "--tls-key", str(key), "--auth", "bench:secret"]
        record = self.work / "relay.jsonl"
        record.unlink(missing_ok=True)
        with start(
            self.recorder(record, *relay), None, self.work / "relay.log", port_from_stdout=True
        ) as srv:
            fig.commands.append(shown(self.recorder(record, *relay)))
            env = {
                **self.smtp_env(cfg, self.fresh("relay-state"), srv.port, "starttls"),
                "CYCLOGRAM_SMTP_USERNAME": "bench",
                "CYCLOGRAM_SMTP_PASSWORD": "secret",
                "CYCLOGRAM_SMTP_CA_FILE": str(cert),
            }
            self.say(f"relay: cyclogram send to {n}")
            r = run(self.send_cmd(), env, timeout=3600)
            fig.commands.append(shown(r.cmd, {**env, "CYCLOGRAM_SMTP_PASSWORD": "***"}))
            got = sum(1 for e in self.records(record) if e["ev"] == "msg")
            fig.notes.append(f"{r.wall:.1f} s wall, {got} accepted by the relay, exit {r.rc}")
            if r.rc != 0:
                fig.notes.append(r.err.strip()[-300:])
            fig.value = got / r.wall if got else None
            if not got:
                fig.missing = f"nothing delivered: {r.err.strip()[-300:]}"
            ref = [
                PY,
                str(BENCH / "smtplib_loop.py"),
                "--port",
                str(srv.port),
                "--count",
                str(n_ref),
                "--size",
                str(self.avg_size()),
                "--cafile",
                str(cert),
                "--user",
                "bench",
                "--password",
                "secret",
            ]
            self.say(f"relay: smtplib loop {n_ref}")
            rr = run(ref, timeout=1800)
            fig.commands.append(shown(ref))
            if rr.rc == 0:
                fig.ref_value = n_ref / rr.wall
            else:
                fig.notes.append(f"reference failed: {rr.err.strip()[-300:]}")
        # the rate limit, against a fast local recorder
        count, limit = self.size["rate"]
        cfg = self.fresh("rate-cfg")
        synth(cfg, count, 1, 1, 0)
        record = self.work / "rate.jsonl"
        record.unlink(missing_ok=True)
        with start(self.recorder(record), None, self.work / "rate.log", port_from_stdout=True) as srv:
            env = {
                **self.smtp_env(cfg, self.fresh("rate-state"), srv.port),
                "CYCLOGRAM_SMTP_RATE": str(limit),
            }
            r = run(self.send_cmd(), env, timeout=600)
            rate.commands.append(shown(r.cmd, env))
        times = sorted(e["t"] for e in self.records(record) if e["ev"] == "msg")
        if len(times) >= 2:
            measured = (len(times) - 1) / (times[-1] - times[0]) * 60
            rate.value = measured
            rate.ok = measured <= limit * 1.05
            rate.notes.append(f"{len(times)} messages in {times[-1] - times[0]:.1f} s; limit {limit}/min")
        else:
            rate.missing = f"fewer than 2 messages delivered: {r.err.strip()[-300:]}"

    # -- feed build --------------------------------------------------------------------------------------
    def feed_build(self) -> None:
        s, t, m, e = self.size["feeds"]
        fig = self.figure(
            "feed build",
            f"`feeds build`: {s:,} schools, {t} teams, {m} meetings, {e} key events",
            unit="s",
            ref_name="cp -r of the built directory",
            higher_is_better=False,
            target="within 3x the copy",
            target_ratio=1 / 3,
        )

        def rebuilt(name: str, ref: str) -> Figure:
            return self.figure(
                "feed build",
                name,
                unit="s",
                ref_name=ref,
                higher_is_better=False,
                target="< 10% of a full build",
            )

        edit = rebuilt("one meeting for everyone edited, then rebuilt", "the full build")
        team_edit = rebuilt("one meeting for a few teams edited, then rebuilt", "the full build")
        served = rebuilt(
            "`run` rebuilding in its own process after one meeting edited",
            "the same process's first, full build",
        )
        if not self.need(fig, "feeds", "build"):
            edit.missing = team_edit.missing = served.missing = fig.missing
            return
        self.guarded(fig, lambda: self._feeds(fig, edit, team_edit, s, t, m, e))
        self.guarded(served, lambda: self._rebuild(served, s, t, m, e))

    def _edit_rebuild(self, fig: Figure, meeting: Path, out: Path, env: dict[str, str], full: float) -> None:
        """Edit one meeting's title, run `feeds build` again, and count the files it rewrote."""
        edit_title(meeting)
        before = time.time() - 0.01
        r = run([*CLI, "feeds", "build", "--out", str(out)], env, timeout=1800)
        fig.commands.append(f"(title of {meeting.name} edited) " + shown(r.cmd, env))
        fig.value, fig.ref_value = r.wall, full
        fig.ok = r.rc == 0 and r.wall < 0.1 * full
        changed = sum(1 for p in out.rglob("*") if p.is_file() and p.stat().st_mtime >= before)
        fig.notes.append(f"{changed} files rewritten, exit {r.rc}")

    def _rebuild(self, fig: Figure, s: int, t: int, m: int, e: int) -> None:
        """The service's rebuild after an edit (bench/rebuild.py), without the process start and the load."""
        cfg = self.fresh("rebuild-cfg")
        fig.commands.append(shown(synth(cfg, s, t, m, e)))
        cmd = [
            PY,
            str(BENCH / "rebuild.py"),
            "--config",
            str(cfg),
            "--state",
            str(self.fresh("rebuild-state")),
        ]
        r = run(cmd, timeout=1800)
        fig.commands.append(shown(cmd))
        if r.rc != 0:
            fig.missing = f"exit {r.rc}: {r.err.strip()[-300:]}"
            return
        got = json.loads(r.out)
        worst = max((got[k]["rebuild"] for k in ("everyone", "teams") if k in got), default=None)
        fig.value, fig.ref_value = worst, got["full"]
        fig.ok = worst is not None and worst < 0.1 * got["full"]
        for k, what in (("everyone", "a meeting for everyone"), ("teams", "a meeting for a few teams")):
            if k in got:
                fig.notes.append(
                    f"{what} ({got[k]['meeting']}): feeds rebuilt in {got[k]['rebuild']:.2f} s "
                    f"({got[k]['rebuild'] / got['full']:.0%} of the first build's {got['full']:.2f} s); "
                    f"the configuration reloaded in {got[k]['load']:.2f} s"
                )

    def _feeds(self, fig: Figure, edit: Figure, team_edit: Figure, s: int, t: int, m: int, e: int) -> None:
        cfg, state = self.fresh("feeds-cfg"), self.fresh("feeds-state")
        fig.commands.append(shown(synth(cfg, s, t, m, e)))
        out = self.work / "feeds-out"
        shutil.rmtree(out, ignore_errors=True)
        env = {"CYCLOGRAM_CONFIG": str(cfg), "CYCLOGRAM_STATE": str(state)}
        r = run([*CLI, "feeds", "build", "--out", str(out)], env, timeout=1800)
        fig.commands.append(shown(r.cmd, env))
        if r.rc != 0:
            fig.missing = f"exit {r.rc}: {r.err.strip()[-300:]}"
            return
        files = [p for p in out.rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        fig.value = r.wall
        fig.notes.append(f"{len(files):,} files, {total / 1e6:.1f} MB, peak RSS {r.maxrss_mb:.0f} MB")
        copy = self.work / "feeds-copy"
        shutil.rmtree(copy, ignore_errors=True)
        rc = run(["cp", "-r", str(out), str(copy)], timeout=600)
        fig.commands.append(shown(rc.cmd))
        fig.ref_value = rc.wall
        startup = run([*CLI, "--help"], timeout=60).wall
        fig.notes.append(f"interpreter start and imports alone: {startup:.2f} s (`cyclogram --help`)")
        meetings = sorted((cfg / "meetings").glob("*.yaml"))
        self._edit_rebuild(edit, meetings[0], out, env, r.wall)
        # The same edit on a meeting addressed to some teams only, and without minutes (whose follow-up items,
        # often for everyone, name their meeting): what changes is those teams' schools' feeds.
        few = next((m for m in meetings if for_a_few_teams(m.read_text(encoding="utf-8"))), None)
        if few is None:
            team_edit.missing = "the synthetic configuration has no meeting for some teams"
        else:
            self._edit_rebuild(team_edit, few, out, env, r.wall)
        # The same full build with the item cache of the state folder warm (a new output folder): what a
        # build costs when the serialising is done, against the copy of its bytes.
        shutil.rmtree(out, ignore_errors=True)
        r3 = run([*CLI, "feeds", "build", "--out", str(out)], env, timeout=1800)
        copy2 = self.work / "feeds-copy2"
        shutil.rmtree(copy2, ignore_errors=True)
        rc2 = run(["cp", "-r", str(out), str(copy2)], timeout=600)
        if r3.rc == 0 and rc2.wall:
            fig.notes.append(
                f"warm full build (item cache in the state folder, empty output folder): {r3.wall:.2f} s, "
                f"{r3.wall / rc2.wall:.1f}x its copy ({rc2.wall:.3f} s, measured right after)"
            )
        shutil.rmtree(copy2, ignore_errors=True)
        if self.profile:
            self._profile("feeds build", cfg)

    # -- feed serving ------------------------------------------------------------------------------------
    def serving(self) -> None:
        figs = {}
        for events in (200, 2000):
            for cond in (False, True):
                figs[(events, cond)] = self.figure(
                    "feed serving",
                    f"`serve`, {events:,}-event feed{', If-None-Match (304)' if cond else ''}",
                    unit="req/s",
                    ref_name="nginx (1 worker), same file",
                    target=">= 0.3 of nginx",
                    target_ratio=0.3,
                )
        if not (
            self.need(next(iter(figs.values())), "serve")
            and self.need(next(iter(figs.values())), "feeds", "build")
        ):
            for f in figs.values():
                f.missing = next(iter(figs.values())).missing
            return
        for events in (200, 2000):
            self.guarded(
                figs[(events, False)], lambda ev=events: self._serve(ev, figs[(ev, False)], figs[(ev, True)])
            )
        static = {
            cond: self.figure(
                "feed serving",
                f"static layout: nginx with the README's configuration, a school's private token URL, "
                f"2,000-event feed{', If-None-Match (304)' if cond else ''}",
                unit="req/s",
                ref_name="nginx (1 worker), the same file at a plain path",
                target=">= 0.3 of nginx",
                target_ratio=0.3,
            )
            for cond in (False, True)
        }
        self.guarded(static[False], lambda: self._static(2000, static[False], static[True]))

    def _serve(self, events: int, plain: Figure, cond: Figure) -> None:
        cfg, state = self.fresh(f"serve{events}-cfg"), self.fresh(f"serve{events}-state")
        plain.commands.append(shown(synth(cfg, 10, 2, 0, events)))
        out = self.work / f"serve{events}-out"
        shutil.rmtree(out, ignore_errors=True)
        env = {"CYCLOGRAM_CONFIG": str(cfg), "CYCLOGRAM_STATE": str(state)}
        r = run([*CLI, "feeds", "build", "--out", str(out)], env, timeout=600)
        if r.rc != 0:
            raise RuntimeError(f"feeds build failed: {r.err[-300:]}")
        os.chmod(self.work, 0o755)
        ngx_port, our_port = free_port(), free_port()
        conf = self.work / f"nginx{events}.conf"
        conf.write_text(
            f"worker_processes 1;\ndaemon off;\npid {self.work}/nginx{events}.pid;\nerror_log {self.work}/nginx.err;\n"
            "events { worker_connections 1024; }\n"
            "http { access_log off; types { text/calendar ics; } default_type application/octet-stream;\n"
            f"  server {{ listen 127.0.0.1:{ngx_port}; root {out}; charset utf-8; etag on; }} }}\n"
        )
        ngx = ["/usr/sbin/nginx", "-c", str(conf), "-p", str(self.work), "-e", str(self.work / "nginx.err")]
        serve = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(our_port)]
        dur = self.size["wrk_s"]
        with (
            start(ngx, ngx_port, self.work / "nginx.log"),
            start(serve, our_port, self.work / "serve.log", env),
        ):
            plain.commands += [shown(ngx), shown(serve, env)]
            size = (out / "project.ics").stat().st_size
            plain.notes.append(
                f"project.ics {size / 1e3:.0f} kB; wrk -t2 -c32 -d{dur}s; client and servers share the cores"
            )
            for fig, conditional in ((plain, False), (cond, True)):
                res = {}
                for who, port in (("cyclogram", our_port), ("nginx", ngx_port)):
                    url = f"http://127.0.0.1:{port}/project.ics"
                    headers = []
                    if conditional:
                        etag = _etag(url)
                        if not etag:
                            raise RuntimeError(f"{who} sent no ETag for {url}")
                        if _status(url, {"If-None-Match": etag}) != 304:
                            fig.notes.append(f"{who} did not answer 304 to If-None-Match")
                        headers = ["-H", f"If-None-Match: {etag}"]
                    elif _status(url, {}) != 200:
                        raise RuntimeError(f"{who} did not serve {url}")
                    cmd = ["wrk", "-t2", "-c32", f"-d{dur}s", *headers, url]
                    w = run(cmd, timeout=dur + 60)
                    fig.commands.append(shown(cmd))
                    found = re.search(r"Requests/sec:\s*([\d.]+)", w.out)
                    res[who] = float(found.group(1)) if found else None
                fig.value, fig.ref_value = res["cyclogram"], res["nginx"]

    def _static(self, events: int, plain: Figure, cond: Figure) -> None:
        """`feeds build --layout urls` served by nginx with the README's server block: every feed, the
        private ones by their token URL, without Python; beside nginx serving the file at a plain path."""
        cfg, state = self.fresh(f"static{events}-cfg"), self.fresh(f"static{events}-state")
        plain.commands.append(shown(synth(cfg, 10, 2, 0, events)))
        out = self.work / f"static{events}-out"
        shutil.rmtree(out, ignore_errors=True)
        env = {"CYCLOGRAM_CONFIG": str(cfg), "CYCLOGRAM_STATE": str(state)}
        r = run([*CLI, "feeds", "build", "--out", str(out), "--layout", "urls"], env, timeout=600)
        plain.commands.append(shown(r.cmd, env))
        if r.rc != 0:
            raise RuntimeError(f"feeds build --layout urls failed: {r.err[-300:]}")
        urls = run([*CLI, "feeds", "urls"], env, timeout=120)
        school = next(line.split("\t") for line in urls.out.splitlines() if line.startswith("school\t"))
        private = "/" + school[2].split("://", 1)[1].split("/", 1)[1]
        plain_copy = out / "plain.ics"  # the same bytes at a plain path, for the reference
        shutil.copyfile(out / private.lstrip("/"), plain_copy)
        os.chmod(self.work, 0o755)
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        block = re.search(r"<!-- nginx:begin -->\s*```nginx\n(.*?)```", readme, re.S)
        if block is None:
            raise RuntimeError("README has no nginx block")
        port = free_port()
        server = block.group(1).replace("listen 80;", f"listen 127.0.0.1:{port};")
        server = re.sub(r"root [^;]+;", f"root {out};", server)
        conf = self.work / f"nginx-static{events}.conf"
        conf.write_text(
            f"worker_processes 1;\ndaemon off;\npid {self.work}/nginx-static.pid;\n"
            f"error_log {self.work}/nginx-static.err;\nevents {{ worker_connections 1024; }}\n"
            f"http {{ access_log off;\n{server}}}\n"
        )
        ngx = [
            "/usr/sbin/nginx",
            "-c",
            str(conf),
            "-p",
            str(self.work),
            "-e",
            str(self.work / "nginx-static.err"),
        ]
        dur = self.size["wrk_s"]
        with start(ngx, port, self.work / "nginx-static.log"):
            plain.commands.append(shown(ngx))
            base = f"http://127.0.0.1:{port}"
            wrong = private[: -len(".ics") - 1] + ("A" if private[-len(".ics") - 1] != "A" else "B") + ".ics"
            if _status(base + wrong, {}) != 404 or _status(base + private, {}) != 200:
                raise RuntimeError(
                    "the static layout does not answer a token URL with 200 and a wrong one with 404"
                )
            size = (out / private.lstrip("/")).stat().st_size
            plain.notes.append(
                f"school feed {size / 1e3:.0f} kB at its token URL (a wrong token: 404); wrk -t2 -c32 -d{dur}s"
            )
            for fig, conditional in ((plain, False), (cond, True)):
                res = {}
                for who, path in (("static", private), ("plain", "/plain.ics")):
                    url = base + path
                    headers = []
                    if conditional:
                        etag = _etag(url)
                        if not etag or _status(url, {"If-None-Match": etag}) != 304:
                            raise RuntimeError(f"nginx did not answer 304 at {path}")
                        headers = ["-H", f"If-None-Match: {etag}"]
                    cmd = ["wrk", "-t2", "-c32", f"-d{dur}s", *headers, url]
                    w = run(cmd, timeout=dur + 60)
                    fig.commands.append(shown(cmd).replace(private, "/schools/<id>/<token>.ics"))
                    found = re.search(r"Requests/sec:\s*([\d.]+)", w.out)
                    res[who] = float(found.group(1)) if found else None
                fig.value, fig.ref_value = res["static"], res["plain"]

    # -- the year -----------------------------------------------------------------------------------------
    def year(self) -> None:
        figs = [
            self.figure(
                "the year",
                "`simulate` of the example's year",
                unit="s",
                target="< 5 s",
                higher_is_better=False,
            ),
        ]
        if self.size["synth_year"]:
            figs.append(
                self.figure(
                    "the year",
                    "`simulate` of a 100-school, 20-meeting synthetic year",
                    unit="s",
                    target="< 60 s",
                    higher_is_better=False,
                )
            )
        if not self.need(figs[0], "simulate"):
            for f in figs[1:]:
                f.missing = figs[0].missing
            return
        self.guarded(figs[0], lambda: self._year(figs[0], ROOT / "config", 5))
        if len(figs) > 1:
            cfg = self.fresh("year-cfg")
            figs[1].commands.append(shown(synth(cfg, 100, 10, 20, 60)))
            self.guarded(figs[1], lambda: self._year(figs[1], cfg, 60))

    def _year(self, fig: Figure, cfg: Path, limit: float) -> None:
        name = cfg.name
        mail = self.fresh(f"year-{name}-mail")
        env = {
            "CYCLOGRAM_CONFIG": str(cfg),
            "CYCLOGRAM_STATE": str(self.fresh(f"year-{name}-state")),
            "CYCLOGRAM_MAILDIR": str(mail),
        }
        bound = limit * 3 if self.mode == "quick" else limit * 10
        r = run([*CLI, "simulate", "--from", "2020-09-01", "--to", "2021-08-31"], env, timeout=bound)
        fig.commands.append(shown(r.cmd, env))
        if r.timed_out:
            fig.notes.append(f"stopped after {bound:.0f} s, unfinished (the bound of this mode)")
        messages = sum(1 for p in mail.rglob("*") if p.is_file() and p.parent.name in ("new", "cur"))
        fig.value = r.wall
        fig.ok = r.rc == 0 and r.wall < limit
        fig.notes.append(f"{messages:,} messages in the Maildir, exit {r.rc}, peak RSS {r.maxrss_mb:.0f} MB")
        if r.rc != 0:
            fig.notes.append(r.err.strip()[-300:])

    # -- growth and memory with the roster -----------------------------------------------------------------
    def scale(self) -> None:
        """Time and peak memory of validate, send, feeds build and run as the roster grows."""
        sizes = self.size["growth"]
        for n in sizes:
            self.guarded("growth", lambda n=n: self._scale(n))
        top = max(sizes)
        for command in ("validate", "send", "feeds build", "run"):
            fig = self.figure(
                "memory",
                f"peak RSS of `{command}` at {top:,} recipients",
                unit="MB",
                higher_is_better=False,
                target="< 300 MB",
            )
            got = self.growth.get(command, {}).get(top)
            if got is None:
                fig.missing = "not measured (see the growth table)"
                continue
            fig.value = got[1]
            fig.ok = got[1] < 300
        fig = self.figure(
            "memory", f"`validate` of {top:,} schools", unit="s", higher_is_better=False, target="< 5 s"
        )
        got = self.growth.get("validate", {}).get(top)
        if got is None:
            fig.missing = "not measured (see the growth table)"
        else:
            fig.value = got[0]
            fig.ok = got[0] < 5

    def _scale(self, n: int) -> None:
        cfg = self.work / f"raw{n}-cfg"
        if not (cfg / "project.yaml").exists():
            cfg = self.fresh(f"scale{n}-cfg")
            synth(cfg, n, max(1, n // 100), 1, 0)
        en = [*CLI, "--lang", "en", "--config", str(cfg)]
        self.say(f"growth: validate {n}")
        r = run([*en, "validate"], timeout=3600)
        if r.rc != 0:
            raise RuntimeError(f"validate failed: {r.err[-300:]}")
        self.growth.setdefault("validate", {})[n] = (r.wall, r.maxrss_mb)
        if n not in self.growth.get("send", {}):
            port = free_port()
            with start(self.sink_cmd(port), port, self.work / f"sink-scale{n}.log"):
                self.say(f"growth: send {n}")
                r = run(self.send_cmd(), self.smtp_env(cfg, self.fresh(f"scale{n}-send"), port), timeout=3600)
            if r.rc != 0:
                raise RuntimeError(f"send failed: {r.err[-300:]}")
            self.growth.setdefault("send", {})[n] = (r.wall, r.maxrss_mb)
        self.say(f"growth: feeds build {n}")
        out = self.work / f"scale{n}-feeds"
        shutil.rmtree(out, ignore_errors=True)
        r = run(
            [*en, "--state", str(self.fresh(f"scale{n}-fstate")), "feeds", "build", "--out", str(out)],
            timeout=3600,
        )
        if r.rc != 0:
            raise RuntimeError(f"feeds build failed: {r.err[-300:]}")
        self.growth.setdefault("feeds build", {})[n] = (r.wall, r.maxrss_mb)
        shutil.rmtree(out, ignore_errors=True)
        self.say(f"growth: run {n}")
        self.growth.setdefault("run", {})[n] = self._run_service(cfg, n)

    def _run_service(self, cfg: Path, n: int) -> tuple[float, float]:
        """`cyclogram run` on a clock where the invitation is due: seconds until all n are sent, peak RSS."""
        plan = run([*CLI, "--lang", "en", "--config", str(cfg), "plan", "--json"], timeout=3600)
        due = next(e["at"] for e in json.loads(plan.out)["entries"] if e["kind"] == "invitation")
        now = (datetime.fromisoformat(due) + timedelta(minutes=1)).isoformat()
        port = free_port()
        with start(self.sink_cmd(port), port, self.work / f"sink-run{n}.log"):
            env = {**os.environ, **self.smtp_env(cfg, self.fresh(f"scale{n}-rstate"), port)}
            cmd = [*CLI, "--lang", "en", "--now", now, "run", "--port", "0"]
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            sent, done = 0, None
            assert proc.stdout is not None
            for line in proc.stdout:
                if b"action=sent " in line:
                    sent += 1
                    if sent >= n:
                        done = time.perf_counter() - t0
                        break
                if time.perf_counter() - t0 > 3600:
                    break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain until it exits
            _, _, usage = os.wait4(proc.pid, 0)
        if done is None:
            raise RuntimeError(f"run sent {sent} of {n} within the bound")
        return done, usage.ru_maxrss / 1024

    # -- drills -------------------------------------------------------------------------------------------
    def drill(self, name: str, fn: Callable[[list[str]], bool | None]) -> None:
        notes: list[str] = []
        try:
            ok = fn(notes)
        except Exception as exc:
            ok = False
            notes.append(f"error: {exc!r}")
            self.log.append(f"{name}: {traceback.format_exc()[-800:]}")
        self.drills.append(
            (
                name,
                ok,
                "; ".join(n for n in notes if not n.startswith("$ ")),
                [n[2:] for n in notes if n.startswith("$ ")],
            )
        )
        self.say(f"drill {name}: {'PASS' if ok else 'FAIL' if ok is False else 'NOT RUN'}")

    def faulty_drill(self, notes: list[str]) -> bool | None:
        if not cli_has("send"):
            notes.append("`cyclogram send` does not exist yet")
            return None
        n = self.size["faulty"]
        cfg, state = self.fresh("faulty-cfg"), self.fresh("faulty-state")
        notes.append("$ " + shown(synth(cfg, n, max(1, n // 100), 1, 0)))
        record = self.work / "faulty.jsonl"
        record.unlink(missing_ok=True)
        sink = self.recorder(
            record, "--fail-data", "0.2", "--drop", "0.05", "--reject-pct", "1", "--seed", "7"
        )
        expected = {f"head@school-{i:0{max(4, len(str(n)))}d}.example.org" for i in range(1, n + 1)}
        bad = {a for a in expected if rejected(a, 1)}
        with start(sink, None, self.work / "faulty.log", port_from_stdout=True) as srv:
            notes.append("$ " + shown(sink))
            env = self.smtp_env(cfg, state, srv.port)
            # a first retry after 1 s instead of 15 (doubling as usual), so a drill of thousands ends in minutes
            env["CYCLOGRAM_SMTP_RETRY_SECONDS"] = "1"
            rounds = 0
            deadline = time.monotonic() + (120 if self.mode == "quick" else 3600)
            while rounds < 6 and time.monotonic() < deadline:
                rounds += 1
                if rounds > 1 and cli_has("outbox", "retry"):
                    run([*CLI, "outbox", "retry"], env, timeout=300)
                r = run(self.send_cmd(), env, timeout=max(60, deadline - time.monotonic()))
                if rounds == 1:
                    notes.append("$ " + shown(r.cmd, env))
                got = Counter(a.lower() for e in self.records(record) if e["ev"] == "msg" for a in e["rcpt"])
                if (expected - bad) <= set(got):
                    break
            out = run([*CLI, "outbox", "--json"], env, timeout=300) if cli_has("outbox") else None
        events = self.records(record)
        got = Counter(a.lower() for e in events if e["ev"] == "msg" for a in e["rcpt"])
        missing = (expected - bad) - set(got)
        dupes = {a: c for a, c in got.items() if c > 1}
        wrongly = bad & set(got)
        reported = {a for a in bad if out is not None and a in out.out}
        n451 = sum(1 for e in events if e["ev"] == "451")
        drops = sum(1 for e in events if e["ev"] == "drop")
        notes.append(
            f"{n:,} recipients, {len(bad)} rejected with 550, {n451} DATA answered 451, {drops} connections dropped, "
            f"{rounds} run(s) of send; {len(got)} received, {len(missing)} missing, {len(dupes)} with more than one "
            f"copy, {len(reported)}/{len(bad)} rejections reported by `outbox --json`"
        )
        if missing:
            notes.append("missing e.g. " + ", ".join(sorted(missing)[:3]))
        if missing and not dupes and not wrongly and time.monotonic() >= deadline:
            notes.append("unfinished within this mode's bound (retries still backing off): no verdict")
            return None
        return not missing and not dupes and not wrongly and len(reported) == len(bad)

    def kill_drill(self, notes: list[str]) -> bool | None:
        if not cli_has("send"):
            notes.append("`cyclogram send` does not exist yet")
            return None
        n = self.size["kill"]
        cfg, state = self.fresh("kill-cfg"), self.fresh("kill-state")
        notes.append("$ " + shown(synth(cfg, n, max(1, n // 100), 1, 0)))
        record = self.work / "kill.jsonl"
        record.unlink(missing_ok=True)
        rnd = random.Random(9)
        kills: list[float] = []
        # Each kill comes when the server has taken a random share of the mailing, so that every kill lands
        # mid-delivery at any size (a fixed delay would fall in the configuration's loading at 100,000).
        marks = sorted(int(rnd.uniform(0.02, 0.9) * n) for _ in range(5))
        with start(
            self.recorder(record, "--delay-ms", "1"), None, self.work / "kill.log", port_from_stdout=True
        ) as srv:
            env = self.smtp_env(cfg, state, srv.port)
            notes.append(
                "$ "
                + shown(self.send_cmd(), env)
                + "   (killed with SIGKILL 5 times, each when the server had "
                "taken a random share of the mailing, then run to the end)"
            )
            finished_early = 0
            counter = _MsgCounter(record)
            for mark in marks:
                proc = subprocess.Popen(
                    self.send_cmd(),
                    env={**os.environ, **env},
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                deadline = time.monotonic() + (300 if self.mode == "quick" else 3600)
                while proc.poll() is None and counter.count() < mark and time.monotonic() < deadline:
                    time.sleep(0.02)
                if proc.poll() is not None:
                    finished_early += 1
                else:
                    kills.append(time.time())
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                time.sleep(0.2)  # let the server see the sockets close
            final = run(self.send_cmd(), env, timeout=1800)
        events = self.records(record)
        got = Counter(a.lower() for e in events if e["ev"] == "msg" for a in e["rcpt"])
        expected = {f"head@school-{i:0{max(4, len(str(n)))}d}.example.org" for i in range(1, n + 1)}
        missing = expected - set(got)
        dupes = sum(c - 1 for c in got.values() if c > 1)
        in_flight = 0
        for t in kills:
            opened = sum(1 for e in events if e["ev"] == "open" and e["t"] <= t)
            closed = sum(1 for e in events if e["ev"] == "close" and e["t"] <= t)
            in_flight += opened - closed
        notes.append(
            f"{n:,} recipients, {len(kills)} kills mid-delivery ({finished_early} runs finished before their kill), "
            f"final run exit {final.rc}; {len(missing)} lost, {dupes} duplicates, {in_flight} connections in flight "
            "at the kills"
        )
        return not missing and dupes <= in_flight and len(kills) > 0

    def fuzz_drill(self, notes: list[str]) -> bool:
        count, sample = self.size["fuzz"], self.size["fuzz_cli"]
        samples = self.fresh("fuzz-samples")
        cmd = [
            PY,
            str(BENCH / "fuzz_config.py"),
            "--count",
            str(count),
            "--sample",
            str(sample),
            "--sample-out",
            str(samples),
        ]
        r = run(cmd, timeout=1800)
        notes.append("$ " + shown(cmd))
        if r.rc != 0:
            notes.append(f"fuzzer failed: {r.err[-300:]}")
            return False
        res = json.loads(r.out)
        cli_bad = []
        for variant in sorted(samples.iterdir()):
            # English, so that the check below reads the same words whatever the machine's locale
            c = run([*CLI, "--lang", "en", "--config", str(variant), "validate"], timeout=120)
            if c.rc != 2 or "Traceback" in c.err or "problem" not in c.err:
                cli_bad.append(f"{variant.name}: exit {c.rc}: {c.err.strip()[-200:]}")
        notes.append(
            "$ " + shown([*CLI, "--lang", "en", "--config", "VARIANT", "validate"]) + f"   (x{sample})"
        )
        notes.append(
            f"{res['count']} variants from {res['mutation_kinds']} kinds of mutation: {len(res['accepted'])} accepted, "
            f"{len(res['crashed'])} crashed, {len(res['unclear'])} without a located message; "
            f"CLI sample {sample - len(cli_bad)}/{sample} exit 2 with a message and no traceback"
        )
        for item in (res["accepted"] + res["crashed"])[:3]:
            notes.append(f"e.g. {item['mutations']}: {item.get('error', 'accepted')}")
        notes.extend(cli_bad[:3])
        return not res["accepted"] and not res["crashed"] and not res["unclear"] and not cli_bad

    # -- report --------------------------------------------------------------------------------------------
    def write(self, path: Path, started: float, argv: list[str]) -> None:
        cores = os.cpu_count()
        cpu = _cpu_model()
        lines = [
            "# Benchmark results",
            "",
            f"Written by `bench/run{' ' + ' '.join(argv) if argv else ''}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
            f"in {time.monotonic() - started:.0f} s ({self.mode} mode).",
            f"Machine: {cores} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}.",
            "Every ratio compares two figures measured side by side in this same run on this machine; absolute",
            "times on a shared machine are noise. All traffic stays on 127.0.0.1.",
            "",
            "| figure | cyclogram | reference | ratio | target | verdict |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in self.figures:
            val = "not measured" if f.missing else _num(f.value, f.unit)
            ref = f"{_num(f.ref_value, f.unit)} ({f.ref_name})" if f.ref_name and not f.missing else "-"
            ratio = f"{f.ratio:.2f}" if f.ratio is not None and not f.missing else "-"
            lines.append(f"| {f.section}: {f.name} | {val} | {ref} | {ratio} | {f.target} | {f.verdict} |")
        lines += [
            "",
            f"Cores: {cores} for every figure above. Ratio = cyclogram / reference (for times: reference / "
            "cyclogram), so higher is better.",
            "",
            "## Drills",
            "",
        ]
        for name, ok, text, _ in self.drills:
            verdict = "PASS" if ok else "FAIL" if ok is False else "NOT RUN"
            lines.append(f"- **{verdict}** {name}: {text}")
        if self.growth:
            lines += ["", *_growth_table(self.growth)]
        notes = BENCH / "OPTIMISATIONS.md"  # kept by hand: what each change bought, measured before and after
        if notes.exists():
            lines += ["", notes.read_text(encoding="utf-8").rstrip()]
        lines += ["", "## How each figure was made", ""]
        for f in self.figures:
            lines.append(f"### {f.section}: {f.name}")
            lines.append("")
            if f.missing:
                lines.append(f"Not measured: {f.missing}")
            for note in f.notes:
                lines.append(f"- {note}")
            if f.commands:
                lines += ["", "```", *f.commands, "```"]
            lines.append("")
        for name, _, _, cmds in self.drills:
            if cmds:
                lines += [f"### drill: {name}", "", "```", *cmds, "```", ""]
        if self.profiles:
            lines += ["## Profiles (pyinstrument): where the time goes", ""]
            for what, cmd, text in self.profiles:
                lines += [f"### {what}", "", f"`{cmd}`", "", "```", text, "```", ""]
        else:
            lines += [
                "## Profiles",
                "",
                "Not profiled in this run (`bench/run --profile`, or the full mode, adds them).",
                "",
            ]
        if self.log:
            lines += ["## Errors met while measuring", "", "```", *self.log, "```", ""]
        # The PostgreSQL drills (bench/pg_drill.py) keep their own section; a run of this script keeps it too.
        begin, end = "<!-- postgres:begin -->", "<!-- postgres:end -->"
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if begin in old and end in old:
            lines += ["", old[old.index(begin) : old.index(end) + len(end)]]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _growth_table(growth: dict[str, dict[int, tuple[float, float]]]) -> list[str]:
    """Time and memory per command and roster size, with the exponent k of growth (time ~ n^k)."""
    sizes = sorted({n for per in growth.values() for n in per})
    lines = [
        "## Growth with the roster",
        "",
        "Wall time and peak RSS of each command on synthetic configurations of N schools (one head each, N/100",
        "teams, one meeting addressed to all); `send` and `run` deliver the invitation to all N into smtp-sink,",
        "`run` timed from its start to the last message accepted. The exponent k is log(t2/t1) / log(n2/n1)",
        "between the first and the last size: 1.0 is linear, below 1 means fixed costs still dominate.",
        "",
        "| command | " + " | ".join(f"{n:,}" for n in sizes) + " | time exponent | memory exponent |",
        "| --- | " + " | ".join("---" for _ in sizes) + " | --- | --- |",
    ]
    for command, per in growth.items():
        cells = [f"{per[n][0]:.2f} s, {per[n][1]:.0f} MB" if n in per else "-" for n in sizes]
        have = sorted(per)
        if len(have) >= 2:
            (n1, (t1, m1)), (n2, (t2, m2)) = (have[0], per[have[0]]), (have[-1], per[have[-1]])
            k_t = f"{math.log(t2 / t1) / math.log(n2 / n1):.2f}" if t1 > 0 and t2 > 0 else "-"
            k_m = f"{math.log(m2 / m1) / math.log(n2 / n1):.2f}" if m1 > 0 and m2 > 0 else "-"
        else:
            k_t = k_m = "-"
        lines.append(f"| `{command}` | " + " | ".join(cells) + f" | {k_t} | {k_m} |")
    return lines


class _MsgCounter:
    """Messages a recorder has accepted so far, read incrementally from its growing JSON-lines file."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.seen = 0
        self.tail = b""

    def count(self) -> int:
        if self.path.exists():
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
            self.offset += len(chunk)
            data = self.tail + chunk
            lines = data.split(b"\n")
            self.tail = lines.pop()
            self.seen += sum(1 for ln in lines if b'"ev": "msg"' in ln)
        return self.seen


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}" if value >= 1 else f"{value:.3f} {unit}"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _top_of_profile(text: str, keep: int = 45) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[:keep])


def _request(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _status(url: str, headers: dict[str, str]) -> int:
    return _request(url, headers)[0]


def _etag(url: str) -> str | None:
    _, headers = _request(url, {})
    return headers.get("ETag") or headers.get("Etag")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, about two minutes (the CI smoke check)")
    p.add_argument(
        "--profile", action="store_true", help="also profile send and feeds build (always in full mode)"
    )
    p.add_argument(
        "--only", help="comma-separated parts: raw,relay,feeds,serve,year,scale,faulty,kill,fuzz,auth"
    )
    p.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = p.parse_args(argv)
    mode = "quick" if args.quick else "full"
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="cyclogram-bench-"))
    bench = Bench(mode, work, profile=args.profile or mode == "full")
    parts = {
        "raw": bench.raw_delivery,
        "relay": bench.relay,
        "feeds": bench.feed_build,
        "serve": bench.serving,
        "year": bench.year,
        "scale": bench.scale,
        "faulty": lambda: bench.drill(
            "faulty sink (20% of DATA 451, 5% of connections dropped)", bench.faulty_drill
        ),
        "kill": lambda: bench.drill("kill -9 at five random moments, then a rerun", bench.kill_drill),
        "fuzz": lambda: bench.drill("malformed configurations", bench.fuzz_drill),
        "auth": lambda: bench.drill(
            "SMTP login refused under `run`, then put right",
            lambda notes: auth_drill(notes, bench.fresh("auth")),
        ),
    }
    wanted = args.only.split(",") if args.only else list(parts)
    try:
        for name in wanted:
            bench.say(f"--- {name}")
            try:
                parts[name]()
            except Exception:
                bench.log.append(f"{name}: {traceback.format_exc()[-800:]}")
    finally:
        bench.write(args.out, started, sys.argv[1:] if argv is None else argv)
        shutil.rmtree(work, ignore_errors=True)
    bench.say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
