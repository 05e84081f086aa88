"""Synthetic configurations: valid, deterministic, realistic in the mix they hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main
from scheduler.config import load_config
from scheduler.errors import CyclogramError
from scheduler.model import DateRange, MonthOnly, OnDate, Recurrence
from scheduler.synth import SynthSpec, synth_files, write_config


def _load(tmp_path: Path, spec: SynthSpec):
    out = tmp_path / f"cfg-{spec.schools}-{spec.teams}-{spec.meetings}-{spec.events}-{spec.seed}"
    write_config(out, synth_files(spec))
    return load_config(out)


@pytest.mark.parametrize(
    "spec",
    [
        SynthSpec(schools=1, teams=0, meetings=0, events=0, seed=1),
        SynthSpec(schools=5, teams=1, meetings=2, events=5, seed=2),
        SynthSpec(schools=60, teams=8, meetings=12, events=80, seed=3),
        SynthSpec(schools=400, teams=30, meetings=25, events=150, seed=4, year=2023),
    ],
    ids=lambda s: f"{s.schools}s-{s.teams}t-{s.meetings}m-{s.events}e",
)
def test_sizes_load_without_problems(tmp_path: Path, spec: SynthSpec) -> None:
    project = _load(tmp_path, spec).project
    assert len(project.schools) == spec.schools
    assert len(project.teams) == spec.teams
    assert len(project.meetings) == spec.meetings
    assert len(project.events) == spec.events
    assert project.settings.school_year.start == spec.year


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    spec = SynthSpec(schools=50, teams=5, meetings=6, events=30, seed=42)
    first, again = synth_files(spec), synth_files(spec)
    assert first == again
    other = synth_files(SynthSpec(schools=50, teams=5, meetings=6, events=30, seed=43))
    assert other["participants.yaml"] != first["participants.yaml"]


def test_realistic_mix(tmp_path: Path) -> None:
    project = _load(tmp_path, SynthSpec(schools=300, teams=12, meetings=20, events=200, seed=7)).project
    assert any(s.language == "en" for s in project.schools)
    assert all(s.head.email.endswith(".example.org") for s in project.schools)
    assert any("Средняя школа" in s.name for s in project.schools)
    kinds = {type(e.when) for e in project.events}
    assert kinds == {OnDate, DateRange, MonthOnly, Recurrence}
    audiences = [e.audience for e in project.events]
    assert any(a.all for a in audiences)
    assert any(a.teams for a in audiences)
    assert any(a.schools and not a.all for a in audiences)
    final = [m for m in project.meetings if m.minutes and m.minutes.final]
    assert final and len(final) < len(project.meetings)
    assert any(m.minutes.action_items for m in final)
    assert any(m.minutes.approved_events for m in final)
    # every meeting has a full agenda, with slotted items and speakers with roles
    for m in project.meetings:
        assert len(m.agenda) >= 3
        assert m.goal and m.tasks
    assert any(it.start for m in project.meetings for it in m.agenda)
    assert any(sp.role for m in project.meetings for it in m.agenda for sp in it.speakers)
    # approved events join the cyclogram
    assert len(project.all_events()) > len(project.events)
    # the first meeting is for everyone: the benchmarks send its invitation to every school
    first = min(project.meetings, key=lambda m: m.start)
    assert first.audience.all


def test_notify_share_zero_gives_one_recipient_per_school(tmp_path: Path) -> None:
    project = _load(
        tmp_path, SynthSpec(schools=120, teams=3, meetings=1, events=0, seed=5, notify_share=0)
    ).project
    meeting = project.meetings[0]
    assert len(project.recipients(meeting.audience)) == 120


def test_yaml_is_plain_and_readable() -> None:
    files = synth_files(SynthSpec(schools=3, teams=1, meetings=1, events=3, seed=9))
    assert set(files) >= {"project.yaml", "participants.yaml", "cyclogram.yaml"}
    assert any(name.startswith("meetings/") for name in files)
    for text in files.values():
        assert "\\u04" not in text  # Cyrillic written as is, not escaped
        assert "!!python" not in text
        yaml.safe_load(text)


def test_write_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    big = synth_files(SynthSpec(schools=3, meetings=4, events=1, seed=1))
    write_config(tmp_path, big)
    with pytest.raises(CyclogramError, match="--force"):
        write_config(tmp_path, big)
    small = synth_files(SynthSpec(schools=3, meetings=1, events=1, seed=1))
    write_config(tmp_path, small, force=True)
    assert len(list((tmp_path / "meetings").glob("*.yaml"))) == 1
    assert len(load_config(tmp_path).project.meetings) == 1


def test_bad_spec_is_a_user_error() -> None:
    with pytest.raises(CyclogramError):
        synth_files(SynthSpec(schools=0))


def test_cli_synth(tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    args = ["synth", "--schools", "12", "--teams", "2", "--meetings", "3", "--events", "7", "--seed", "5"]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "12 schools" in result.output
    assert len(load_config(out).project.schools) == 12
    again = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert again.exit_code == 1
    assert "--force" in again.output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schools=st.integers(1, 25),
    teams=st.integers(0, 6),
    meetings=st.integers(0, 6),
    events=st.integers(0, 25),
    seed=st.integers(0, 2**32),
    year=st.integers(2019, 2030),
)
def test_any_small_spec_is_valid(
    tmp_path_factory: pytest.TempPathFactory,
    schools: int,
    teams: int,
    meetings: int,
    events: int,
    seed: int,
    year: int,
) -> None:
    spec = SynthSpec(schools=schools, teams=teams, meetings=meetings, events=events, seed=seed, year=year)
    out = tmp_path_factory.mktemp("synth")
    write_config(out, synth_files(spec))
    project = load_config(out).project
    assert len(project.schools) == schools
    assert len(project.meetings) == meetings
