"""Query limits: user SQL stops at its time limit, its memory limit and its size limit with one line,
Ctrl-C ends a query with one line (exit 130), and the warehouse answers the next query afterwards.
Every long query here has a limit of a few seconds at most, so a failing test cannot run away."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from warehouse import Warehouse
from warehouse.cli import main
from warehouse.core.errors import QueryRefusedError, WarehouseError
from warehouse.query_limits import Limits, QueryInterrupted, QueryMemoryError, QueryTimeoutError, time_limit

ENDLESS = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r"
CROSS = "SELECT count(*) FROM anatomy_closure a, anatomy_closure b, anatomy_closure c, anatomy_closure d"
BIG_STRING = "SELECT length(string_agg(repeat('x', 1000000), '')) AS n FROM range(1000)"  # 1 GB in one value
LIMIT_VARS = ("RADGENOME_QUERY_TIMEOUT", "RADGENOME_QUERY_MEMORY", "RADGENOME_QUERY_SPILL", "RADGENOME_QUERY_MAX_SQL")


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch) -> None:
    for name in LIMIT_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("limits") / "wh"
    build(DemoSource(n=2), root, runner="local", progress=False)
    return root


@pytest.fixture(scope="module")
def wh(root) -> Warehouse:
    with Warehouse.open(root) as wh:
        yield wh


def cases(wh: Warehouse) -> int:
    return int(wh.sql("SELECT count(*) AS n FROM cases")["n"][0])


def run(capsys, *args: str) -> tuple[int, str]:
    """`radgenome ARGS` in process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_endless_recursive_cte_stops_at_its_time_limit(wh):
    t0 = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="time limit of 1 s") as e:
        wh.sql(ENDLESS, timeout=1)
    assert time.monotonic() - t0 < 4
    assert isinstance(e.value, WarehouseError | TimeoutError) and e.value.exit_code == 1
    assert "RADGENOME_QUERY_TIMEOUT" in str(e.value) and "\n" not in str(e.value)
    assert cases(wh) == 2  # the same Warehouse answers the next query


def test_cross_join_stops_at_its_time_limit(wh):
    t0 = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        wh.arrow(CROSS, timeout=1)
    assert time.monotonic() - t0 < 4
    with time_limit(0.5), pytest.raises(QueryTimeoutError, match="0.5 s"):  # a block's limit
        wh.sql(CROSS)
    assert cases(wh) == 2


def test_default_and_environment_time_limits(root, monkeypatch):
    assert Limits().timeout == 60 and Limits.from_env({}).timeout == 60
    monkeypatch.setenv("RADGENOME_QUERY_TIMEOUT", "1")
    with Warehouse.open(root) as wh, pytest.raises(QueryTimeoutError, match="time limit of 1 s"):
        wh.sql(ENDLESS)
    monkeypatch.setenv("RADGENOME_QUERY_TIMEOUT", "soon")
    with pytest.raises(WarehouseError, match="RADGENOME_QUERY_TIMEOUT must be a number of seconds"):
        Warehouse.open(root)


def test_named_queries_take_a_timeout(wh):
    from queries import list_queries

    assert not [q.name for q in list_queries() if q.has_param("timeout")]  # `timeout` is the limit's keyword
    assert wh.query("top_disorders", timeout=5, top=3).height == 3


def test_cli_timeout_is_one_line_and_exit_1(root, capsys):
    code, err = run(capsys, "sql", "-w", str(root), "--timeout", "1", ENDLESS)
    assert code == 1 and one_line(err).startswith("error: the query was stopped at its time limit of 1 s")
    assert "--timeout SECONDS" in err
    code, err = run(capsys, "query", "top_disorders", "-w", str(root), "--timeout", "5", "-f", "csv")
    assert code == 0
    code, err = run(capsys, "sql", "-w", str(root), "--timeout", "-1", "SELECT 1")
    assert code == 2 and "--timeout" in one_line(err)


def test_memory_limit_ends_a_query_with_one_line(root, monkeypatch, capsys):
    monkeypatch.setenv("RADGENOME_QUERY_MEMORY", "256MB")
    with Warehouse.open(root) as wh:
        assert wh._engine.memory_limit == "244.1 MiB"
        with pytest.raises(QueryMemoryError, match="ran out of memory") as e:
            wh.sql(BIG_STRING, timeout=20)
        assert e.value.exit_code == 1 and "RADGENOME_QUERY_MEMORY" in str(e.value) and "\n" not in str(e.value)
        assert cases(wh) == 2  # the process and the connection survive
    code, err = run(capsys, "sql", "-w", str(root), "--timeout", "20", BIG_STRING)
    assert code == 1 and one_line(err).startswith("error: the query ran out of memory")
    monkeypatch.setenv("RADGENOME_QUERY_MEMORY", "lots")
    code, err = run(capsys, "sql", "-w", str(root), "SELECT 1")
    assert code == 2 and "RADGENOME_QUERY_MEMORY='lots' is not a size" in one_line(err)


def test_spill_folder_is_private_and_removed(root, monkeypatch):
    wh = Warehouse.open(root)
    spill = Path(wh._engine._spill_dir)
    assert spill.parent == Path(tempfile.gettempdir()) and stat.S_IMODE(spill.stat().st_mode) == 0o700
    wh.close()
    assert not spill.exists()
    monkeypatch.setenv("RADGENOME_QUERY_SPILL", "0")
    with Warehouse.open(root) as wh:
        assert wh._engine._spill_dir is None and cases(wh) == 2


def test_statement_over_the_size_limit_is_refused_before_parsing(wh, root, monkeypatch, capsys):
    huge = "SELECT " + "+".join(["1"] * 350_000)  # 1 MB: seconds and hundreds of MB in the parsers
    t0 = time.monotonic()
    with pytest.raises(QueryRefusedError, match="700,006 characters, over the limit of 100,000"):
        wh.sql(huge)
    assert time.monotonic() - t0 < 0.2
    t0 = time.monotonic()
    code, err = run(capsys, "sql", "-w", str(root), huge)
    assert code == 2 and "RADGENOME_QUERY_MAX_SQL" in one_line(err) and time.monotonic() - t0 < 1
    monkeypatch.setenv("RADGENOME_QUERY_MAX_SQL", "20")
    with Warehouse.open(root) as small, pytest.raises(QueryRefusedError, match="over the limit of 20"):
        small.sql("SELECT count(*) FROM cases")
    assert Limits.from_env({"RADGENOME_QUERY_MAX_SQL": "0"}).max_sql == 0  # 0: no limit


def test_interrupt_from_another_thread_leaves_the_connection_usable(wh):
    threading.Timer(0.5, wh._engine._con.interrupt).start()
    t0 = time.monotonic()
    with pytest.raises(QueryInterrupted) as e:
        wh.sql(ENDLESS, timeout=5)
    assert time.monotonic() - t0 < 4 and isinstance(e.value, KeyboardInterrupt) and str(e.value) == "interrupted"
    assert cases(wh) == 2


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in LIMIT_VARS}


def _interrupted(code: str, *args: str, after: float = 0.5) -> subprocess.CompletedProcess:
    """Run `code` in a child that prints `ready` before its query, and send it SIGINT `after` seconds later."""
    p = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=_child_env())
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(after)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        p.kill()
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.mark.parametrize("after", [0.2, 0.5, 1.0])  # as the command starts, as the query binds, as it runs
def test_ctrl_c_in_the_cli_is_one_line_and_exit_130(root, after):
    code = "import sys; from warehouse.cli import main; print('ready', flush=True); main(sys.argv[1:])"
    t0 = time.monotonic()
    p = _interrupted(code, "sql", "-w", str(root), "--timeout", "15", ENDLESS, after=after)
    assert p.returncode == 130 and p.stderr == "interrupted\n" and p.stdout == ""
    assert time.monotonic() - t0 < after + 5  # stopped by Ctrl-C, not by the time limit


def test_ctrl_c_in_python_leaves_the_warehouse_usable(root):
    code = "\n".join([
        "import sys; from warehouse import Warehouse; wh = Warehouse.open(sys.argv[1]); print('ready', flush=True)",
        "try:", "    wh.sql(sys.argv[2], timeout=15)",
        "except KeyboardInterrupt as e:", "    print(type(e).__name__)",
        "print(wh.sql('SELECT count(*) AS n FROM cases')['n'][0])"])
    p = _interrupted(code, str(root), ENDLESS)
    assert p.returncode == 0 and p.stdout.split() == ["QueryInterrupted", "2"], p.stderr


@pytest.mark.parametrize("sql", ["SELECT length(repeat('x', 2000000000))", "SELECT lpad('a', 3000000000, 'b')",
                                 "SELECT rpad('a', 1e9, 'b')"])
def test_one_huge_value_is_refused_before_it_is_built(wh, sql):
    t = time.perf_counter()
    with pytest.raises(QueryRefusedError, match="would build one value"):
        wh.sql(sql)
    assert time.perf_counter() - t < 1 and wh.sql("SELECT length(repeat('x', 10)) AS n")["n"][0] == 10
