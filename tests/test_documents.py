"""Meeting documents: a real PDF and DOCX attached with Cyrillic names, linked when too big, ATTACH, served."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import vobject
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from cli import main
from scheduler import mime
from scheduler.config import load_config
from scheduler.errors import ConfigError
from scheduler.feeds import current_feeds
from scheduler.mailings import compose
from scheduler.server import FeedServer
from scheduler.store import SQLiteStore
from scheduler.tokens import document_token
from scheduler.validation import validate_all
from tests.readers import all_readers_agree, outlook_check
from tests.smtp_server import Recorder, SMTPServer

NOW = datetime(2020, 9, 11, 7, 0, tzinfo=UTC)
PLAN = "План организации встречи.pdf"
FORMAT = "Формат основных продуктов.docx"
BIG = "Большая презентация.pdf"
MINUTES = "Протокол заседания.pdf"
SEMINAR = "Программа семинара.pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def minimal_pdf(text: str = "cyclogram", pad: int = 0) -> bytes:
    """A valid one-page PDF written by hand: objects, a cross-reference table with exact offsets."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    if pad:
        out += b"%" + b"x" * pad + b"\n"  # a comment: still valid, just larger
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def minimal_docx(text: str = "Формат продуктов") -> bytes:
    """A Word document with only the parts Word needs: content types, the package rels, the body."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


@pytest.fixture
def documented(config_copy: Path) -> dict[str, bytes]:
    """The example with documents: two attached, one too big (linked), the minutes' one, a private one."""
    files = {
        PLAN: minimal_pdf("plan"),
        FORMAT: minimal_docx(),
        BIG: minimal_pdf("big", pad=300_000),
        MINUTES: minimal_pdf("minutes"),
        SEMINAR: minimal_pdf("seminar"),
    }
    folder = config_copy / "documents"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with (config_copy / "project.yaml").open("a", encoding="utf-8") as fh:
        fh.write("\ndocuments:\n  attach_limit_mb: 0.2\n")
    heads = config_copy / "meetings" / "2020-09-25-heads.yaml"
    text = heads.read_text(encoding="utf-8")
    text = text.replace(
        "minutes:\n  final: true\n", f"minutes:\n  final: true\n  documents:\n    - documents/{MINUTES}\n"
    )
    text += (
        "\ndocuments:\n"
        f'  - file: "documents/{PLAN}"\n    title: "План организации встречи"\n'
        f"  - documents/{FORMAT}\n"
        f"  - file: documents/{BIG}\n    title: Презентация\n"
    )
    heads.write_text(text, encoding="utf-8")
    seminar = config_copy / "meetings" / "2021-01-28-network-seminar.yaml"
    seminar.write_text(
        seminar.read_text(encoding="utf-8") + f"\ndocuments:\n  - documents/{SEMINAR}\n", encoding="utf-8"
    )
    return files


def _attachments(msg: EmailMessage) -> dict[str, EmailMessage]:
    return {part.get_filename(): part for part in msg.iter_attachments()}


def _run(config: Path, state: Path, *args: str, **env: str):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOGRAM_")}
    return CliRunner().invoke(
        main,
        ["--config", str(config), "--state", str(state), "--now", "2020-09-11T10:00+03:00", *args],
        env={**clean, **env},
    )


def test_invitation_carries_documents_with_cyrillic_names(
    config_copy: Path, documented: dict[str, bytes], tmp_path: Path
) -> None:
    rec = Recorder()
    with SMTPServer(rec) as server:
        smtp = {"CYCLOGRAM_SMTP_HOST": "127.0.0.1", "CYCLOGRAM_SMTP_PORT": str(server.port)}
        out = _run(config_copy, tmp_path / "var", "send", "invitation", "heads-2020-09", "--yes", **smtp)
        assert out.exit_code == 0, out.output
    assert len(rec.accepted) == 6
    for accepted in rec.accepted:
        msg = accepted.parse()
        assert msg.get_content_type() == "multipart/mixed"
        first = next(iter(msg.iter_parts()))
        # Outlook reads the invitation from the first child of multipart/mixed: the documents come after.
        assert first.get_content_type() == "multipart/alternative"
        assert "text/calendar" in [p.get_content_type() for p in first.iter_parts()]
        files = _attachments(msg)
        assert set(files) == {"invite.ics", PLAN, FORMAT}
        assert files[PLAN].get_content() == documented[PLAN]
        assert files[PLAN].get_content_type() == "application/pdf"
        assert files[FORMAT].get_content() == documented[FORMAT]
        assert files[FORMAT].get_content_type() == DOCX_TYPE
        assert zipfile.ZipFile(io.BytesIO(files[FORMAT].get_content())).read("word/document.xml")
        for name in (PLAN, FORMAT):
            # Both forms: RFC 2231 for current readers, the RFC 2047 name for old ones.
            assert files[name]["Content-Type"].params["name"] == name
            assert files[name]["Content-Disposition"].params["filename"] == name
        raw = accepted.data.decode("ascii")
        assert 'name="=?utf-8?b?' in raw and "=UTF-8''%D0%9F%D0%BB%D0%B0%D0%BD" in raw
        # The big one is linked: its URL is in both bodies, its bytes are not in the message.
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        url = "https://cyclogram.example.org/documents/heads-2020-09/" + "%D0%91%D0%BE%D0%BB%D1%8C%D1%88"
        assert url in text and url in html
        assert f"План организации встречи (во вложении: {PLAN})" in text or "attached: " + PLAN in text
        assert len(accepted.data) < 100_000
        # The invitation's calendar item carries every document as ATTACH.
        ics = next(p for p in msg.walk() if p.get_content_type() == "text/calendar").get_content()
        attach = Calendar.from_ical(ics).walk("VEVENT")[0].get("ATTACH")
        all_readers_agree(ics.encode() if isinstance(ics, str) else ics)
        assert len(attach) == 4  # three of the meeting, one of its (final) minutes


def test_summary_carries_the_minutes_documents(
    config_copy: Path, documented: dict[str, bytes], tmp_path
) -> None:
    loaded = load_config(config_copy)
    store = SQLiteStore(tmp_path / "state.db")
    messages = compose(loaded, "summary", meeting="heads-2020-09", store=store, now=NOW)
    assert len(messages) == 6
    msg = message_from_bytes(messages[0].message, policy=policy.default)
    files = _attachments(msg)  # type: ignore[arg-type]
    assert set(files) == {MINUTES}
    assert files[MINUTES].get_content() == documented[MINUTES]
    reminder = compose(loaded, "reminder", meeting="heads-2020-09", store=store, now=NOW)
    assert not _attachments(message_from_bytes(reminder[0].message, policy=policy.default))  # type: ignore[arg-type]


def test_attach_link_and_the_size_limit(
    config_copy: Path, documented: dict[str, bytes], tmp_path, edit
) -> None:
    edit(
        "meetings/2020-09-25-heads.yaml",
        f"  - documents/{FORMAT}\n",
        f"  - file: documents/{FORMAT}\n    attach: link\n",
    )
    edit("project.yaml", "attach_limit_mb: 0.2", "attach_limit_mb: 1")
    loaded = load_config(config_copy)
    store = SQLiteStore(tmp_path / "state.db")
    msg = message_from_bytes(
        compose(loaded, "agenda", meeting="heads-2020-09", store=store, now=NOW)[0].message,
        policy=policy.default,
    )
    assert set(_attachments(msg)) == {"invite.ics", PLAN, BIG}  # type: ignore[arg-type]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/documents/heads-2020-09/%D0%A4%D0%BE%D1%80%D0%BC%D0%B0%D1%82" in text


def test_validate_notes_documents_over_the_limit(
    config_copy: Path, documented: dict[str, bytes], tmp_path
) -> None:
    out = _run(config_copy, tmp_path / "var", "validate")
    assert out.exit_code == 0, out.output
    assert (
        f"note: heads-2020-09: invitation: documents/{BIG} (0.3 MB, 0.4 MB as sent) goes as a link"
        in out.output
    )
    assert "may not exceed 0.2 MB (documents.attach_limit_mb in project.yaml)" in out.output
    assert "GB in the outbox" not in out.output


def test_validate_notes_attachments_that_would_fill_the_outbox(
    config_copy: Path, documented: dict[str, bytes], tmp_path, monkeypatch
) -> None:
    from scheduler import documents

    monkeypatch.setattr(documents, "OUTBOX_NOTE", 10_000)
    out = _run(config_copy, tmp_path / "var", "validate")
    assert out.exit_code == 0, out.output
    size = (len(documented[PLAN]) + len(documented[FORMAT])) / 1024 / 1024
    assert f"note: heads-2020-09: invitation: {size:.1f} MB attached to each of 6 messages" in out.output


def _attach_by_reader(ics: bytes) -> dict[str, set[tuple[str, str]]]:
    """(URL, FMTTYPE) of every ATTACH per UID, as each independent reader sees it."""
    out: dict[str, set[tuple[str, str]]] = {}
    got: set[tuple[str, str, str]] = set()
    for ev in Calendar.from_ical(ics).walk("VEVENT"):
        values = ev.get("ATTACH") or []
        for a in values if isinstance(values, list) else [values]:
            got.add((str(ev["UID"]), str(a), a.params["FMTTYPE"]))
    out["icalendar"] = got  # type: ignore[assignment]
    got = set()
    for ev in IcsCalendarStream.calendar_from_ics(ics.decode()).events:
        for a in ev.attach:
            got.add((ev.uid, str(a.uri), a.fmttype))
    out["ical"] = got  # type: ignore[assignment]
    got = set()
    for ev in vobject.readOne(ics.decode()).vevent_list:
        for a in ev.contents.get("attach", []):
            got.add((ev.uid.value, a.value, a.params["FMTTYPE"][0]))
    out["vobject"] = got  # type: ignore[assignment]
    return out


def test_calendar_items_carry_attach_for_every_reader(config_copy: Path, documented, tmp_path) -> None:
    project = load_config(config_copy).project
    store = SQLiteStore(tmp_path / "state.db")
    feeds = current_feeds(store, project, NOW)
    for path in ("project.ics", "schools/school-1.ics", "meetings/heads-2020-09.ics"):
        all_readers_agree(feeds[path].data)  # the ATTACH lines leave every reader's times intact
        outlook_check(feeds[path].data)
    seen = _attach_by_reader(feeds["project.ics"].data)
    assert seen["icalendar"] == seen["ical"] == seen["vobject"]
    urls = {(url, kind) for _, url, kind in seen["icalendar"]}  # type: ignore[misc]
    base = "https://cyclogram.example.org/documents/heads-2020-09/"
    assert (
        base
        + "%D0%9F%D0%BB%D0%B0%D0%BD%20%D0%BE%D1%80%D0%B3%D0%B0%D0%BD%D0%B8%D0%B7%D0%B0%D1%86%D0%B8%D0%B8%20%D0%B2%D1%81%D1%82%D1%80%D0%B5%D1%87%D0%B8.pdf",
        "application/pdf",
    ) in urls
    assert sum(1 for _, kind in urls if kind == DOCX_TYPE) == 1 and len(urls) == 4
    # The seminar is for one team: its document is only in that team's schools' feeds, behind a token.
    assert "network-seminar" not in feeds["project.ics"].data.decode()
    school = _attach_by_reader(feeds["schools/school-1.ics"].data)
    assert school["icalendar"] == school["ical"] == school["vobject"]
    from scheduler.tokens import feed_secret

    token = document_token(feed_secret(store), "network-seminar-2021-01")
    private = {url for _, url, _ in school["icalendar"] if "network-seminar" in url}  # type: ignore[misc]
    assert private == {f"https://cyclogram.example.org/documents/network-seminar-2021-01/{token}/"
                       "%D0%9F%D1%80%D0%BE%D0%B3%D1%80%D0%B0%D0%BC%D0%BC%D0%B0%20%D1%81%D0%B5%D0%BC%D0%B8%D0%BD%D0%B0%D1%80%D0%B0.pdf"}  # fmt: skip


@pytest.fixture
async def served(config_copy: Path, documented, tmp_path: Path) -> AsyncIterator[tuple[FeedServer, str]]:
    server = FeedServer(SQLiteStore(tmp_path / "state.db"), _Clock(), config_copy)
    server.update(load_config(config_copy).project)
    port = await server.start("127.0.0.1", 0)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


class _Clock:
    def now(self) -> datetime:
        return NOW


async def test_server_serves_documents_public_and_behind_tokens(
    served: tuple[FeedServer, str], documented: dict[str, bytes]
) -> None:
    server, base = served
    pub = server.published
    assert pub is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/") as r:
            page = await r.text()
        # The index lists the public meeting's documents, never the team seminar's.
        assert "/documents/heads-2020-09/%D0%9F%D0%BB%D0%B0%D0%BD" in page and "Презентация" in page
        assert "network-seminar-2021-01/" not in page
        links = [u for u in _index_links(page) if "/documents/" in u]
        assert len(links) == 4
        for link in links:
            async with http.get(base + urlsplit(link).path) as r:
                assert r.status == 200, link
                body = await r.read()
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert "sandbox" in r.headers["Content-Security-Policy"]
            assert body in documented.values()
        async with http.get(f"{base}/documents/heads-2020-09/{PLAN}") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/pdf"
            assert await r.read() == documented[PLAN]
        token = document_token(pub.secret, "network-seminar-2021-01")
        async with http.get(f"{base}/documents/network-seminar-2021-01/{token}/{SEMINAR}") as r:
            assert r.status == 200 and await r.read() == documented[SEMINAR]
            assert "private" in r.headers["Cache-Control"]
        for path in (
            f"/documents/network-seminar-2021-01/{SEMINAR}",  # no token
            f"/documents/network-seminar-2021-01/{token[:-1]}x/{SEMINAR}",  # a wrong one
            f"/documents/network-seminar-2021-01/{document_token(pub.secret, 'heads-2020-09')}/{SEMINAR}",
            f"/documents/heads-2020-09/{token}/{PLAN}",  # a public one under a token: one address only
            "/documents/heads-2020-09/participants.yaml",  # only declared documents are served
            "/documents/heads-2020-09/..%2Fparticipants.yaml",
            "/documents/heads-2020-09/../../participants.yaml",
            "/documents/",
        ):
            async with http.get(base + path) as r:
                assert r.status == 404, path


def _index_links(page: str) -> list[str]:
    import re

    return re.findall(r'<li><a href="([^"]+)">', page)


def _problems(config: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate_all(config)
    return [str(p) for p in err.value.problems]


def test_bad_documents_are_located_validation_errors(config_copy: Path, documented, tmp_path, edit) -> None:
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(minimal_pdf())
    (config_copy / "documents" / "link.pdf").symlink_to(outside)
    (config_copy / "other").mkdir()
    (config_copy / "other" / PLAN).write_bytes(b"x")
    edit(
        "meetings/2021-05-27-summing-up.yaml",
        "audience: all\n",
        "audience: all\ndocuments:\n  - documents/нет такого.pdf\n  - documents/link.pdf\n"
        f"  - documents/{PLAN}\n  - other/{PLAN}\n  - documents\n",
    )
    problems = _problems(config_copy)
    file = str(config_copy / "meetings" / "2021-05-27-summing-up.yaml")
    text = (config_copy / "meetings" / "2021-05-27-summing-up.yaml").read_text(encoding="utf-8").splitlines()
    line = text.index("  - documents/нет такого.pdf") + 1
    assert f"{file}:{line}: documents[0].file: documents/нет такого.pdf: no such file" in "\n".join(problems)
    assert any(
        p.startswith(f"{file}:{line + 1}: documents[1].file") and "leads out of the configuration folder" in p
        for p in problems
    )
    assert any(p.startswith(f"{file}:{line + 3}: documents[3].file") and "also named" in p for p in problems)
    assert any(
        p.startswith(f"{file}:{line + 4}: documents[4].file") and "not a regular file" in p for p in problems
    )

    for bad, message in [("../participants.yaml", "leads out of the configuration folder (..)"),
                         ("/etc/passwd", "is absolute")]:  # fmt: skip
        edit("meetings/2021-05-27-summing-up.yaml", "  - documents/нет такого.pdf\n", f"  - {bad}\n")
        problems = _problems(config_copy)
        assert any(p.startswith(f"{file}:{line}: documents[0].file") and message in p for p in problems), (
            problems
        )
        edit("meetings/2021-05-27-summing-up.yaml", f"  - {bad}\n", "  - documents/нет такого.pdf\n")

    out = _run(config_copy, tmp_path / "var", "validate")
    assert out.exit_code == 2 and "no such file" in out.output and "Traceback" not in out.output


_NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/"),
    min_size=1,
    max_size=120,
)


@given(_NAMES.filter(lambda s: s == s.strip()))  # a file name, not padding
def test_attachment_names_decode_back_exactly(name: str) -> None:
    part = mime.attachment("application/pdf", name, b"%PDF")
    body = mime.multipart("mixed", [mime.part('text/plain; charset="utf-8"', b"x"), part], "seed")
    msg = message_from_bytes(b"MIME-Version: 1.0\r\n" + body.data, policy=policy.default)
    attached = next(msg.iter_attachments())  # type: ignore[attr-defined]
    assert attached.get_filename() == name
    assert attached.get_content() == b"%PDF"
    assert all(len(line) <= 998 for line in body.data.split(b"\r\n"))


def test_attachment_refuses_unsafe_names() -> None:
    for name in ("a\r\nBcc: x@example.org.pdf", "a\x00.pdf", "a\x7f.pdf", "a\u2028b.pdf", "a\x85.pdf"):
        with pytest.raises(mime.HeaderValueError, match="control character"):
            mime.attachment("application/pdf", name, b"")


def test_feeds_build_copies_documents_to_their_url_paths(config_copy: Path, documented, tmp_path) -> None:
    out_dir = tmp_path / "site"
    first = _run(config_copy, tmp_path / "var", "feeds", "build", "--out", str(out_dir))
    assert first.exit_code == 0, first.output
    assert "5 documents, 5 written" in first.output
    project = load_config(config_copy).project
    ics = (out_dir / "schools" / "school-1.ics").read_text(encoding="utf-8")
    urls = {str(a) for ev in Calendar.from_ical(ics).walk("VEVENT") for a in _as_list(ev.get("ATTACH"))}
    assert len(urls) == 5
    base = str(project.settings.base_url).rstrip("/")
    for url in urls:
        from urllib.parse import unquote

        local = out_dir / unquote(url.removeprefix(base).lstrip("/"))
        assert local.read_bytes() in documented.values(), url
    again = _run(config_copy, tmp_path / "var", "feeds", "build", "--out", str(out_dir))
    assert "5 documents, 0 written" in again.output


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian package chromium is not installed")
async def test_index_lists_public_documents_in_chromium(
    config_copy: Path, documented, tmp_path, edit
) -> None:
    import asyncio
    import shutil

    edit(
        "meetings/2020-09-25-heads.yaml",
        "title: Презентация",
        'title: "<script>alert(1)</script> Презентация"',
    )
    server = FeedServer(SQLiteStore(tmp_path / "state.db"), _Clock(), config_copy)
    server.update(load_config(config_copy).project)
    port = await server.start("127.0.0.1", 0)
    profile = tmp_path / "chromium-profile"
    try:
        proc = await asyncio.create_subprocess_exec(
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--dump-dom", f"http://127.0.0.1:{port}/",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await server.stop()
        shutil.rmtree(profile, ignore_errors=True)
    dom = out.decode("utf-8")
    meeting = dom.split('id="heads-2020-09"')[1].split("</li>\n")[0]
    assert '<ul class="documents">' in meeting
    titles = [t for t in _titles(meeting)]
    assert titles[:2] == ["План организации встречи", FORMAT]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Презентация" in meeting and "<script>alert" not in dom
    assert "Программа семинара" not in dom  # the team seminar's document is not public


def _titles(html: str) -> list[str]:
    import re

    return re.findall(r'<li><a href="[^"]+">([^<]+)</a></li>', html)


def test_document_paths_in_the_model() -> None:
    from pydantic import ValidationError

    from scheduler.model import Document

    assert Document.model_validate("documents\\План.docx").file == "documents/План.docx"  # typed on Windows
    assert Document.model_validate({"file": "a.pdf"}).attach == "auto"
    for bad in ("../a.pdf", "/etc/passwd", "C:/docs/a.pdf", "docs/", "a\x00.pdf", "docs/../../a.pdf", ".",
                "a\u2028b.pdf", "a\x85.pdf"):  # fmt: skip
        with pytest.raises(ValidationError):
            Document.model_validate(bad)


def test_adding_a_document_raises_the_sequence(config_copy: Path, tmp_path: Path, edit) -> None:
    store = SQLiteStore(tmp_path / "state.db")

    def sequence() -> int:
        feeds = current_feeds(store, load_config(config_copy).project, NOW)
        event = next(
            e for e in Calendar.from_ical(feeds["meetings/summing-up-2021-05.ics"].data).walk("VEVENT")
        )
        return int(event["SEQUENCE"])

    before = sequence()
    (config_copy / "documents").mkdir()
    (config_copy / "documents" / PLAN).write_bytes(minimal_pdf())
    edit(
        "meetings/2021-05-27-summing-up.yaml",
        "audience: all\n",
        f"audience: all\ndocuments:\n  - documents/{PLAN}\n",
    )
    assert sequence() == before + 1
    assert sequence() == before + 1  # and stays there while nothing else changes


def test_the_limit_counts_files_as_sent(config_copy: Path, tmp_path: Path, edit) -> None:
    from scheduler.documents import plan_documents, sent_size

    (config_copy / "documents").mkdir()
    for name in ("a.pdf", "b.pdf"):
        (config_copy / "documents" / name).write_bytes(minimal_pdf(pad=300_000))
    size = (config_copy / "documents" / "a.pdf").stat().st_size
    assert sent_size(size) > size * 4 // 3  # base64 and its line breaks
    edit(
        "meetings/2021-05-27-summing-up.yaml",
        "audience: all\n",
        "audience: all\ndocuments: [documents/a.pdf, documents/b.pdf]\n",
    )
    # Room on disk for both, not as sent: the second one is linked.
    with (config_copy / "project.yaml").open("a", encoding="utf-8") as fh:
        fh.write(f"\ndocuments:\n  attach_limit_mb: {2 * size * 1.2 / 1024 / 1024}\n")
    loaded = load_config(config_copy)
    planned = plan_documents(
        config_copy, loaded.project, loaded.project.meeting("summing-up-2021-05"), "invitation", "s"
    )
    assert [p.attached for p in planned] == [True, False]
    messages = compose(
        loaded, "invitation", meeting="summing-up-2021-05", store=SQLiteStore(tmp_path / "s.db"), now=NOW
    )
    assert all(len(m.message) < 2 * size * 1.2 for m in messages)


def test_feeds_build_removes_copies_under_revoked_tokens(config_copy: Path, documented, tmp_path) -> None:
    out_dir = tmp_path / "site"
    assert _run(config_copy, tmp_path / "var", "feeds", "build", "--out", str(out_dir)).exit_code == 0
    before = {p for p in (out_dir / "documents").glob("*/*/*") if p.is_file()}
    assert before, "the fixture has documents of a meeting that is not public"
    rotated = _run(config_copy, tmp_path / "var", "feeds", "rotate-secret", "--yes")
    assert rotated.exit_code == 0, rotated.output
    assert _run(config_copy, tmp_path / "var", "feeds", "build", "--out", str(out_dir)).exit_code == 0
    after = {p for p in (out_dir / "documents").glob("*/*/*") if p.is_file()}
    assert after and not (before & after)  # every copy moved to the new token; none left at the old
    assert all(p.parent.is_dir() for p in after)
    assert not any(p.parent.exists() for p in before)
