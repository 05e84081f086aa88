"""A throwaway PostgreSQL server for the tests: Debian's initdb and pg_ctl in a temporary folder."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = ["PgServer", "find_bin", "schema_url", "start_server"]

TEST_URL_ENV = "CYCLOGRAM_TEST_DATABASE_URL"


def find_bin(name: str) -> str | None:
    """initdb and pg_ctl live in /usr/lib/postgresql/<major>/bin on Debian, not on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


@dataclass
class PgServer:
    """A running server listening on a Unix socket in its own folder (no TCP port to collide on)."""

    root: Path
    socket_dir: Path
    port: int
    user: str
    _as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@/postgres?host={quote(str(self.socket_dir))}&port={self.port}"

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        subprocess.run(
            [*self._as_user, pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(port: int = 5432) -> PgServer:
    """initdb and pg_ctl refuse to run as root: as root they run as the `postgres` user."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("PostgreSQL's initdb/pg_ctl are not installed (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="cyclogram-pg-"))
    as_user: list[str] = []
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    data, sockets = root / "data", root / "sockets"
    subprocess.run([*as_user, "mkdir", str(sockets)], check=True)
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8",
         "--locale=C.UTF-8"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = (
        f"-c listen_addresses='' -c unix_socket_directories={sockets} -p {port} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    result = subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log}")
    return PgServer(root, sockets, port, user, as_user)


def schema_url(base_url: str) -> tuple[str, str]:
    """A fresh schema on the server, and a URL whose connections use only it: one test, one schema."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options={quote(f'-csearch_path={name}')}", name
