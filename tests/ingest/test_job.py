"""`ingest.job`: the contract between sources and the runner. `run_job` turns any failure of a case
into an `ingest_errors` row, `CaseOutput` collects rows, `printable` makes error text safe to show,
and `Source.build_key` names a build's inputs stably."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.job import CaseJob, CaseOutput, JobContext, Source, printable, run_job
from tests import ROOT
from warehouse.core import schema
from warehouse.core.errors import GridMismatchError, IngestError, WarehouseError

CASE = "train_7_a_1.nii.gz"


def explode() -> None:
    raise ValueError("voxel spacing is zero")


RAISE_LINE = explode.__code__.co_firstlineno + 1  # where the ValueError above is raised


@dataclass
class Job(CaseJob):
    """A job that returns rows, records a partial failure, or raises what it is given."""

    case_id: str = CASE
    raise_: BaseException | None = None
    crash: bool = False
    partial: bool = False
    stage: str = "masks"

    def run(self, ctx: JobContext) -> CaseOutput:
        if self.crash:
            explode()
        if self.raise_ is not None:
            raise self.raise_
        out = CaseOutput()
        out.add("cases", {"case_id": self.case_id, "source": ctx.source})
        out.add("sentences", [{"sentence_id": "s1", "case_id": self.case_id, "ordinal": 0, "text": "Clear."}])
        if self.partial:
            out.error(ctx.source, "mask unreadable\x00", case_id=self.case_id, stage="masks", file="heart.nii.gz")
        return out


@dataclass
class Src(Source):
    paths: list[str] = field(default_factory=list)
    name: str = "folder"

    def jobs(self):
        return []

    def inputs(self) -> list[Path]:
        return [Path(p) for p in self.paths]


@pytest.fixture
def ctx(tmp_path) -> JobContext:
    return JobContext(arrays_path=tmp_path / "arrays.zarr", source="folder")


# -- run_job -------------------------------------------------------------------------------------
def test_a_job_that_succeeds_gives_its_rows(ctx):
    case_id, tables = run_job(Job(), ctx)
    assert case_id == CASE and set(tables) == {"cases", "sentences"}
    assert tables["cases"] == [{"case_id": CASE, "source": "folder"}]
    for name, rows in tables.items():
        schema.to_table(name, rows)  # the rows fit the schema


def test_a_partial_failure_rides_along_as_an_error_row(ctx):
    _, tables = run_job(Job(partial=True), ctx)
    assert set(tables) == {"cases", "sentences", "ingest_errors"}
    assert tables["ingest_errors"] == [{"source": "folder", "case_id": CASE, "stage": "masks", "file": "heart.nii.gz",
                                        "location": None, "error": "mask unreadable\\x00"}]


def test_a_warehouse_error_becomes_one_row_with_its_context_and_hint(ctx):
    err = GridMismatchError("mask 'heart' has shape (3, 3, 3)", case_id=CASE, file="heart.nii.gz", stage="grid",
                            hint="resample it")
    case_id, tables = run_job(Job(raise_=err), ctx)
    assert case_id == CASE and list(tables) == ["ingest_errors"]
    assert tables["ingest_errors"] == [{"source": "folder", "case_id": CASE, "stage": "grid", "file": "heart.nii.gz",
                                        "location": None, "error": "mask 'heart' has shape (3, 3, 3) — resample it"}]
    schema.to_table("ingest_errors", tables["ingest_errors"])


@pytest.mark.parametrize("err", [IngestError("no CT in the folder"), WarehouseError("no CT in the folder")])
def test_an_error_without_a_stage_takes_the_jobs(ctx, err):
    [row] = run_job(Job(raise_=err, stage="image"), ctx)[1]["ingest_errors"]
    assert (row["stage"], row["file"], row["error"]) == ("image", None, "no CT in the folder")


def test_an_unexpected_exception_names_its_type_and_where_it_was_raised(ctx):
    case_id, tables = run_job(Job(crash=True, stage="segment"), ctx)
    [row] = tables["ingest_errors"]
    assert case_id == CASE and list(tables) == ["ingest_errors"]
    assert row["error"] == f"ValueError: voxel spacing is zero (at {Path(__file__).name}:{RAISE_LINE})"
    assert (row["stage"], row["file"], row["case_id"], row["source"]) == ("segment", None, CASE, "folder")


def test_an_interrupt_is_not_swallowed(ctx):
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stops the build; it is not a bad case
        run_job(Job(raise_=KeyboardInterrupt()), ctx)


def test_jobs_and_their_results_cross_a_process_boundary(ctx):
    job = Job(crash=True)
    assert pickle.loads(pickle.dumps(job)) == job
    result = run_job(job, ctx)
    assert pickle.loads(pickle.dumps(result)) == result


# -- CaseOutput ----------------------------------------------------------------------------------
def test_case_output_copies_rows_and_appends_errors_to_ingest_errors():
    out = CaseOutput()
    row = {"case_id": CASE}
    out.add("cases", row)
    row["case_id"] = "changed later"
    out.add("vqa", iter([{"vqa_id": "a"}, {"vqa_id": "b"}]))
    out.add("vqa", [])
    out.add("ingest_errors", {"source": "x", "case_id": CASE, "error": "from a bulk reader"})
    out.error("folder", "bad row", case_id=CASE, location="line 3")
    tables = out.tables()
    assert tables["cases"] == [{"case_id": CASE}] and [r["vqa_id"] for r in tables["vqa"]] == ["a", "b"]
    assert [r["error"] for r in tables["ingest_errors"]] == ["from a bulk reader", "bad row"]
    assert tables["ingest_errors"][1]["location"] == "line 3"
    assert "ingest_errors" not in CaseOutput(rows={"cases": []}).tables()


# -- printable -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "shown"), [
    (None, None),
    ("plain text, é and 中文", "plain text, é and 中文"),  # printable Unicode stays
    ("two\nlines\ttab", "two\\nlines\\ttab"),
    ("nul\x00 and del\x7f and c1\x85", "nul\\x00 and del\\x7f and c1\\x85"),
    (os.fsdecode(b"scan_\xff.nii.gz"), "scan_\\xff.nii.gz"),  # a file name that is not UTF-8
    (Path("a/b.nii.gz"), "a/b.nii.gz"),
    (42, "42"),
])
def test_printable(text, shown):
    assert printable(text) == shown


def test_printable_output_is_one_printable_line():
    weird = "".join(chr(i) for i in range(0, 0xA0)) + os.fsdecode(b"\x80\xfe")
    shown = printable(weird)
    assert shown.isprintable() and "\n" not in shown
    shown.encode("utf-8")  # no lone surrogate left


# -- build_key -----------------------------------------------------------------------------------
def test_build_key_is_stable_and_ignores_input_order():
    a = Src(["/data/ct", "/data/reports.csv"])
    key = a.build_key()
    assert key.startswith("folder-") and len(key) == len("folder-") + 12
    assert Src(["/data/reports.csv", "/data/ct"]).build_key() == key
    code = ("from pathlib import Path\nfrom ingest.job import Source\n"
            "class Src(Source):\n    name = 'folder'\n    def jobs(self): return []\n"
            "    def inputs(self): return [Path('/data/reports.csv'), Path('/data/ct')]\n"
            "print(Src().build_key())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == key  # the same in another process: a re-run resumes the same staging folder


def test_build_key_differs_with_the_inputs_and_the_source():
    keys = {Src([]).build_key(), Src(["/data/ct"]).build_key(), Src(["/data/ct", "/data/reports.csv"]).build_key(),
            Src(["/data/ct2"]).build_key(), Src(["/data/ct"], name="radgenome").build_key()}
    assert len(keys) == 5


def test_build_key_inputs_cannot_run_together():
    # paths that concatenate to the same text are different inputs: another build, another staging folder
    assert Src(["/a", "/b/c"]).build_key() != Src(["/a/b", "/c"]).build_key()
