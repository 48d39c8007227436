"""Every mistake a user can make at the command line is one line on stderr, naming what to change, and
an exit code (2: usage, 1: failed work); a traceback only with --debug, or for a bug."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cli import run
from warehouse.cli import main


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    """W: a demo warehouse; E: an empty folder; M: a path that does not exist; T: a scratch folder."""
    tmp = tmp_path_factory.mktemp("mistakes")
    build(DemoSource(n=3), tmp / "wh", runner="local", progress=False)
    (tmp / "empty").mkdir()
    (tmp / "scratch").mkdir()
    return {"W": tmp / "wh", "E": tmp / "empty", "M": tmp / "missing", "T": tmp / "scratch"}


SQL = ("sql", "-w", "{W}")
MISTAKES: list[tuple[str, tuple[str, ...], int, str]] = [
    # SQL the engine rejects
    ("wrong column", (*SQL, "SELECT shape FROM cases"), 2, 'column "shape" not found'),
    ("type error", (*SQL, "SELECT * FROM cases WHERE age > 'fifty'"), 2, "Could not convert string 'fifty'"),
    ("type error in a bound value", (*SQL, "SELECT * FROM cases WHERE age > $a", "-p", "a=fifty"), 2,
     "Could not convert string 'fifty'"),
    ("unbound parameter", (*SQL, "SELECT * FROM cases WHERE case_id = $id"), 2, "add --param id=VALUE"),
    ("unused parameter", (*SQL, "SELECT * FROM cases WHERE case_id = $id", "-p", "id=x", "-p", "extra=1"), 2,
     "the query has no $extra"),
    ("parameter for a query without any", (*SQL, "SELECT 1", "-p", "x=1"), 2, "0 $parameter(s) but 1 --param"),
    ("positional parameter", (*SQL, "SELECT $1"), 2, "positional parameters"),
    ("syntax error", (*SQL, "SELEC * FROM cases"), 2, 'syntax error at or near "SELEC" (line 1, column 1)'),
    ("unterminated string", (*SQL, "SELECT 'x"), 2, "unterminated string literal"),
    ("unknown function", (*SQL, "SELECT nosuchfunc(1)"), 2, "nosuchfunc does not exist"),
    ("ambiguous column", (*SQL, "SELECT source FROM cases JOIN reports USING (case_id)"), 2, "Ambiguous reference"),
    ("overflow", (*SQL, "SELECT 2147483647::INT + 1"), 2, "Overflow"),
    ("two statements", (*SQL, "SELECT 1; SELECT 2"), 2, "expected one SQL statement, got 2"),
    ("empty query", (*SQL, ""), 2, "expected one SQL statement, got 0"),
    # writes and file access, refused
    ("delete", (*SQL, "DELETE FROM cases"), 2, "only read-only queries are allowed"),
    ("create", (*SQL, "CREATE TABLE t AS SELECT 1"), 2, "only read-only queries are allowed"),
    ("copy", (*SQL, "COPY cases TO 'x.csv'"), 2, "this is a COPY statement"),
    ("attach", (*SQL, "ATTACH 'x.db'"), 2, "this is a ATTACH statement"),
    ("read a file", (*SQL, "SELECT * FROM read_csv('/etc/passwd')"), 2, "reading files is not allowed"),
    ("scan a file", (*SQL, "SELECT * FROM 'x.parquet'"), 2, "unknown table 'x.parquet'"),
    ("unknown table", (*SQL, "SELECT * FROM nope"), 2, "unknown table 'nope'"),
    # options and outputs
    ("param without =", (*SQL, "SELECT 1", "-p", "region"), 2, "expected key=value, got 'region'"),
    ("parquet to the screen", (*SQL, "SELECT 1", "-f", "parquet"), 2, "add -o FILE.parquet"),
    ("arrow to the screen", (*SQL, "SELECT 1", "-f", "arrow"), 2, "add -o FILE.arrow"),
    ("unknown extension", (*SQL, "SELECT 1", "-o", "{T}/out.xlsx"), 2, "cannot tell a format from 'out.xlsx'"),
    ("format and extension disagree", (*SQL, "SELECT 1", "-f", "csv", "-o", "{T}/out.parquet"), 2,
     "--format csv conflicts with 'out.parquet'"),
    ("output folder missing", (*SQL, "SELECT 1", "-o", "{M}/out.csv"), 2, "does not exist"),
    ("output is a folder", (*SQL, "SELECT 1", "-o", "{T}"), 2, "is a folder"),
    ("nested column as CSV", (*SQL, "SELECT paths FROM anatomy", "-f", "csv"), 2,
     "CSV cannot hold nested columns (paths)"),
    ("unknown format", (*SQL, "SELECT 1", "-f", "xml"), 2, "'xml' is not one of"),
    ("unknown option", (*SQL, "SELECT 1", "--bogus"), 2, "No such option: --bogus"),
    ("no query", ("sql", "-w", "{W}"), 2, "Missing argument"),
    ("no warehouse", ("sql", "SELECT 1"), 2, "--warehouse is required"),
    ("unknown dialect", ("sql", "SELECT 1", "--dialect", "oracle"), 2, "unknown dialect 'oracle'"),
    ("unknown command", ("sqll",), 2, "No such command 'sqll'"),
    ("unknown ingest source", ("ingest", "nope"), 2, "No such command 'nope'"),
    # warehouses and snapshots
    ("not a warehouse", ("sql", "-w", "{E}", "SELECT 1"), 2, "is not a warehouse"),
    ("no such folder", ("sql", "-w", "{M}", "SELECT 1"), 2, "does not exist"),
    ("unknown snapshot", (*SQL, "SELECT 1", "--snapshot", "00009-deadbeef"), 2, "no snapshot '00009-deadbeef'"),
    ("info without -w", ("info",), 2, "Missing option '--warehouse'"),
    ("info of a non-warehouse", ("info", "-w", "{E}"), 2, "is not a warehouse"),
    ("info of an unknown snapshot", ("info", "-w", "{W}", "--snapshot", "nope"), 2, "no snapshot 'nope'"),
    ("snapshots of no folder", ("snapshots", "-w", "{M}"), 2, "does not exist"),
    ("snapshots of a non-warehouse", ("snapshots", "-w", "{E}"), 2, "is not a warehouse"),
    ("export-release of a non-warehouse", ("export-release", "{T}/out", "-w", "{E}"), 2, "is not a warehouse"),
    # named queries
    ("unknown named query", ("query", "top_abnormalitis", "-w", "{W}"), 2, "no named query 'top_abnormalitis'"),
    ("parameter of the wrong type", ("query", "top_abnormalities", "-p", "top=x", "-w", "{W}"), 2,
     "expected an integer"),
    ("unknown parameter", ("query", "top_abnormalities", "-p", "nope=1", "-w", "{W}"), 2, "has no parameter 'nope'"),
    ("missing parameter", ("query", "case_sentences", "-w", "{W}"), 2, "parameter 'case_id' is required"),
    ("value not in the enum", ("query", "top_abnormalities", "-p", "split=test", "-w", "{W}"), 2,
     "'test' is not one of train, validation"),
    ("no query name", ("query", "-w", "{W}"), 2, "give a query name, or --list"),
    ("named query as parquet without -o", ("query", "top_abnormalities", "-w", "{W}", "-f", "parquet"), 2,
     "add -o FILE.parquet"),
    # exports, pictures, structuring
    ("export with --sql and --query", ("export", "{T}/cohort", "-w", "{W}", "--sql", "SELECT 1", "--query", "x"), 2,
     "exactly one of --sql or --query"),
    ("export with a wrong column", ("export", "{T}/cohort", "-w", "{W}", "--sql", "SELECT shape FROM cases"), 2,
     'column "shape" not found'),
    ("show an unknown case", ("show", "nope.nii.gz", "-w", "{W}", "-o", "{T}/x.png"), 2, "no case 'nope.nii.gz'"),
    ("show an unknown region", ("show", "train_1_a_1.nii.gz", "-w", "{W}", "--region", "lunk", "-o", "{T}/x.png"),
     2, "did you mean 'lung'"),
    ("structure a missing file", ("structure", "{M}/r.csv", "-o", "{T}/o.csv"), 2, "does not exist"),
    ("eval against a missing folder", ("eval", "grounding", "--truth", "{M}"), 2, "does not exist"),
    ("demo of no cases", ("demo", "{T}/demo", "--cases", "0"), 2, "--cases"),
    # ingest options
    ("ingest a missing images folder", ("ingest", "folder", "--images", "{M}", "-w", "{T}/wh"), 2, "is not a folder"),
    ("ingest a missing reports file", ("ingest", "folder", "--images", "{E}", "--reports", "{M}/r.csv", "-w",
                                       "{T}/wh"), 2, "is not a file"),
    ("ingest with an unknown runner", ("ingest", "folder", "--images", "{E}", "-w", "{T}/wh", "--runner", "spark"),
     2, "choose one of local, pool, ray"),
    ("ray address without ray", ("ingest", "folder", "--images", "{E}", "-w", "{T}/wh", "--address", "x"), 2,
     "--address needs --runner ray"),
    ("unknown segmenter", ("ingest", "folder", "--images", "{E}", "-w", "{T}/wh", "--segmenter", "magic"), 2,
     "unknown segmenter 'magic'"),
    ("ingest radgenome without folders", ("ingest", "radgenome", "-w", "{T}/wh"), 2, "give --release, --ct-rate"),
    ("ingest a missing release", ("ingest", "radgenome", "--release", "{M}", "-w", "{T}/wh"), 2, "is not a folder"),
    ("ingest a release of nothing", ("ingest", "radgenome", "--release", "{E}", "-w", "{T}/wh"), 1,
     "none of the released files are in it"),
]


@pytest.mark.parametrize(("args", "code", "phrase"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_and_an_exit_code(capsys, places, args, code, phrase):
    got, out, err = run(capsys, *(a.format(**places) for a in args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert phrase in lines[0] and "Traceback" not in out + err


def test_the_corpus_is_large_and_leaves_no_trace(places):
    assert len(MISTAKES) >= 30
    assert not (places["T"] / "wh").exists(), "a refused ingest leaves no warehouse folder behind"
    assert sorted(p.name for p in places["T"].iterdir()) == [], "nor outputs, cohorts or pictures"


def test_debug_shows_the_traceback(capsys, places, monkeypatch):
    import duckdb

    with pytest.raises(duckdb.BinderException):
        main(["--debug", *(a.format(**places) for a in SQL), "SELECT shape FROM cases"])
    monkeypatch.setenv("RADGENOME_DEBUG", "1")
    with pytest.raises(duckdb.BinderException):
        main([*(a.format(**places) for a in SQL), "SELECT shape FROM cases"])
    monkeypatch.setenv("RADGENOME_DEBUG", "0")
    assert run(capsys, *(a.format(**places) for a in SQL), "SELECT shape FROM cases")[0] == 2


def test_a_bug_still_shows_its_traceback(places, monkeypatch):
    from warehouse.api import Warehouse

    def broken(self, query, params=None):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Warehouse, "sql", broken)
    with pytest.raises(ZeroDivisionError):
        main([*(a.format(**places) for a in SQL), "SELECT 1"])


def test_success_and_help_exit_zero(capsys, places):
    code, out, err = run(capsys, *(a.format(**places) for a in SQL), "SELECT count(*) AS n FROM cases", "-f", "csv")
    assert (code, out, err) == (0, "n\n3\n", "")
    code, out, _ = run(capsys, "sql", "--help")
    assert code == 0 and "--format" in out
