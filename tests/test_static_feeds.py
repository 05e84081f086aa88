"""Feeds laid out as their URLs, served by a real nginx with the README's configuration."""

from __future__ import annotations

import http.client
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import icalendar
import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import EXAMPLE, ROOT

NOW = "2020-09-11T10:00+03:00"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _run(state: Path, *args: str, config: Path = EXAMPLE):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    env.update(CYCLOGRAM_CONFIG=str(config), CYCLOGRAM_STATE=str(state))
    return CliRunner().invoke(main, ["--now", NOW, *args], env=env, catch_exceptions=False)


def _readme_server_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- nginx:begin -->\s*```nginx\n(.*?)```\s*<!-- nginx:end -->", text, re.S)
    assert match, "README has no nginx block"
    return match.group(1)


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


def _get(sock: str, path: str) -> tuple[int, bytes, str]:
    conn = _UnixHTTP(sock)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, resp.getheader("Content-Type", "")


@pytest.fixture
def nginx():
    """nginx (Debian nginx-light) as an unprivileged process with its own prefix, on a Unix socket."""
    if not os.path.exists(NGINX):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is not installed (Debian package nginx-light)")
        pytest.skip("nginx is not installed (Debian package nginx-light)")
    base = Path(tempfile.mkdtemp(prefix="cyclogram-nginx-"))
    os.chmod(base, 0o755)
    root, prefix = base / "feeds", base / "prefix"
    root.mkdir()
    prefix.mkdir()
    processes: list[subprocess.Popen] = []

    def start() -> str:
        sock = prefix / "nginx.sock"
        server = _readme_server_block().replace("listen 80;", f"listen unix:{sock};")
        server = server.replace("/srv/cyclogram/feeds", str(root))
        conf = f"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 32; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    {server}
}}
"""
        (prefix / "nginx.conf").write_text(conf)
        run_as: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for path in [base, prefix, *root.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            run_as = ["runuser", "-u", "nobody", "--"]
        proc = subprocess.Popen(
            [
                *run_as,
                NGINX,
                "-p",
                str(prefix),
                "-c",
                str(prefix / "nginx.conf"),
                "-e",
                str(prefix / "error.log"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        processes.append(proc)
        deadline = time.monotonic() + 20
        while not sock.exists():  # nginx creates its socket once it listens
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
                raise AssertionError(f"nginx did not start: {proc.stdout.read().decode()} {log}")
            time.sleep(0.02)
        return str(sock)

    yield root, start
    for proc in processes:
        proc.terminate()
        proc.wait(timeout=10)
    shutil.rmtree(base, ignore_errors=True)


def test_nginx_serves_the_url_layout(tmp_path, nginx):
    root, start = nginx
    state = tmp_path / "var"
    built = _run(state, "feeds", "build", "--out", str(root), "--layout", "urls")
    assert built.exit_code == 0, built.output
    urls = _run(state, "feeds", "urls").output.splitlines()
    school_url = next(line.split("\t")[2] for line in urls if line.startswith("school\tschool-1\t"))
    path = "/" + school_url.split("/", 3)[3]
    assert re.fullmatch(r"/schools/school-1/[A-Za-z0-9_-]{32}\.ics", path)
    assert not (root / "schools" / "school-1.ics").exists()  # no private feed without its token
    sock = start()

    status, body, ctype = _get(sock, path)
    assert status == 200 and ctype.startswith("text/calendar")
    served = icalendar.Calendar.from_ical(body)
    ours = _run(state, "feeds", "build", "--out", str(tmp_path / "flat"))
    assert ours.exit_code == 0
    assert body == (tmp_path / "flat" / "schools" / "school-1.ics").read_bytes()  # the same bytes as built
    assert served.walk("VEVENT")

    assert _get(sock, "/project.ics")[0] == 200
    wrong = path[:-8] + ("AAAA" if path[-8:-4] != "AAAA" else "BBBB") + ".ics"
    for bad in (wrong, "/schools/school-1.ics", "/schools/school-1/", "/schools/"):
        assert _get(sock, bad)[0] == 404, bad
    assert _get(sock, "/../var/state.db")[0] == 400  # nginx refuses to climb out of its root

    # A rotated secret revokes the old URL on the static server too.
    assert _run(state, "feeds", "rotate-secret", "--yes").exit_code == 0
    rebuilt = _run(state, "feeds", "build", "--out", str(root), "--layout", "urls")
    assert rebuilt.exit_code == 0 and "revoked removed" in rebuilt.output, rebuilt.output
    assert _get(sock, path)[0] == 404


def test_the_url_layout_refuses_a_tree_with_private_files(tmp_path):
    state = tmp_path / "var"
    assert _run(state, "feeds", "build", "--out", str(tmp_path / "out")).exit_code == 0
    mixed = _run(state, "feeds", "build", "--out", str(tmp_path / "out"), "--layout", "urls")
    assert mixed.exit_code == 1 and "without tokens" in mixed.output
