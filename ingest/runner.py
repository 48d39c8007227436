"""Runs a source's per-case jobs and publishes a snapshot.

A runner (`RUNNERS`: ``local`` in process, ``pool`` a process pool, ``ray`` Ray tasks) is a
function from jobs to their rows; a new way of running jobs is one more entry there.

A build finishes what is pending, then returns a `BuildSummary`. Finished cases are
saved as they complete, so a killed build, re-run, skips them and publishes the same
snapshot an uninterrupted run would have. Publishing follows the root's commit contract
(`warehouse.store.commit`): builds into one root at once each publish on top of the others, a
second build of the same inputs waits for the first, and a build whose tables equal the
latest snapshot's publishes nothing (`BuildSummary.outcome`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.build_outcome import BuildFailedError, BuildInterrupted, discard, failed, staged_rows
from ingest.job import CaseJob, JobContext, Rows, Source, run_job
from warehouse.core.errors import WarehouseError
from warehouse.core.reference import reference_tables
from warehouse.store.commit import CommitConflictError
from warehouse.store.objects import OBJECT_STORE_ENV, is_url
from warehouse.store.snapshot import SnapshotWriter, describe_inputs

__all__ = ["RUNNERS", "BuildFailedError", "BuildInterrupted", "BuildSummary", "CommitConflictError", "Runner",
           "build", "default_workers", "get_runner"]


def default_workers() -> int:
    """Worker processes when none are asked for: the CPUs, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass
class BuildSummary:
    """What a build did."""

    snapshot_id: str
    root: Path
    source: str
    cases: int
    built: int
    skipped: int
    failed: int
    seconds: float
    row_counts: dict[str, int] = field(default_factory=dict)
    errors_by_stage: dict[str, int] = field(default_factory=dict)
    outcome: str = "published"  # or "identical" (nothing new: snapshot_id is the latest, equal one)
    # or "recovered" (an earlier run was killed just after publishing snapshot_id; only cleaned up)

    @property
    def errors(self) -> int:
        """`ingest_errors` rows of this build's source."""
        return sum(self.errors_by_stage.values())

    def __str__(self) -> str:
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors_by_stage.items()))
        rows = ", ".join(f"{k} {v:,}" for k, v in self.row_counts.items() if v)
        note = {"identical": f"; identical to {self.snapshot_id}: nothing new published",
                "recovered": f"; {self.snapshot_id} was published by the interrupted run: cleaned up"}
        return (f"snapshot {self.snapshot_id} in {self.root} ({self.source}): {self.cases} cases, "
                f"{self.built} built, {self.skipped} resumed, {self.failed} failed in {self.seconds:.1f}s"
                f"{note.get(self.outcome, '')}\n"
                f"  rows: {rows}\n  ingest_errors: {self.errors:,}" + (f" ({errs})" if errs else ""))


@dataclass
class _Tally:
    """Counts of one build run, kept as results are saved."""

    cases: int = 0  # cases met (bulk case rows and jobs)
    skipped: int = 0  # saved by an earlier run
    saved: int = 0  # saved by this run
    failed: int = 0  # jobs whose output is only ingest_errors
    usable: int = 0  # cases or bulk parts with rows beyond ingest_errors


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not enabled, transient=False)


class Runner(Protocol):
    """Runs jobs and yields each one's ``(case id, rows by table)`` as it completes, in any order."""

    def __call__(self, jobs: Iterable[CaseJob], ctx: JobContext, *, workers: int, address: str | None
                 ) -> Iterator[tuple[str, Rows]]: ...


def run_local(jobs: Iterable[CaseJob], ctx: JobContext, *, workers: int, address: str | None
              ) -> Iterator[tuple[str, Rows]]:
    """One job after another, in this process."""
    for job in jobs:
        yield run_job(job, ctx)


def run_pool(jobs: Iterable[CaseJob], ctx: JobContext, *, workers: int, address: str | None
             ) -> Iterator[tuple[str, Rows]]:
    """A process pool of `workers`; in this process when there is one worker or one job."""
    if workers <= 1 or (isinstance(jobs, Sized) and len(jobs) <= 1):
        yield from run_local(jobs, ctx, workers=workers, address=address)
        return
    # forkserver: workers never inherit the parent's threads (DuckDB, zarr) half-locked.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        pending = set()
        try:
            for job in jobs:  # keep at most 2 x workers in flight: memory stays bounded
                pending.add(pool.submit(run_job, job, ctx))
                if len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            for f in pending:
                yield f.result()
        except BaseException:  # Ctrl-C or a failed save: drop the queued jobs, let running ones end
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def run_ray(jobs: Iterable[CaseJob], ctx: JobContext, *, workers: int, address: str | None
            ) -> Iterator[tuple[str, Rows]]:
    """Ray tasks on the cluster at `address`, or on a local Ray instance of `workers` CPUs (one already
    started in this process is used as it is)."""
    import ray

    for attempt in range(3):  # a loaded machine can make Ray's own start-up time out
        if ray.is_initialized():
            break
        try:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False)
        except Exception:
            if attempt == 2:
                raise
            time.sleep(2)
    remote = ray.remote(run_job)
    if is_url(ctx.arrays_path):  # workers write to the bucket: give them the driver's object-store settings
        env = {k: v for k, v in os.environ.items() if k in OBJECT_STORE_ENV}
        remote = remote.options(runtime_env={"env_vars": env})
    refs = [remote.remote(job, ctx) for job in jobs]
    while refs:
        done, refs = ray.wait(refs, num_returns=1)
        yield ray.get(done[0])


# The runners by name: `build(runner=...)` and the CLI's --runner take these names.
RUNNERS: dict[str, Runner] = {"local": run_local, "pool": run_pool, "ray": run_ray}


def get_runner(name: str) -> Runner:
    """The runner registered as `name`; a `WarehouseError` naming the choices for any other name."""
    try:
        return RUNNERS[name]
    except KeyError:
        raise WarehouseError(f"unknown runner {name!r}: choose one of {', '.join(RUNNERS)}", stage="ingest") from None


def build(source: Source, root: Path | str, *, runner: str = "pool", workers: int | None = None,
          progress: bool = True, ray_address: str | None = None, extra_manifest: dict | None = None
          ) -> BuildSummary:
    """Build (or resume) a snapshot of `source` under warehouse `root` and publish it.

    `runner` names one of `RUNNERS` (an unknown name is refused before anything is written).
    Raises `BuildFailedError` and publishes nothing when the inputs yield no cases or every
    case failed (the staging is discarded, so a re-run starts afresh), `BuildInterrupted`
    on Ctrl-C (the finished cases stay staged: a re-run resumes), and `CommitConflictError`
    when other builds kept publishing first (staged too). Waits while another process
    builds the same inputs into `root`.
    """
    t0 = time.perf_counter()
    run = get_runner(runner)
    workers = workers or default_workers()
    root_existed = is_url(root) or Path(root).expanduser().exists()
    writer = SnapshotWriter(root, source.build_key(), on_wait=_say if progress else None)
    try:
        tally, case_ids = _stage(source, writer, root_existed, run, workers, progress, ray_address)
        snap = writer.publish(replaced_cases=case_ids, source=source.name, tables=reference_tables(),
                              inputs=describe_inputs(source.inputs()), extra=extra_manifest)
    finally:
        writer.close()  # the staging's lock: released whatever happened
    return BuildSummary(snapshot_id=snap.snapshot_id, root=snap.root, source=source.name, cases=tally.cases,
                        built=tally.saved, skipped=tally.skipped, failed=tally.failed,
                        seconds=time.perf_counter() - t0, row_counts=snap.manifest["row_counts"],
                        errors_by_stage=_error_stages(snap), outcome=writer.outcome or "published")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stage(source: Source, writer: SnapshotWriter, root_existed: bool, runner: Runner, workers: int,
           progress: bool, ray_address: str | None) -> tuple[_Tally, set[str]]:
    """Save every case's rows in the writer's staging; returns the tally and the case ids met."""
    ctx = JobContext(arrays_path=writer.arrays_path, source=source.name)
    case_ids: set[str] = set()
    tally = _Tally()
    try:
        with _progress(progress) as bar:
            task = bar.add_task(f"ingest {source.name}", total=None)
            for part_id, rows in source.bulk():
                key, n = f"bulk:{part_id}", len(rows.get("cases", ()))
                for name, r in rows.items():
                    case_ids.update(x["case_id"] for x in r if x.get("case_id"))
                    if name != "ingest_errors" and len(r):
                        tally.usable += 1
                tally.cases += n
                if writer.is_done(key):
                    tally.skipped += n
                else:
                    writer.save_part(key, rows)
                    tally.saved += n
                bar.advance(task, n)
            jobs = source.jobs()  # may be a generator: sources that stream archives make jobs as they read
            bar.update(task, total=_expected_total(source, jobs, tally))
            _run_jobs(jobs, writer, ctx, tally, case_ids, lambda: bar.advance(task), runner, workers, ray_address)
            bar.update(task, total=tally.cases)
    except KeyboardInterrupt:
        raise BuildInterrupted(tally.saved + tally.skipped, writer.staging) from None
    except Exception:  # a bad option or input met before anything was saved leaves no trace
        if not any((writer.staging / "done").iterdir()):
            discard(writer, root_existed)
        raise
    if not tally.usable and not staged_rows(writer):
        raise failed(source, writer, tally.cases, root_existed)
    return tally, case_ids


def _expected_total(source: Source, jobs: Iterable[CaseJob], tally: _Tally) -> int | None:
    """The progress bar's total: cases so far plus the jobs, where the source can tell how many."""
    if isinstance(jobs, Sized):
        return tally.cases + len(jobs)
    expected = getattr(source, "expected_cases", None)
    n = expected() if callable(expected) else None
    return max(n, tally.cases) if n is not None else None


def _run_jobs(jobs: Iterable[CaseJob], writer: SnapshotWriter, ctx: JobContext, tally: _Tally,
              case_ids: set[str], advance: Callable[[], object], runner: Runner, workers: int,
              ray_address: str | None) -> None:
    """Run the jobs not saved yet and save each result as it completes."""
    def todo() -> Iterator[CaseJob]:
        for job in jobs:
            tally.cases += 1
            case_ids.add(job.case_id)
            if writer.is_done(job.case_id):
                tally.skipped += 1
                advance()
            else:
                yield job

    pending = list(todo()) if isinstance(jobs, Sized) else todo()
    for case_id, tables in runner(pending, ctx, workers=workers, address=ray_address):
        if set(tables) == {"ingest_errors"}:
            tally.failed += 1
        elif any(len(rows) for name, rows in tables.items() if name != "ingest_errors"):
            tally.usable += 1
        writer.save_part(case_id, tables)
        tally.saved += 1
        advance()


def _error_stages(snap) -> dict[str, int]:
    import pyarrow.parquet as pq

    t = pq.read_table(snap.table_path("ingest_errors"), columns=["stage", "source"])
    return dict(Counter(s or "unknown" for s, src in zip(t["stage"].to_pylist(), t["source"].to_pylist(), strict=True)
                        if src == snap.manifest["source"]))
