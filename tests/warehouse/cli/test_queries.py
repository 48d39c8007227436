"""`radgenome query` (`warehouse.cli.queries`): listing the library, running a named query with typed
--param values to the screen or a file, printing its SQL or a Spark/Trino translation, its mistakes as one
line with an exit code; and `print_transpiled` for `sql --dialect`.

The warehouse is the hand-made one of the query library's tests (`tests.fixtures.query_fixture`).
"""

from __future__ import annotations

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from queries import get_query, list_queries
from tests.fixtures import query_fixture as fx
from tests.fixtures.cli import run
from warehouse.cli import main
from warehouse.cli.queries import print_transpiled, register

QUERIES = [q.name for q in list_queries()]


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    yield from fx.opened(tmp_path_factory)


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    register(app)

    @app.command("noop")  # a second command, so typer keeps `query` as a sub-command
    def noop() -> None:
        pass

    return app


def test_cli_lists_runs_and_transpiles(cli, wh):
    runner = CliRunner()
    out = runner.invoke(cli, ["query", "--list"])
    assert out.exit_code == 0 and all(name in out.output for name in QUERIES)
    out = runner.invoke(cli, ["query", "sentences_mentioning", "--param", "term=nodule", "-p", "region=left lung",
                              "--warehouse", str(wh.root), "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "case_id,region,anatomy_path,ordinal,text,is_abnormal"
    assert len(out.output.splitlines()) == 3
    out = runner.invoke(cli, ["query", "top_abnormalities", "--dialect", "trino"])
    assert out.exit_code == 0 and "LIMIT ?" in out.output
    out = runner.invoke(cli, ["query", "top_abnormalities", "-p", "top=x", "-w", str(wh.root)])
    assert out.exit_code != 0 and "expected an integer" in str(out.exception)


def test_print_transpiled(capsys):
    assert print_transpiled("SELECT case_id FROM cases WHERE split = $split", "spark") == 0
    assert ":split" in capsys.readouterr().out
    assert print_transpiled("SELECT * EXCLUDE (age) FROM cases", "trino") == 1
    captured = capsys.readouterr()
    assert "star-modifier" in captured.err and "EXCEPT" in captured.out


# -- more of the command ----------------------------------------------------------------------------------
def test_list_shows_each_signature(cli):
    out = CliRunner().invoke(cli, ["query", "--list"])
    q = get_query("sentences_mentioning")
    assert f"sentences_mentioning({', '.join(p.signature() for p in q.params)})" in out.stdout
    assert "limit: int = 1000" in out.stdout


def test_a_named_query_with_params_written_to_a_file(cli, wh, tmp_path):
    out_file = tmp_path / "nodules.csv"
    res = CliRunner().invoke(cli, ["query", "cases_with_without", "-p", "with_term=nodules", "-p",
                                   "without_term=pleural effusion", "-w", str(wh.root), "-o", str(out_file)])
    assert res.exit_code == 0, res.output
    assert res.stdout == "" and f"wrote 2 rows to {out_file} (csv)" in res.stderr
    got = pl.read_csv(out_file)
    want = wh.query("cases_with_without", with_term="pulmonary nodule", without_term="pleural effusion")
    assert got.equals(want) and got["case_id"].to_list() == [fx.T1, fx.V1]
    res = CliRunner().invoke(cli, ["query", "top_abnormalities", "-p", "split=validation", "-w", str(wh.root),
                                   "-o", str(tmp_path / "top.parquet")])
    assert res.exit_code == 0 and pl.read_parquet(tmp_path / "top.parquet").equals(
        wh.query("top_abnormalities", split="validation"))


def test_show_sql_and_dialects_need_no_warehouse(cli):
    res = CliRunner().invoke(cli, ["query", "top_disorders", "--show-sql"])
    assert res.exit_code == 0 and res.stdout.strip() == get_query("top_disorders").sql.strip()
    res = CliRunner().invoke(cli, ["query", "sentences_mentioning", "-p", "term=x", "--dialect", "spark"])
    assert res.exit_code == 0 and res.stdout.startswith("-- parameters (named :markers): ")
    res = CliRunner().invoke(cli, ["query", "sentences_mentioning", "--dialect", "spark"])  # bound first
    assert isinstance(res.exception, Exception) and "'term' is required" in str(res.exception)


def test_a_cut_result_says_how_many_rows_there_are(cli, wh):
    res = CliRunner().invoke(cli, ["query", "sentences_mentioning", "-p", "term=nodule", "-p", "limit=2",
                                   "-w", str(wh.root), "-f", "csv"])
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 3  # header and 2 rows
    total = wh.query_total("sentences_mentioning", term="nodule")
    assert total == 5 and f"note: 2 of {total} rows (the query's limit); -p limit={total}" in res.stderr


@pytest.mark.parametrize(("args", "code", "phrase"), [
    (("query", "top_abnormalities", "-p", "top=x", "-w", "{W}"), 2, "parameter 'top': expected an integer"),
    (("query", "top_abnormalities", "-p", "top", "-w", "{W}"), 2, "expected key=value, got 'top'"),
    (("query", "top_abnormalities"), 2, "--warehouse is required to run a query"),
    (("query", "top_abnormalities", "--dialect", "oracle"), 2, "unknown dialect 'oracle'"),
    (("query", "sentences_mentioning", "-p", "term=' OR 1=1", "-p", "region=lunk", "-w", "{W}"), 2,
     "did you mean"),
    (("query", "top_abnormalities", "-w", "{W}", "-o", "{W}/missing/x.csv"), 2, "does not exist"),
])
def test_a_mistake_is_one_line_and_exit_2(capsys, wh, args, code, phrase):
    got, out, err = run(capsys, *(a.format(W=wh.root) for a in args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert (got, out) == (code, "") and len(lines) == 1 and lines[0].startswith("error: "), err
    assert phrase in lines[0]


def test_exit_codes_of_success_and_non_portable_sql(capsys, wh):
    code, out, err = run(capsys, "query", "patients_in_two_splits", "-w", str(wh.root), "-f", "jsonl")
    assert (code, err) == (0, "") and '"P7"' in out
    with pytest.raises(SystemExit) as done:  # every library query is portable: --dialect exits 0
        main(["query", "top_disorders", "--dialect", "trino"])
    assert done.value.code == 0
