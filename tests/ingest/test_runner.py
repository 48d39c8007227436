"""`ingest.runner`'s registry of runners: the names `build` and the CLI's --runner take, and a new runner
is one more entry."""

from __future__ import annotations

import pytest
import typer

from ingest import runner
from ingest.job import JobContext
from ingest.runner import RUNNERS, build, get_runner
from ingest.sources.demo import DemoSource
from warehouse.cli._output import RUNNER_HELP
from warehouse.cli.pipeline import register_ingest as folder_commands
from warehouse.cli.release import register_ingest as release_commands
from warehouse.core.errors import WarehouseError


def test_the_registry_names_every_runner():
    assert list(RUNNERS) == ["local", "pool", "ray"]
    assert all(get_runner(name) is RUNNERS[name] for name in RUNNERS)


def test_the_cli_help_names_the_registered_runners():
    *first, last = RUNNERS
    assert RUNNER_HELP == f"{', '.join(first)} or {last}."  # written out: --help must not import ingest
    app, ingest_app = typer.Typer(), typer.Typer()
    app.add_typer(ingest_app, name="ingest")
    folder_commands(ingest_app)
    release_commands(ingest_app)
    commands = typer.main.get_command(app).commands["ingest"].commands
    for name in ("folder", "radgenome"):
        [option] = [p for p in commands[name].params if p.name == "runner"]
        assert option.help == RUNNER_HELP, name


def test_an_unknown_runner_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(WarehouseError, match=r"unknown runner 'spark': choose one of local, pool, ray"):
        get_runner("spark")
    with pytest.raises(WarehouseError, match="choose one of local, pool, ray"):
        build(DemoSource(n=1), tmp_path / "wh", runner="spark", progress=False)
    assert not (tmp_path / "wh").exists()


def test_a_registered_runner_runs_the_build(tmp_path, monkeypatch):
    seen: list[str] = []

    def recording(jobs, ctx, *, workers, address):
        for case_id, rows in runner.run_local(jobs, ctx, workers=workers, address=address):
            seen.append(case_id)
            yield case_id, rows

    monkeypatch.setitem(RUNNERS, "recording", recording)
    summary = build(DemoSource(n=2), tmp_path / "wh", runner="recording", progress=False)
    assert summary.built == 2 and sorted(seen) == sorted(j.case_id for j in DemoSource(n=2).jobs())


def test_the_pool_runs_a_lone_job_or_one_worker_in_process(monkeypatch, tmp_path):
    def no_pool(*a, **k):
        raise AssertionError("a process pool for one job or one worker")

    monkeypatch.setattr(runner, "ProcessPoolExecutor", no_pool)
    job, ctx, calls = DemoSource(n=1).jobs(), JobContext(arrays_path=tmp_path, source="demo"), []
    monkeypatch.setattr(runner, "run_job", lambda j, c: calls.append(j.case_id) or (j.case_id, {}))
    assert list(runner.run_pool(job, ctx, workers=4, address=None)) == [(job[0].case_id, {})]
    assert list(runner.run_pool(iter(job), ctx, workers=1, address=None)) == [(job[0].case_id, {})]
    assert calls == [job[0].case_id] * 2
