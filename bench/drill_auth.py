"""Drill: an SMTP server that refuses the login under `cyclogram run`, then the credentials are put right."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.smtp_server import Recorder, SMTPServer  # noqa: E402

__all__ = ["drill", "main"]

NOW = "2020-09-11T10:00+03:00"  # the example's invitation (6 recipients) is due
warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's notes on the drill's plain AUTH


class Service:
    """`cyclogram run` as a process, its output collected line by line as it comes."""

    def __init__(self, env: dict[str, str]):
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), "--lang", "en", "--now", NOW, "run", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def wait_for(self, predicate: Callable[[], bool], seconds: float = 60) -> float | None:
        """Seconds since start when `predicate` first held, or None if it never did (or the process ended)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def line(self, pattern: str) -> tuple[float, str] | None:
        return next(((t, s) for t, s in self.lines if re.search(pattern, s)), None)

    def health(self) -> tuple[int, str]:
        found = self.line(r"Serving the feeds at http://[^:]+:(\d+)/")
        if found is None:
            return 0, "not serving"
        port = re.search(r":(\d+)/", found[1]).group(1)  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return r.status, r.read().decode().strip()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode().strip()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def drill(notes: list[str], work: Path) -> bool:
    """Refused login → an ERROR line within seconds and /healthz 503; fixed → everything once, /healthz 200."""
    config, state = work / "config", work / "var"
    shutil.copytree(ROOT / "config", config)
    recorder = Recorder()
    ok = True
    with SMTPServer(recorder, credentials=("cyclogram", "right"), auth_require_tls=False) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
        env.update(
            CYCLOGRAM_CONFIG=str(config), CYCLOGRAM_STATE=str(state), CYCLOGRAM_SMTP_HOST="127.0.0.1",
            CYCLOGRAM_SMTP_PORT=str(server.port), CYCLOGRAM_SMTP_SECURITY="none",
            CYCLOGRAM_SMTP_USERNAME="cyclogram", CYCLOGRAM_SMTP_PASSWORD="wrong",
            CYCLOGRAM_SMTP_ALLOW_PLAIN_AUTH="1", CYCLOGRAM_SMTP_RETRY_SECONDS="1", PYTHONUNBUFFERED="1",
        )  # fmt: skip

        # 1. The wrong password: loud at once, the service stays up and says why.
        service = Service(env)
        at = service.wait_for(lambda: service.line(r"ERROR .*535") is not None, 30)
        service.wait_for(lambda: service.health()[0] != 0, 30)
        status, text = service.health()
        outbox = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--lang", "en", "outbox"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        code = service.stop()
        first = outbox.stdout.splitlines()[0] if outbox.stdout else ""
        notes.append(
            f"wrong password: ERROR line after {at:.1f} s"
            if at is not None
            else "wrong password: no ERROR line"
        )
        notes.append(f"/healthz {status} {text!r}; outbox: {first!r}; SIGTERM exit {code}")
        ok &= (
            at is not None
            and at < 10
            and status == 503
            and "535" in text
            and first.startswith("Delivery is stopped")
        )
        ok &= not recorder.accepted and "Traceback" not in "\n".join(s for _, s in service.lines)

        # 2. The password put right in the environment, the service started again.
        env["CYCLOGRAM_SMTP_PASSWORD"] = "right"
        service = Service(env)
        done = service.wait_for(lambda: len(recorder.accepted) >= 6, 60)
        service.wait_for(lambda: service.health()[0] == 200, 30)
        status, _ = service.health()
        code = service.stop()
        notes.append(
            f"right password: all delivered after {done:.1f} s"
            if done
            else "right password: not all delivered"
        )
        ok &= done is not None and status == 200 and code == 0

        # 3. The server's password changed while the service runs, then put back: SIGHUP tries at once.
        server.credentials = ("cyclogram", "rotated")
        shutil.rmtree(state)
        service = Service(env)
        stopped = service.wait_for(lambda: service.health()[0] == 503 and "535" in service.health()[1], 30)
        server.credentials = ("cyclogram", "right")
        service.proc.send_signal(signal.SIGHUP)
        before = len(recorder.accepted)
        resumed = service.wait_for(lambda: len(recorder.accepted) >= before + 6, 30)
        code = service.stop()
        notes.append(
            f"rotated on the server: 503 after {stopped or 0:.1f} s; after SIGHUP delivered at {resumed or 0:.1f} s"
        )
        ok &= stopped is not None and resumed is not None and code == 0
    copies = Counter(a.recipients[0] for a in recorder.accepted[:6])
    twice = [r for r, n in copies.items() if n > 1]
    notes.append(f"{len(copies)} recipients in runs 1-2, {len(twice)} with more than one copy")
    return bool(ok and len(copies) == 6 and not twice)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cyclogram-drill-auth-"))
    notes: list[str] = []
    try:
        ok = drill(notes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for note in notes:
        print(note)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
