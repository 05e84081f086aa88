"""The `cyclogram` command line: parse, call the core, print."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import update_wrapper
from pathlib import Path
from typing import Any, TypeVar

import click

from scheduler.clock import Clock, FixedClock, SystemClock
from scheduler.config import LoadedConfig, config_dir, load_config
from scheduler.errors import ConfigError, CyclogramError
from scheduler.plan import build_plan, select
from scheduler.state import SQLiteStore, open_store, state_dir

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """What every command shares: where the configuration and the state are, and the clock."""

    config_path: Path
    state_path: Path
    clock: Clock
    _loaded: LoadedConfig | None = None
    _store: SQLiteStore | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def load(self) -> LoadedConfig:
        if self._loaded is None:
            self._loaded = load_config(self.config_path)
        return self._loaded

    def store(self) -> SQLiteStore:
        if self._store is None:
            self._store = open_store(self.state_path)
            self.closers.append(self._store.close)
        return self._store


class CyclogramGroup(click.Group):
    """Turns the core's exceptions into messages and exit codes; no traceback for a user's mistake."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            ctx.exit(2)
        except CyclogramError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _parse_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time (e.g. 2020-09-20T10:00+03:00)") from None
    return parsed if parsed.tzinfo else None


@click.group(cls=CyclogramGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config", type=click.Path(file_okay=False, path_type=Path), envvar="CYCLOGRAM_CONFIG",
    default=None, help="Configuration directory [env CYCLOGRAM_CONFIG; default ./config].",
)
@click.option(
    "--state", "state", type=click.Path(file_okay=False, path_type=Path), envvar="CYCLOGRAM_STATE",
    default=None, help="State directory (outbox, sequences, secrets) [env CYCLOGRAM_STATE; default ./var].",
)
@click.option(
    "--now", "now", metavar="DATETIME", default=None,
    help="Pretend it is this instant (ISO 8601 with offset), for rehearsals.",
)
@click.version_option(package_name="cyclogram", prog_name="cyclogram")
@click.pass_context
def main(ctx: click.Context, config: Path | None, state: Path | None, now: str | None) -> None:
    """Calendar feeds and templated mail for a network of schools working on a common project."""
    instant = None
    if now is not None:
        instant = _parse_instant(now)
        if instant is None:
            raise click.BadParameter("give the offset too, e.g. 2020-09-20T10:00+03:00", param_hint="--now")
    obj = Context(
        config_path=config_dir(config),
        state_path=state_dir(state),
        clock=FixedClock(instant) if instant else SystemClock(),
    )
    ctx.obj = obj
    ctx.call_on_close(lambda: [close() for close in obj.closers])


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
    from scheduler.validation import validate_all

    loaded = validate_all(obj.config_path)
    p = loaded.project
    click.echo(
        f"{obj.config_path}: OK: {len(p.schools)} schools, {len(p.teams)} teams, "
        f"{len(p.meetings)} meetings, {len(p.all_events())} key events ({p.settings.school_year.label()})"
    )


# --- plan ------------------------------------------------------------------------------------------------


@main.command()
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day to show (YYYY-MM-DD).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day to show (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@with_context
def plan(obj: Context, start: datetime | None, end: datetime | None, as_json: bool) -> None:
    """Show the year's timeline of mailings: what goes out when, and to how many."""
    project = obj.load().project
    now = obj.clock.now()
    done = _known_states(obj)
    entries = select(
        build_plan(project, now, done),
        start.date() if start else None,
        end.date() if end else None,
    )
    if as_json:
        doc = {
            "project": project.settings.title,
            "timezone": project.settings.timezone,
            "now": now.astimezone(UTC).isoformat(),
            "entries": [e.as_json() for e in entries],
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if not entries:
        click.echo("No mailings in this period.")
        return
    from scheduler.report import plan_table

    click.echo(plan_table(entries, now))


def _known_states(obj: Context) -> dict[str, str]:
    """Sent/missed marks from the state store, if one exists yet (plan never creates it)."""
    if not (obj.state_path / "state.db").exists():
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
) -> None:
    """Write a synthetic, valid configuration of any size (for rehearsals and benchmarks)."""
    from scheduler.synth import SynthSpec, synth_files, write_config

    spec = SynthSpec(
        schools=schools,
        teams=teams,
        meetings=meetings,
        events=events,
        seed=seed,
        year=year,
        notify_share=notify_share,
    )
    written = write_config(out, synth_files(spec), force=force)
    click.echo(
        f"{out}: wrote {len(written)} files ({schools} schools, {teams} teams, {meetings} meetings, "
        f"{events} key events, seed {seed})"
    )


# --- feeds and serve (calendar feeds) -------------------------------------------------------------------


@main.group()
def feeds() -> None:
    """Build the calendar feeds, or print their private subscribe URLs."""


@feeds.command("build")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Directory to write project.ics, schools/, teams/ and meetings/ into.",
)
@with_context
def feeds_build(obj: Context, out: Path) -> None:
    """Write every feed as a file (atomically; unchanged files are left untouched)."""
    from scheduler.feeds import current_feeds, write_feeds
    from scheduler.templating import make_environment

    loaded = obj.load()
    env = make_environment(loaded.directory)
    built = current_feeds(obj.store(), loaded.project, obj.clock.now(), env=env)
    written = write_feeds(built, out)
    click.echo(f"{out}: {len(built)} feeds, {len(written)} written, {len(built) - len(written)} unchanged")


@feeds.command("urls")
@with_context
def feeds_urls(obj: Context) -> None:
    """Print each school's and team's private subscribe URL (https and webcal)."""
    from scheduler.tokens import feed_secret, private_feed_url, webcal_url

    project = obj.load().project
    secret = feed_secret(obj.store())
    for kind, items in (("school", project.schools), ("team", project.teams)):
        for item in items:
            url = private_feed_url(project, secret, kind, item.id)
            click.echo(f"{kind}\t{item.id}\t{url}\t{webcal_url(url)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@with_context
def serve(obj: Context, host: str, port: int) -> None:
    """Serve the feeds and the index page over HTTP, rebuilding when the configuration changes."""
    import asyncio
    import logging

    from scheduler.server import FeedServer
    from scheduler.watch import watch_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = obj.load()
    server = FeedServer(obj.store(), obj.clock, loaded.directory)
    server.update(loaded.project)

    async def run() -> None:
        bound = await server.start(host, port)
        count = len(server.published.feeds) if server.published else 0
        click.echo(f"Serving {count} feeds on http://{host}:{bound}/ (Ctrl+C to stop)")
        try:
            await watch_config(loaded.directory, lambda new: server.update(new.project) and None)
        finally:
            await server.stop()

    asyncio.run(run())


def parse_day(value: str) -> date:
    return date.fromisoformat(value)


if __name__ == "__main__":
    sys.exit(main())
