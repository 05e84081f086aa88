"""A real Dovecot IMAP server for tests: unprivileged, in a temporary folder, on a free port."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DOVECOT", "ImapServer", "dovecot_available", "run_dovecot"]

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
# Dovecot refuses to start as root without its system users; as root the fixture runs it as `nobody`.
_UNPRIVILEGED = "nobody"


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    username: str
    password: str
    root: Path
    tls_port: int | None = None  # implicit TLS (imaps), when started with a certificate

    def env(self, **extra: str) -> dict[str, str]:
        """The CYCLOGRAM_IMAP_* variables that point cyclogram at this server."""
        return {
            "CYCLOGRAM_IMAP_HOST": self.host,
            "CYCLOGRAM_IMAP_PORT": str(self.port),
            "CYCLOGRAM_IMAP_SECURITY": "none",
            "CYCLOGRAM_IMAP_USERNAME": self.username,
            "CYCLOGRAM_IMAP_PASSWORD": self.password,
            **extra,
        }


def dovecot_available() -> bool:
    return Path(DOVECOT).exists()


def _free_port() -> int:
    # Dovecot cannot listen on port 0 and report the port; a port just released is tried, and a
    # collision with another process shows as a failed start, which `run_dovecot` retries.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, port: int, user: str, group: str, uid: int, gid: int, tls_port: int | None) -> str:
    if tls_port is None:
        ssl_lines, imaps = "ssl = no", "port = 0"
    else:
        ssl_lines = f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"
        imaps = f"address = 127.0.0.1\n    port = {tls_port}"
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_lines}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    user = {user}
    mode = 0600
  }}
  unix_listener stats-writer {{
    user = {user}
    mode = 0600
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""


def _wait_ready(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            greeting = s.recv(200)
            if greeting.startswith(b"* OK"):
                return True
        time.sleep(0.05)  # polling a starting server, not timing the test
    return False


@contextlib.contextmanager
def run_dovecot(
    username: str = "organizer@example.org",
    password: str = "secret",
    *,
    tls: tuple[bytes, bytes] | None = None,
) -> Iterator[ImapServer]:
    """Start Dovecot in the foreground with a config in a temporary folder; stop and remove it after.

    With `tls` (certificate and key, PEM), it offers STARTTLS on its port and implicit TLS on `tls_port`.
    """
    root = Path(tempfile.mkdtemp(prefix="cyclogram-dovecot-"))
    account = pwd.getpwnam(_UNPRIVILEGED) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    group = grp.getgrgid(account.pw_gid).gr_name
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    (root / "passwd").write_text(f"{username}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
    if tls is not None:
        (root / "cert.pem").write_bytes(tls[0])
        (root / "key.pem").write_bytes(tls[1])
    for path in (root, *root.rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(5):
            port = _free_port()
            tls_port = _free_port() if tls is not None else None
            conf = root / "dovecot.conf"
            conf.write_text(
                _config(root, port, account.pw_name, group, account.pw_uid, account.pw_gid, tls_port),
                encoding="utf-8",
            )
            os.chown(conf, account.pw_uid, account.pw_gid)
            kwargs = {}
            if os.geteuid() == 0:
                kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=root,
                **kwargs,  # type: ignore[arg-type]
            )
            if _wait_ready(port, proc, time.monotonic() + 20):
                break
            _stop(proc)
            proc = None
        if proc is None:
            log = (
                (root / "dovecot.log").read_text(errors="replace") if (root / "dovecot.log").exists() else ""
            )
            raise RuntimeError(f"Dovecot did not start:\n{log[-3000:]}")
        yield ImapServer("127.0.0.1", port, username, password, root, tls_port)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
