"""The `cyclogram` command line: parse, call the core, print."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import update_wrapper
from pathlib import Path
from typing import Any, TypeVar

import click

from scheduler import __version__
from scheduler.clock import Clock, FixedClock, SystemClock
from scheduler.completion import complete_keys, complete_kinds, complete_schools, complete_targets
from scheduler.config import LoadedConfig, config_dir, load_config
from scheduler.errors import ConfigError, CyclogramError, UnknownNameError
from scheduler.plan import build_plan, select
from scheduler.progress import BarProgress, Progress, progress_for
from scheduler.store import DATABASE_ENV, StateStore, lease_from_env, open_url, state_dir
from scheduler.translation import (
    N_,
    _,
    current_language,
    install_click,
    language_from_env,
    language_is_chosen,
    localize_commands,
    ngettext,
    project_language,
    use_language,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """What every command shares: where the configuration and the state are, and the clock."""

    config_path: Path
    state_path: Path
    clock: Clock
    database: str | None = None  # a postgresql:// or sqlite: URL; None: state.db in state_path
    _loaded: LoadedConfig | None = None
    _store: StateStore | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def load(self) -> LoadedConfig:
        if self._loaded is None:
            self._loaded = load_config(self.config_path)
        return self._loaded

    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_url(self.database, self.state_path, lease=lease_from_env())
            self.closers.append(self._store.close)
        return self._store


class CyclogramGroup(click.Group):
    """Turns the core's exceptions into messages and exit codes; no traceback for a user's mistake."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Speak the locale's language (until --lang or the project says otherwise), and only for this run."""
        import os

        saved = (current_language(), language_is_chosen())
        use_language(language_from_env(os.environ))
        if not language_is_chosen():  # before parsing, so that `cyclogram --help` speaks it too
            argv = kwargs.get("args", args[0] if args else None)
            argv = list(sys.argv[1:] if argv is None else argv)
            use_language(project_language(config_dir(_config_arg(argv))), chosen=False)
        install_click()
        localize_commands(self)
        try:
            return super().main(*args, **kwargs)
        finally:
            use_language(*saved)
            localize_commands(self)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(2)
        except UnknownNameError as exc:  # a kind, meeting or school the configuration does not have
            click.echo(_("error: {error}").format(error=exc), err=True)
            ctx.exit(2)
        except CyclogramError as exc:
            click.echo(_("error: {error}").format(error=exc), err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo(_("interrupted"), err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except OSError as exc:  # a folder not writable, a port taken, a disk full: the machine's to fix
            click.echo(_("error: {error}").format(error=exc), err=True)
            ctx.exit(1)
        except Exception as exc:
            import os

            from jinja2 import TemplateError

            if isinstance(exc, TemplateError):
                click.echo(_("error: template: {error}").format(error=exc), err=True)
                ctx.exit(1)
            if os.environ.get("CYCLOGRAM_DEBUG"):
                raise
            # A last resort: one line, and the way to the details, rather than a wall of traceback.
            click.echo(
                _("error: unexpected {kind}: {error} (CYCLOGRAM_DEBUG=1 shows where)").format(
                    kind=type(exc).__name__, error=exc
                ),
                err=True,
            )
            ctx.exit(1)


# Rehearsals and --now stay in years a calendar means something in (and far from datetime's edges).
YEARS = (1970, 2200)


def _parse_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            _("{value!r} is not an ISO 8601 date-time (e.g. 2020-09-20T10:00+03:00)").format(value=value)
        ) from None
    return parsed if parsed.tzinfo else None


@click.group(cls=CyclogramGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CYCLOGRAM_CONFIG",
    default=None,
    help="Configuration directory [env CYCLOGRAM_CONFIG; default ./config].",
)
@click.option(
    "--state",
    "state",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CYCLOGRAM_STATE",
    default=None,
    help="State directory (outbox, sequences, secrets) [env CYCLOGRAM_STATE; default ./var].",
)
@click.option(
    "--database",
    "database",
    metavar="URL",
    envvar=DATABASE_ENV,
    default=None,
    help="State store: postgresql://user:password@host:port/db (shared by several instances) or "
    f"sqlite:PATH [env {DATABASE_ENV}; default STATE/state.db].",
)
@click.option(
    "--now",
    "now",
    metavar="DATETIME",
    default=None,
    help="Pretend it is this instant (ISO 8601 with offset), for rehearsals.",
)
@click.option(
    "--lang",
    type=click.Choice(["ru", "en"]),
    default=None,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, param, value: _choose_language(ctx, value),
    help="Language of the console [default: from LC_ALL, LC_MESSAGES, LANG, then the project's language].",
)
@click.version_option(version=__version__, prog_name="cyclogram")
@click.pass_context
def main(
    ctx: click.Context, config: Path | None, state: Path | None, database: str | None, now: str | None
) -> None:
    """Calendar feeds and templated mail for a network of schools working on a common project."""
    path = config_dir(config)
    if not language_is_chosen():
        use_language(project_language(path), chosen=False)
        localize_commands(ctx.find_root().command)
    instant = None
    if now is not None:
        instant = _parse_instant(now)
        if instant is None:
            raise click.BadParameter(
                _("give the offset too, e.g. 2020-09-20T10:00+03:00"), param_hint="--now"
            )
        if not YEARS[0] <= instant.year <= YEARS[1]:
            raise click.BadParameter(_years_message(), param_hint="--now")
    obj = Context(
        config_path=path,
        state_path=state_dir(state),
        clock=FixedClock(instant) if instant else SystemClock(),
        database=database.strip() or None if database else None,
    )
    ctx.obj = obj
    ctx.call_on_close(lambda: [close() for close in obj.closers])


def _config_arg(argv: list[str]) -> str | None:
    """--config from the command line before click reads it (the project's language may be needed first)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.partition("=")[2]
    return None


def _choose_language(ctx: click.Context, value: str | None) -> None:
    """--lang: before any other option is read, so that help and errors are in it too."""
    if value is not None:
        use_language(value)
        localize_commands(ctx.find_root().command)


def _years_message() -> str:
    return _("give a year from {first} to {last}").format(first=YEARS[0], last=YEARS[1])


pass_ctx = click.make_pass_decorator(Context)


def with_context(f: F) -> F:
    """Pass the shared Context as the first argument."""

    @pass_ctx
    def wrapper(obj: Context, *args: Any, **kwargs: Any) -> Any:
        return f(obj, *args, **kwargs)

    return update_wrapper(wrapper, f)  # type: ignore[return-value]


# --- validate --------------------------------------------------------------------------------------------


@main.command()
@with_context
def validate(obj: Context) -> None:
    """Check the configuration and its templates; print every problem found."""
    from scheduler.documents import document_notes
    from scheduler.validation import validate_all

    loaded = validate_all(obj.config_path)
    for warning in loaded.warnings:
        click.echo(_("warning: {warning}").format(warning=warning), err=True)
    p = loaded.project
    for note in document_notes(loaded):
        click.echo(_("note: {note}").format(note=note), err=True)
    counts = ", ".join(
        (
            ngettext("{n} school", "{n} schools", len(p.schools)).format(n=len(p.schools)),
            ngettext("{n} team", "{n} teams", len(p.teams)).format(n=len(p.teams)),
            ngettext("{n} meeting", "{n} meetings", len(p.meetings)).format(n=len(p.meetings)),
            ngettext("{n} key event", "{n} key events", len(p.all_events())).format(n=len(p.all_events())),
        )
    )
    click.echo(f"{obj.config_path}: OK: {counts} ({p.settings.school_year.label()})")


# --- plan ------------------------------------------------------------------------------------------------


@main.command()
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day to show (YYYY-MM-DD).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day to show (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@with_context
def plan(obj: Context, start: datetime | None, end: datetime | None, as_json: bool) -> None:
    """Show the year's timeline of mailings: what goes out when, and to how many."""
    if start and end and end < start:
        raise click.BadParameter(_("--to is before --from"), param_hint="--to")
    project = obj.load().project
    now = obj.clock.now()
    done = _known_states(obj)
    entries = select(
        build_plan(project, now, done),
        start.date() if start else None,
        end.date() if end else None,
    )
    reviews = _review_marks(obj, project, entries)
    if as_json:
        doc = {
            "project": project.settings.title,
            "timezone": project.settings.timezone,
            "now": now.astimezone(UTC).isoformat(),
            "entries": [{**e.as_json(), "review": reviews.get(e.key)} for e in entries],
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if not entries:
        click.echo(_("No mailings in this period."))
        return
    from scheduler.report import plan_table

    click.echo(plan_table(entries, now, reviews))


def _review_marks(obj: Context, project: Any, entries: list[Any]) -> dict[str, str]:
    """The review state of each held mailing: `pending` until drafted, then the store's word."""
    from scheduler.review import is_held, review_enabled, review_marks

    if not review_enabled(project):
        return {}
    known = review_marks(obj.store()) if (obj.state_path / "state.db").exists() else {}
    marks = {}
    for e in entries:
        if e.key in known:
            marks[e.key] = known[e.key]
        elif e.state not in ("sent", "missed") and is_held(project, e):
            marks[e.key] = "pending"
    return marks


def _known_states(obj: Context) -> dict[str, str]:
    """Sent/missed marks from the state store, if one exists yet (plan never creates it)."""
    if obj.database is None and not (obj.state_path / "state.db").exists():
        return {}
    return obj.store().mailing_states()


# --- synth -----------------------------------------------------------------------------------------------


@main.command()
@click.option("--schools", type=click.IntRange(min=1), default=20, show_default=True, help="Schools.")
@click.option("--teams", type=click.IntRange(min=0), default=4, show_default=True, help="Teams.")
@click.option("--meetings", type=click.IntRange(min=0), default=5, show_default=True, help="Meetings.")
@click.option("--events", type=click.IntRange(min=0), default=20, show_default=True, help="Key events.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same files.")
@click.option(
    "--year",
    type=click.IntRange(2000, 2099),
    default=2020,
    show_default=True,
    help="Calendar year the school year begins in.",
)
@click.option(
    "--notify-share",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of schools with a second contact who also receives the mail.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the configuration into.",
)
@click.option("--force", is_flag=True, help="Replace a configuration already in --out.")
@click.option(
    "--shape",
    default="",
    metavar="FEATURES",
    help="Comma-separated kinds of plan to include, or `all`: no-minutes, draft-minutes, no-actions, rrule, "
    "all-day, online, night, early-slots, odd-events, school-zones, cyrillic.",
)
@click.option("--zone", default="Europe/Moscow", show_default=True, help="The project's IANA time zone.")
@click.option(
    "--roster",
    type=click.Choice(["auto", "yaml", "csv"]),
    default="auto",
    show_default=True,
    help="Where the schools go: participants.yaml, schools.csv, or auto (the table from 10,000 schools).",
)
def synth(
    schools: int,
    teams: int,
    meetings: int,
    events: int,
    seed: int,
    year: int,
    notify_share: float,
    out: Path,
    force: bool,
    shape: str,
    zone: str,
    roster: str,
) -> None:
    """Write a synthetic, valid configuration of any size (for rehearsals and benchmarks)."""
    from scheduler.synth import Shape, SynthSpec, synth_files, write_config

    spec = SynthSpec(
        shape=Shape.parse(shape, zone),
        schools=schools,
        teams=teams,
        meetings=meetings,
        events=events,
        seed=seed,
        year=year,
        notify_share=notify_share,
    )
    written = write_config(out, synth_files(spec, roster), force=force)
    click.echo(
        _(
            "{out}: wrote {files} files ({schools} schools, {teams} teams, {meetings} meetings, "
            "{events} key events, seed {seed})"
        ).format(
            out=out,
            files=len(written),
            schools=schools,
            teams=teams,
            meetings=meetings,
            events=events,
            seed=seed,
        )
    )


# --- feeds and serve (calendar feeds) -------------------------------------------------------------------


@main.group()
def feeds() -> None:
    """Build the calendar feeds, or print their private subscribe URLs."""


@feeds.command("build")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write project.ics, schools/, teams/ and meetings/ into.",
)
@click.option(
    "--layout",
    type=click.Choice(["files", "urls"]),
    default="files",
    show_default=True,
    help="files: schools/<id>.ics (keep private); urls: as the URLs are, schools/<id>/<token>.ics, "
    "for nginx or a CDN to serve as they are.",
)
@with_context
def feeds_build(obj: Context, out: Path, layout: str) -> None:
    """Write every feed as a file (atomically; unchanged files are left untouched)."""
    from scheduler.documents import write_documents
    from scheduler.feedcache import CACHE_FILE, ItemCache
    from scheduler.feeds import current_feeds, write_feeds, write_record
    from scheduler.templating import make_environment
    from scheduler.tokens import feed_secret

    loaded = obj.load()
    env = make_environment(loaded.directory)
    cache = ItemCache(obj.state_path / CACHE_FILE)
    built = current_feeds(obj.store(), loaded.project, obj.clock.now(), env=env, cache=cache)
    removed: list[str] = []
    if layout == "urls":
        from scheduler.feeds import prune_revoked, url_layout
        from scheduler.tokens import feed_secret

        flat = sorted(str(p) for kind in ("schools", "teams") for p in (out / kind).glob("*.ics"))
        if flat:
            raise CyclogramError(
                _(
                    "{out} holds private feeds without tokens ({example}...), which a web server would give "
                    "anyone: build the URL layout into another directory"
                ).format(out=out, example=flat[0])
            )
        built = url_layout(built, feed_secret(obj.store()))
        removed = prune_revoked(built, out)
    written = write_feeds(
        built, out, progress=_progress(_("Writing feeds")), record=write_record(obj.state_path, out)
    )
    click.echo(
        _("{out}: {feeds} feeds, {written} written, {unchanged} unchanged").format(
            out=out, feeds=len(built), written=len(written), unchanged=len(built) - len(written)
        )
        + (_(", {n} revoked removed").format(n=len(removed)) if removed else "")
    )
    total, copied = write_documents(loaded.directory, loaded.project, feed_secret(obj.store()), out)
    if total:
        click.echo(f"{out / 'documents'}: {total} documents, {len(copied)} written")


@feeds.command("urls")
@with_context
def feeds_urls(obj: Context) -> None:
    """Print each school's and team's private subscribe URL, and the organiser's page and feed."""
    from scheduler.tokens import feed_secret, private_feed_url, webcal_url

    project = obj.load().project
    secret = feed_secret(obj.store())
    for kind, items in (("school", project.schools), ("team", project.teams)):
        for item in items:
            url = private_feed_url(project, secret, kind, item.id)
            click.echo(f"{kind}\t{item.id}\t{url}\t{webcal_url(url)}")
    from scheduler.organiser import organiser_urls

    page, feed = organiser_urls(project, secret)
    click.echo(f"organiser\tpage\t{page}\t-")
    click.echo(f"organiser\tfeed\t{feed}\t{webcal_url(feed)}")


@feeds.command("rotate-secret")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@with_context
def feeds_rotate_secret(obj: Context, yes: bool) -> None:
    """Replace the feed secret: every private URL given out so far stops working."""
    import os

    from scheduler.tokens import SECRET_ENV, rotate_secret

    if os.environ.get(SECRET_ENV, "").strip():
        raise CyclogramError(
            _("the feed secret comes from {env}: set a new value there to rotate it").format(env=SECRET_ENV)
        )
    if not yes:
        click.confirm(_("Every school's and team's private feed URL will stop working. Rotate?"), abort=True)
    rotate_secret(obj.store())
    click.echo(_("Rotated. `cyclogram feeds urls` prints the new URLs; the next invitations carry them."))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@with_context
def serve(obj: Context, host: str, port: int) -> None:
    """Serve the feeds and the index page over HTTP, rebuilding when the configuration changes."""
    import asyncio
    import signal

    from scheduler.console import port_error
    from scheduler.server import FeedServer
    from scheduler.watch import watch_config

    loaded = obj.load()
    _log_to_stderr(zone=loaded.project.zone())
    server = FeedServer(obj.store(), obj.clock, loaded.directory, state=obj.state_path)
    server.update(loaded.project)

    async def run() -> None:
        try:
            bound = await server.start(host, port)
        except OSError as exc:
            raise (port_error(exc, host, port) or exc) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # a service manager's stop is a normal end: exit 0
            loop.add_signal_handler(sig, stop.set)
        count = len(server.published.feeds) if server.published else 0
        click.echo(
            _("Serving {count} feeds on {url} (Ctrl+C to stop)").format(
                count=count, url=f"http://{host}:{bound}/"
            )
        )
        try:
            await watch_config(
                loaded.directory, lambda new: server.update(new.project) and None, stop_event=stop
            )
            await stop.wait()
        finally:
            await server.stop()
        click.echo(_("Stopped."))

    asyncio.run(run())


# --- mail: send, preview, outbox, smtp-test ---------------------------------------------------------------


class _RunningClock:
    """--now pins the start; retries and rate limits still need time to pass while the command runs."""

    def __init__(self, start: datetime):
        import time

        self._start, self._t0, self._monotonic = start, time.monotonic(), time.monotonic

    def now(self) -> datetime:
        from datetime import timedelta

        return self._start + timedelta(seconds=self._monotonic() - self._t0)


def _mail_clock(obj: Context) -> Clock:
    return _RunningClock(obj.clock.now()) if isinstance(obj.clock, FixedClock) else obj.clock


def _mail_transport(obj: Context) -> Any:
    import os

    from scheduler.transport import MaildirTransport, transport_from_env

    transport = transport_from_env(os.environ, obj.state_path / "mail")
    if isinstance(transport, MaildirTransport):
        click.echo(
            _("No SMTP host set (CYCLOGRAM_SMTP_HOST): delivering into the Maildir {path}").format(
                path=transport.path
            ),
            err=True,
        )
    return transport


def _delivery_options() -> dict[str, Any]:
    """How the outbox delivers, from the environment; checked before anything is queued."""
    import os

    from scheduler.delivery import delivery_options

    return delivery_options(os.environ)


def _run_delivery(obj: Context, transport: Any, total: int, options: dict[str, Any]) -> Any:
    """Deliver the outbox with a progress bar on a terminal; returns the DeliveryReport.

    When the service is running it holds the outbox: the rows just queued are its to send, and
    this command says so and stops (exit 0) instead of delivering beside it.
    """
    import asyncio

    from scheduler.delivery import DeliveryBusyError, DeliveryReport, deliver
    from scheduler.errors import DeliveryError

    def in_doubt(n: int) -> None:
        click.echo(
            _(
                "{n} message(s) were in doubt after an unclean stop (left in `sending`; the server may have "
                "accepted them): sending them again, with the same Message-ID."
            ).format(n=n),
            err=True,
        )

    kwargs = dict(options, on_recovered=in_doubt)
    shown = _progress(_("Sending"))
    terminal = isinstance(shown, BarProgress)

    def progress(row: Any, outcome: str, detail: str) -> None:
        if outcome != "retry":
            shown.advance()
        elif terminal:  # in a log the service's own lines say it
            click.echo(
                "\n  "
                + _("{recipient}: {reason}; will retry").format(recipient=row.recipient, reason=detail),
                err=True,
            )

    kwargs["progress"] = progress
    shown.start(total)
    try:
        return asyncio.run(deliver(obj.store(), transport, _mail_clock(obj), **kwargs))
    except DeliveryBusyError as exc:
        click.echo(_("{n} message(s) queued; {reason}.").format(n=total, reason=exc))
        return DeliveryReport(pending=total)
    except DeliveryError as exc:
        try:
            left = obj.store().outbox_counts().get("queued", 0)
        except Exception:  # the store may be what failed
            left = total
        raise DeliveryError(
            _(
                "delivery stopped: {reason}; {n} message(s) stay queued (`cyclogram outbox` lists them)"
            ).format(reason=exc, n=left)
        ) from None
    finally:
        shown.finish()


def _progress(label: str) -> Progress:
    """Progress on stderr (stdout stays clean for --json): a bar on a terminal, else a line every few seconds."""
    return progress_for(label, sys.stderr)


def _echo_failures(report: Any) -> None:
    for _row, recipient, reason in report.failures:
        click.echo(
            "  " + _("failed: {recipient}: {reason}").format(recipient=recipient, reason=reason), err=True
        )


def _check_recipient_option(loaded: LoadedConfig, value: str | None, option: str) -> None:
    """A school or address the configuration does not know is a mistake on the command line (exit 2)."""
    from scheduler.mailings import UnknownRecipientError, check_only

    try:
        check_only(loaded.project, value)
    except UnknownRecipientError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@main.command()
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("meeting", shell_complete=complete_targets)
@click.option(
    "--only",
    metavar="ADDRESS_OR_SCHOOL",
    help="Send only to this address or school id.",
    shell_complete=complete_schools,
)
@click.option("--dry-run", is_flag=True, help="Render everything and show who would get it; send nothing.")
@click.option("--resend", is_flag=True, help="Send again to recipients who already have this mailing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@with_context
def send(
    obj: Context, kind: str, meeting: str, only: str | None, dry_run: bool, resend: bool, yes: bool
) -> None:
    """Send a mailing (invitation, agenda, reminder, update, cancellation, summary, action_reminder,
    event_reminder) about MEETING (a key event id for event_reminder). Sending again sends nothing new."""
    from scheduler.mailings import compose, count_recipients, iter_compose, queue

    loaded = obj.load()
    _check_recipient_option(loaded, only, "--only")
    store = obj.store()
    now = obj.clock.now()
    total = count_recipients(loaded, kind, meeting=meeting, now=now, only=only, store=store)
    if dry_run:
        messages = compose(loaded, kind, meeting=meeting, store=store, now=now, only=only, resend=resend)
        new = [m for m in messages if store.has(m.id) is None]
        click.echo(
            _("{kind} {meeting}: {total} recipient(s), {new} to send, nothing sent (dry run).").format(
                kind=kind, meeting=meeting, total=len(messages), new=len(new)
            )
        )
        for m in messages:
            click.echo(f"  {'new ' if m in new else 'skip'}  {m.recipient}  ({m.id})")
        return
    transport = _mail_transport(obj)
    options = _delivery_options()  # refused before anything is queued
    if total and not yes:
        click.confirm(
            _(
                "Send {kind} {meeting} to {total} recipient(s) via {transport}? (who already has it is skipped)"
            ).format(kind=kind, meeting=meeting, total=total, transport=transport.description),
            abort=True,
            err=True,
        )
    # Rendered and queued one by one, in one transaction: all or nothing, without holding every message.
    messages = iter_compose(loaded, kind, meeting=meeting, store=store, now=now, only=only, resend=resend)
    done = queue(store, loaded, messages, now=now, complete=only is None)
    skipped = done.total - done.added
    if not done.total:
        click.echo(
            _("{kind} {meeting}: nothing to send (nothing changed since the schools were last told).").format(
                kind=kind, meeting=meeting
            )
        )
        return
    click.echo(
        _("{kind} {meeting}: {total} recipient(s), {new} to send, {skipped} already sent or queued.").format(
            kind=kind, meeting=meeting, total=done.total, new=done.added, skipped=skipped
        )
    )
    queued = store.outbox_counts().get("queued", 0)
    report = _run_delivery(obj, transport, queued, options)
    click.echo(
        _("sent {sent}, failed {failed}, skipped {skipped}").format(
            sent=report.sent, failed=report.failed, skipped=skipped
        )
        + (_(", still queued {n}").format(n=report.pending) if report.pending else "")
    )
    _echo_failures(report)
    if report.failed:
        sys.exit(1)


@main.command()
@click.argument("kind", shell_complete=complete_kinds)
@click.argument("meeting", shell_complete=complete_targets)
@click.option(
    "--school",
    metavar="ID",
    shell_complete=complete_schools,
    help="Render the message this school's head (or this address) gets; default: the first recipient.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["eml", "text", "html"]), default="text", show_default=True
)
@with_context
def preview(obj: Context, kind: str, meeting: str, school: str | None, fmt: str) -> None:
    """Show a mailing as one recipient would get it; nothing is sent or queued."""
    from email import message_from_bytes
    from email import policy as email_policy

    from scheduler.mailings import compose

    _check_recipient_option(obj.load(), school, "--school")
    messages = compose(obj.load(), kind, meeting=meeting, store=obj.store(), now=obj.clock.now(), only=school,
                       resend=False)  # fmt: skip
    if not messages:
        click.echo(_("{kind} {meeting}: nothing to send.").format(kind=kind, meeting=meeting))
        return
    raw = messages[0].message
    if fmt == "eml":
        click.echo(raw.decode("utf-8", "replace").replace("\r\n", "\n"), nl=False)
        return
    parsed = message_from_bytes(raw, policy=email_policy.default)
    body = parsed.get_body(("plain",) if fmt == "text" else ("html",))
    if fmt == "text":
        click.echo(f"Subject: {parsed['Subject']}\nTo: {parsed['To']}\n")
    click.echo(body.get_content() if body is not None else "", nl=False)  # type: ignore[union-attr]


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def outbox(ctx: click.Context, as_json: bool) -> None:
    """Show the outbox: counts by status and every failure with its reason."""
    if ctx.invoked_subcommand is not None:
        return
    from scheduler.delivery import stopped_reason

    obj: Context = ctx.obj
    store = obj.store()
    counts = store.outbox_counts()
    rows = store.outbox()
    troubled = [r for r in rows if r.status == "failed" or (r.status == "queued" and r.last_error)]
    stopped = stopped_reason(rows)
    if as_json:
        doc = {
            "counts": counts,
            "stopped": stopped,
            "problems": [
                {
                    "id": r.id, "mailing": r.mailing, "recipient": r.recipient, "revision": r.revision,
                    "status": r.status, "attempts": r.attempts, "error": r.last_error,
                    "next_attempt": r.next_attempt.isoformat() if r.status == "queued" else None,
                }
                for r in troubled
            ],
        }  # fmt: skip
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if stopped:
        click.echo(
            _("Delivery is stopped: {reason}. Fix the setting; the queued mail then goes out.").format(
                reason=stopped
            )
        )
    click.echo("  ".join(f"{status}: {n}" for status, n in counts.items()))
    for r in troubled:
        when = r.next_attempt.isoformat(timespec="seconds")
        what = _("failed") if r.status == "failed" else _("retry at {when}").format(when=when)
        click.echo(
            "  "
            + _("{what}: {mailing} -> {recipient} (attempts {attempts}): {error}").format(
                what=what, mailing=r.mailing, recipient=r.recipient, attempts=r.attempts, error=r.last_error
            )
        )


@outbox.command("retry")
@with_context
def outbox_retry(obj: Context) -> None:
    """Queue every failed message again and deliver the outbox."""
    options = _delivery_options()
    transport = _mail_transport(obj)  # refused before anything is queued again
    store = obj.store()
    n = store.requeue_failed(obj.clock.now())
    click.echo(_("{n} failed message(s) queued again.").format(n=n))
    queued = store.outbox_counts().get("queued", 0)
    if not queued:
        return
    report = _run_delivery(obj, transport, queued, options)
    click.echo(_("sent {sent}, failed {failed}").format(sent=report.sent, failed=report.failed))
    _echo_failures(report)
    if report.failed:
        sys.exit(1)


@main.command("smtp-test")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Where to send the test message.")
@with_context
def smtp_test(obj: Context, to: str) -> None:
    """Send one test message through the configured transport and print the server's reply."""
    import asyncio
    import html

    from scheduler.messages import Rendered, build_message
    from scheduler.model import Recipient

    project = obj.load().project
    try:
        recipient = Recipient(school="smtp-test", name=to, email=to, language=project.settings.language)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        why = errors()[0]["msg"].removeprefix("Value error, ") if callable(errors) and errors() else str(exc)
        raise CyclogramError(
            _("{address!r} is not a valid address: {why}").format(address=to, why=why)
        ) from None
    now = obj.clock.now()
    text = f"{project.settings.title}: SMTP test from cyclogram at {now.isoformat(timespec='seconds')}.\n"
    rendered = Rendered(
        subject=f"{project.settings.title}: SMTP test", text=text, html=f"<p>{html.escape(text)}</p>"
    )
    msg = build_message(
        project, recipient, rendered, kind="smtp-test", mailing=f"smtp-test/{now.isoformat()}",
        revision=0, date=now,
    )  # fmt: skip
    transport = _mail_transport(obj)

    async def run() -> str:
        conn = await transport.connect()
        try:
            return await conn.send(project.settings.organizer.email, to, msg, "smtp-test")
        finally:
            await conn.close()

    click.echo(f"{transport.description}: {asyncio.run(run())}")


# --- run and simulate (the service) ----------------------------------------------------------------------


def _log_to_stderr(verbose: bool = False, zone: Any = None) -> None:
    from scheduler.console import setup_logging

    setup_logging(zone, verbose)  # times in the project's zone, as its plan is written


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the feed server listens on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@click.option("--no-serve", is_flag=True, help="Do not serve the feeds (another server publishes them).")
@with_context
def run(obj: Context, host: str, port: int, no_serve: bool) -> None:
    """Run the service: send each mailing at its time, serve the feeds, react to edits. Stop with Ctrl+C."""
    import asyncio

    from scheduler.runner import Runner
    from scheduler.server import FeedServer

    loaded = obj.load()
    _log_to_stderr(zone=loaded.project.zone())
    transport = _mail_transport(obj)
    server = None if no_serve else FeedServer(obj.store(), obj.clock, loaded.directory, state=obj.state_path)
    runner = Runner(
        config_dir=obj.config_path, store=obj.store(), clock=_mail_clock(obj), transport=transport,
        server=server, host=host, port=port, echo=click.echo,
        delivery=_delivery_options(),
    )  # fmt: skip
    asyncio.run(runner.run())


@main.command()
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (YYYY-MM-DD)."
)
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (YYYY-MM-DD).")
@click.option(
    "--maildir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Maildir for the rehearsal's mail: new, empty, or one a rehearsal made "
         "[default: STATE/simulation/mail].",
)  # fmt: skip
@click.option(
    "--deliver",
    is_flag=True,
    help="Deliver for real, through the SMTP server (or Maildir) from the environment; asks first.",
)
@click.option("--yes", "-y", is_flag=True, help="With --deliver: do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@with_context
def simulate(
    obj: Context,
    start: datetime,
    end: datetime,
    maildir: Path | None,
    deliver: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Rehearse a period on a virtual clock: the service's own planning and delivery, in seconds.

    The mail goes into the rehearsal's own Maildir, never to anyone, unless --deliver is given."""
    import asyncio
    import os

    from scheduler.simulate import prepare_scratch
    from scheduler.simulate import simulate as rehearse
    from scheduler.store import SQLiteStore
    from scheduler.transport import MaildirTransport, transport_from_env

    if end < start:
        raise click.BadParameter(_("--to is before --from"), param_hint="--to")
    for day, hint in ((start, "--from"), (end, "--to")):
        if not YEARS[0] <= day.year <= YEARS[1]:
            raise click.BadParameter(_years_message(), param_hint=hint)
    if deliver and maildir is not None:
        raise click.UsageError(
            _("--deliver sends through the environment's transport; --maildir is for a rehearsal")
        )
    obj.load()
    if deliver:
        transport: Any = transport_from_env(os.environ, obj.state_path / "mail")
        where = _("for real, through {transport}").format(transport=transport.description)
    else:
        target = prepare_scratch(maildir, N_("mail")) if maildir is not None else None
        transport = None
    earlier = frozenset({"state.db", "state.db-wal", "state.db-shm", "state.db.deliver.lock", "mail"})
    workdir = prepare_scratch(obj.state_path / "simulation", N_("rehearsal's state"), earlier)
    if transport is None:
        # A scratch copy: no fsyncs. Never the environment's SMTP server or Maildir.
        transport = MaildirTransport(target or prepare_scratch(workdir / "mail", N_("mail")), durable=False)
        where = _("into the rehearsal's Maildir {path} (nothing is sent to anyone)").format(
            path=transport.path
        )
    click.echo(_("Rehearsal: the mail goes {where}.").format(where=where), err=as_json)
    if deliver and not yes:
        click.confirm(_("Deliver the rehearsal's mail for real?"), abort=True, err=True)
    store = SQLiteStore(workdir / "state.db")
    obj.closers.append(store.close)
    result = asyncio.run(
        rehearse(
            obj.config_path,
            store,
            transport,
            start.date(),
            end.date(),
            progress=_progress(_("Rehearsing days")),
        )
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "actions": [
                        {
                            "at": a.at.isoformat(),
                            "what": a.what,
                            "mailing": a.key,
                            "kind": a.kind,
                            "meeting": a.meeting,
                            "recipients": a.recipients,
                            "detail": a.detail,
                        }
                        for a in result.actions
                    ],
                    "delivered": result.delivered,
                    "failed": result.failed,
                    "outbox": result.counts,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    from scheduler.report import timeline_table

    zone = obj.load().project.zone()
    click.echo(timeline_table(result.actions, zone))
    click.echo(
        _("Delivered {n} message(s) {where}; {failed} failed.").format(
            n=result.delivered, where=where, failed=result.failed
        )
    )
    if result.failed:
        raise SystemExit(1)


# --- import and export: tables in and out -----------------------------------------------------------------


@main.group("import")
def import_() -> None:
    """Read the organisers' tables into the configuration."""


@import_.command("participants")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sheet", metavar="NAME", help="Sheet of an .xlsx workbook (default: the first).")
@click.option(
    "--map",
    "mapping",
    metavar="COLUMN=FIELD",
    multiple=True,
    help="Read a column the headers do not name: FIELD is id, name, short_name, head, email, language, "
    "team or ignore; COLUMN is its header or letter. Repeatable.",
)
@click.option("--dry-run", is_flag=True, help="Show the changes as a diff; write nothing.")
@click.option("--skip-bad", is_flag=True, help="Import the good rows and report the bad ones.")
@with_context
def import_participants_cmd(
    obj: Context, file: Path, sheet: str | None, mapping: tuple[str, ...], dry_run: bool, skip_bad: bool
) -> None:
    """Add and update schools in participants.yaml from an .xlsx or .csv table."""
    from scheduler.tables.importing import describe, import_participants, parse_map
    from scheduler.tables.reading import TableFormatError

    try:
        result = import_participants(
            obj.config_path, file, sheet=sheet, mapping=parse_map(mapping), skip_bad=skip_bad,
            dry_run=dry_run, progress=_progress(_("Checking rows")),
        )  # fmt: skip
    except TableFormatError as exc:
        click.echo(_("error: {problem}").format(problem=exc), err=True)
        raise SystemExit(2) from None
    for problem in result.skipped:
        click.echo(_("skipped: {problem}").format(problem=describe(problem)), err=True)
    if dry_run:
        click.echo(result.diff, nl=False)
    counts = {"added": len(result.added), "updated": len(result.updated), "unchanged": len(result.unchanged)}
    if dry_run:
        summary = _("would add {added}, would update {updated}, unchanged {unchanged} school(s)")
    else:
        summary = _("added {added}, updated {updated}, unchanged {unchanged} school(s)")
    line = summary.format(**counts)
    if result.teams_added:
        line += _("; new teams: {teams}").format(teams=", ".join(result.teams_added))
    click.echo(line)
    for school_id, fields in result.updated.items():
        click.echo(f"  {school_id}: {', '.join(fields)}")
    for warning in result.warnings:
        click.echo(_("warning: {warning}").format(warning=warning), err=True)
    if result.not_in_table:
        click.echo(_("not in the table (kept): {schools}").format(schools=", ".join(result.not_in_table)))
    if result.written:
        click.echo(
            _("{file} updated; `cyclogram validate` passes").format(
                file=obj.config_path / "participants.yaml"
            )
        )


@main.group("export")
def export_() -> None:
    """Write tables for the organisers' own reports."""


def _export_command(kind: str, doc: str) -> None:
    @export_.command(kind, help=doc)
    @click.option("--xlsx", type=click.Path(dir_okay=False, path_type=Path), help="Write an .xlsx workbook.")
    @click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a CSV.")
    @with_context
    def command(obj: Context, xlsx: Path | None, csv_path: Path | None) -> None:
        from scheduler.tables.exporting import export_table, table_for

        if xlsx is None and csv_path is None:
            raise click.UsageError("name a file to write: --xlsx FILE and/or --csv FILE")
        project = obj.load().project
        answers = None
        if kind == "attendance" and (obj.state_path / "state.db").exists():
            from scheduler.tables.exporting import Answer

            store = obj.store()

            def answers(meeting: Any) -> dict[str, Answer]:  # the answers recorded by link or IMAP
                return {a.email.lower(): Answer(a.partstat, a.at) for a in store.answers(meeting.id)}

        table = table_for(kind, project, now=obj.clock.now(), done=_known_states(obj), answers=answers)
        for path in export_table(table, xlsx=xlsx, csv_path=csv_path):
            click.echo(f"{path}: {len(table.rows)} row(s)")


_export_command("participants", "The schools, their heads, languages and teams (the columns import reads).")
_export_command("plan", "The year's mailings with their time, recipients and state.")
_export_command(
    "attendance", "Per meeting, invited school and person: the answer given and attendance from the minutes."
)


# --- state (the store: backup, restore, migration) -------------------------------------------------------


@main.group()
def state() -> None:
    """Back up, restore or move the state (outbox, sequences, feed secret, snapshots, mailing states)."""


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in counts.items())


@state.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_context
def state_backup(obj: Context, file: Path) -> None:
    """Copy the whole state into FILE (a SQLite state file), consistent while the service runs."""
    from scheduler.store.transfer import backup

    counts = backup(obj.store(), file)
    click.echo(f"{obj.store().description} -> {file}: {_counted(counts)}")


@state.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@with_context
def state_restore(obj: Context, file: Path, yes: bool) -> None:
    """Replace the state with the backup FILE. Stop the service first."""
    from scheduler.store import redact_url
    from scheduler.store.transfer import restore

    where = redact_url(obj.database) if obj.database else str(obj.state_path / "state.db")
    if not yes:
        click.confirm(
            _("Replace the state in {where} with {file}?").format(where=where, file=file),
            abort=True,
            err=True,
        )
    counts = restore(file, obj.database, obj.state_path)
    click.echo(f"{file} -> {where}: {_counted(counts)}")


@state.command("migrate")
@click.option("--from", "source", required=True, metavar="URL", help="sqlite:PATH or postgresql://...")
@click.option("--to", "target", required=True, metavar="URL", help="postgresql://... or sqlite:PATH (empty).")
def state_migrate(source: str, target: str) -> None:
    """Move the state into another, empty store (SQLite to PostgreSQL, or back); nothing is deleted."""
    from scheduler.store import redact_url
    from scheduler.store.transfer import migrate

    counts = migrate(source, target)
    click.echo(
        f"{redact_url(source)} -> {redact_url(target)}: {_counted(counts)}; "
        + _("the source is left as it was")
    )


# --- review ----------------------------------------------------------------------------------------------


@main.command("review")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a list.")
@with_context
def review_cmd(obj: Context, as_json: bool) -> None:
    """List the mailings held for review: key, kind, due time, recipients, what changed."""
    from scheduler.review import drafts

    loaded = obj.load()
    now = obj.clock.now()
    found = drafts(loaded, obj.store(), now)
    if as_json:
        doc = {"now": now.astimezone(UTC).isoformat(), "drafts": [d.as_json() for d in found]}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(_("No mailing waits for review."))
        return
    zone = loaded.project.zone()
    for d in found:
        e = d.entry
        click.echo(f"{e.key}  [{d.state}]")
        click.echo(
            "  "
            + _("{kind}, due {at}, {n} recipient(s)").format(
                kind=e.kind, at=f"{e.at.astimezone(zone):%Y-%m-%d %H:%M %Z}", n=len(d.recipients)
            )
        )
        click.echo("  " + _("subject: {subject}").format(subject=d.subject))
        for change in d.changes:
            click.echo("  " + _("changed since the last mailing: {change}").format(change=change))
    waiting = sum(d.state != "approved" for d in found)
    click.echo(
        _("{n} draft(s), {waiting} not approved. Approve with: cyclogram approve KEY (or --all)").format(
            n=len(found), waiting=waiting
        )
    )


@main.command()
@click.argument("keys", nargs=-1, metavar="KEY...", shell_complete=complete_keys)
@click.option("--all", "every", is_flag=True, help="Approve every draft `cyclogram review` lists.")
@with_context
def approve(obj: Context, keys: tuple[str, ...], every: bool) -> None:
    """Approve held mailings as they are now; an edit that changes one withdraws its approval."""
    from scheduler.review import approve as approve_drafts

    if bool(keys) == every:
        raise click.UsageError(_("Name the mailings to approve, or give --all."))
    done = approve_drafts(obj.load(), obj.store(), obj.clock.now(), keys, every=every)
    for d in done:
        click.echo(_("Approved {key} ({n} recipient(s)).").format(key=d.entry.key, n=len(d.recipients)))
    if not done:
        click.echo(_("No mailing waits for approval."))


@main.command()
@click.argument("key", shell_complete=complete_keys)
@with_context
def hold(obj: Context, key: str) -> None:
    """Hold a mailing: it does not go out until it is approved again."""
    from scheduler.review import hold as hold_draft

    d = hold_draft(obj.load(), obj.store(), obj.clock.now(), key)
    click.echo(_("Held {key}: it will not go out until `cyclogram approve {key}`.").format(key=d.entry.key))


# --- answers: rsvp fetch, attendance ---------------------------------------------------------------------


@main.group()
def rsvp() -> None:
    """Answers to invitations: read the calendar clients' replies from the organiser's mailbox."""


@rsvp.command("fetch")
@with_context
def rsvp_fetch(obj: Context) -> None:
    """Read the mailbox over IMAP (CYCLOGRAM_IMAP_*) and record every invitation reply that checks out."""
    from scheduler.rsvp.imap import ImapError, fetch_answers, imap_settings

    settings = imap_settings()
    if settings is None:
        raise ImapError(
            _("no IMAP server set: set CYCLOGRAM_IMAP_HOST (see the README, Answers to invitations)")
        )
    report = fetch_answers(obj.load().project, obj.store(), obj.clock.now(), settings)
    click.echo(f"{settings.describe()}: {report.summary()}")
    for line in report.recorded:
        click.echo(f"  {line}")
    if report.left:
        click.echo(_("{n} message(s) left in place for a person to look at:").format(n=len(report.left)))
        for uid, verdict, lines in report.left:
            for line in lines or [verdict]:
                click.echo(f"  UID {uid} ({verdict}): {line}")


@main.command()
@click.argument("meeting")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: counts and attendees.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: one row per school and person.")
@click.option(
    "--url", "as_url", is_flag=True, help="Print the private URL of the roster page (for the organiser)."
)
@with_context
def attendance(obj: Context, meeting: str, as_json: bool, as_csv: bool, as_url: bool) -> None:
    """Who comes to MEETING: per school and person the answer, when, and how it came (link or imap)."""
    from scheduler.mailings import resolve_meeting
    from scheduler.rsvp.attendance import roster

    if sum((as_json, as_csv, as_url)) > 1:
        raise click.UsageError(_("give one of --json, --csv and --url"))
    project = obj.load().project
    if as_url:
        from scheduler.rsvp.links import roster_path
        from scheduler.tokens import feed_secret

        path = roster_path(feed_secret(obj.store()), resolve_meeting(project, meeting).id)
        click.echo(str(project.settings.base_url).rstrip("/") + path)
        return
    result = roster(project, obj.store(), resolve_meeting(project, meeting))
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
        return
    if as_csv:
        click.echo(result.as_csv(), nl=False)
        return
    click.echo(result.as_table(project.zone(project.meeting(meeting))))


if __name__ == "__main__":
    sys.exit(main(prog_name="cyclogram"))
