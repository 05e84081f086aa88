"""Shared pieces of the benchmarks: processes with their peak memory, free ports, servers, the CLI."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BENCH",
    "CLI",
    "PY",
    "ROOT",
    "Figure",
    "Run",
    "Server",
    "cli_has",
    "free_port",
    "run",
    "shown",
    "start",
    "synth",
    "wait_port",
]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
CLI = [PY, str(ROOT / "cli.py")]


def shown(cmd: list[str], env: dict[str, str] | None = None) -> str:
    """The command as a user would type it, with the environment it needed; paths shortened."""
    words = [w.replace(str(ROOT) + "/", "") for w in cmd]
    if words[:2] == [PY, "cli.py"]:
        words = ["cyclogram", *words[2:]]
    elif words and words[0] == PY:
        words[0] = "python"
    prefix = [f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items())]
    return " ".join([*prefix, *(shlex.quote(w) for w in words)])


@dataclass
class Run:
    cmd: list[str]
    rc: int
    out: str
    err: str
    wall: float
    maxrss_mb: float
    timed_out: bool = False


def run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None
) -> Run:
    """Run to completion (or kill at `timeout`); the child's own peak RSS comes from wait4."""
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd or ROOT,
            start_new_session=True,
        )
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            cmd,
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            wall,
            usage.ru_maxrss / 1024,
            timed_out,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


@dataclass
class Server:
    """A background process this run started; stopped by its own pid (and its process group)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@contextlib.contextmanager
def start(
    cmd: list[str],
    port: int | None,
    log: Path,
    env: dict[str, str] | None = None,
    port_from_stdout: bool = False,
) -> Iterator[Server]:
    """Start a server, wait until it listens, stop it on exit."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if port_from_stdout else fh,
            stderr=fh,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            start_new_session=True,
        )
    server = Server(proc, port or 0, log)
    try:
        if port_from_stdout:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()
            if not line.isdigit():
                raise RuntimeError(f"{shown(cmd)} did not start: {log.read_text(errors='replace')[-500:]}")
            server.port = int(line)
        if not wait_port(server.port):
            raise RuntimeError(
                f"{shown(cmd)} did not listen on {server.port}: {log.read_text(errors='replace')[-500:]}"
            )
        yield server
    finally:
        server.stop()


_HELP: dict[str, bool] = {}


def cli_has(*words: str) -> bool:
    """Whether `cyclogram WORDS...` exists yet."""
    key = " ".join(words)
    if key not in _HELP:
        _HELP[key] = run([*CLI, *words, "--help"], timeout=60).rc == 0
    return _HELP[key]


def synth(
    out: Path, schools: int, teams: int, meetings: int, events: int, seed: int = 1, notify: float = 0
) -> list[str]:
    cmd = [
        *CLI,
        "synth",
        "--schools",
        str(schools),
        "--teams",
        str(teams),
        "--meetings",
        str(meetings),
        "--events",
        str(events),
        "--seed",
        str(seed),
        "--notify-share",
        str(notify),
        "--out",
        str(out),
        "--force",
    ]
    r = run(cmd, timeout=300)
    if r.rc != 0:
        raise RuntimeError(f"synth failed: {r.err[-500:]}")
    return cmd


@dataclass
class Figure:
    """One measured figure with its reference, measured side by side."""

    section: str
    name: str
    value: float | None = None
    unit: str = ""
    ref_value: float | None = None
    ref_name: str = ""
    higher_is_better: bool = True
    target: str = ""
    target_ratio: float | None = None  # ratio (ours / reference, or reference / ours when lower is better)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: str | None = None
    ok: bool | None = None  # for targets not stated as ratios

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.ref_value is None or not self.value or not self.ref_value:
            return None
        return self.value / self.ref_value if self.higher_is_better else self.ref_value / self.value

    @property
    def verdict(self) -> str:
        if self.missing:
            return "not measured"
        if self.target_ratio is not None and self.ratio is not None:
            return (
                "met"
                if self.ratio >= self.target_ratio
                else f"MISSED ({self.ratio / self.target_ratio:.2f} of target)"
            )
        if self.ok is not None:
            return "met" if self.ok else "MISSED"
        return "-"
