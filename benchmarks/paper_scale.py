"""The paper-scale benchmark: every named query at RadGenome-ChestCT's size, warehouse against pandas.

    python -m benchmarks.paper_scale             # 25,692 cases, ~665K sentences, ~1.4M VQA pairs
    python -m benchmarks.paper_scale --quick     # a small run (scale 0.05, fewer repeats)
    python -m benchmarks.paper_scale --scale 0.5 --json out.json

1. generate the text tables at `--scale` x RadGenome's size from the real released files
   (no arrays; see _paper/generate.py), write them as the released CSVs, and build a
   warehouse snapshot from the same rows (timed: the build);
2. run every named query through `Warehouse.query` (median of `--repeats` warm runs) and
   answer the same question with pandas on the CSVs (read, filter, group: _paper/pandas_answers.py);
   check that both give the same answer;
3. print one table (query, rows, warehouse ms, pandas ms, ratio) and the growth of build
   and query time at 1x, 4x and 16x of a smaller base. Beside each query it prints what the
   ratio goal asks (pandas ms / 20) and a floor no DuckDB query giving that answer can beat:
   the time to hand the finished answer, already a table in memory, back as a Polars frame.

Goals (issue #7): every query >= 20x faster than pandas and <= 50 ms median on 2 cores;
time per row at 16x within 1.2x of the time per row at 1x.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks._paper.generate import Release, generate, load_seeds, write_csvs
from benchmarks._paper.pandas_answers import ANSWERS
from benchmarks._paper.tables import to_warehouse
from queries import list_queries
from warehouse import Warehouse
from warehouse.core.errors import QueryLimitWarning
from warehouse.core.reference import reference_tables
from warehouse.store.snapshot import SnapshotWriter

ROOT = Path(__file__).resolve().parents[1]  # the repository

DATA = ROOT.parent / "shared" / "data"
GOAL_RATIO, GOAL_MS, GOAL_GROWTH = 20.0, 50.0, 1.2
PARAMS = {"case_sentences": {"case_id": "train_1_a_1.nii.gz"}}  # beyond each header's example
CHUNK_CASES = 2048


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def build(release: Release, root: Path) -> tuple[Warehouse, float, int]:
    """Warehouse rows from the release, saved in chunks of cases and published; (wh, seconds, rows)."""
    import numpy as np
    import pyarrow.compute as pc

    t = time.perf_counter()
    tables = to_warehouse(release)
    writer = SnapshotWriter(root, f"paper-scale-{release.n_cases}", base=False)
    cases = tables["cases"]["case_id"]
    starts = np.arange(0, len(cases), CHUNK_CASES)
    pieces: dict[str, list] = {}
    for name, table in tables.items():  # each table in case order, cut at the chunk boundaries
        idx = pc.index_in(table["case_id"], value_set=cases).to_numpy()
        order = np.argsort(idx, kind="stable")
        table, idx = table.take(order), idx[order]
        bounds = [*np.searchsorted(idx, starts), table.num_rows]
        pieces[name] = [table.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for i, start in enumerate(starts):
        writer.save_part(f"chunk-{start:08d}", {name: parts[i] for name, parts in pieces.items()})
    writer.publish(replaced_cases=cases.to_pylist(), source="paper-scale", tables=reference_tables())
    seconds = time.perf_counter() - t
    return Warehouse.open(root), seconds, sum(t.num_rows for t in tables.values())


def params_for(name: str) -> dict:
    q = next(q for q in list_queries() if q.name == name)
    return {**q.example, **PARAMS.get(name, {})}


def median_ms(fn, repeats: int) -> tuple[object, float, float]:
    """The result of one warm-up call, then the median wall and process-CPU ms of `repeats` calls."""
    out = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return out, 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def run_warehouse(wh: Warehouse, repeats: int) -> dict[str, dict]:
    """Every named query through `Warehouse.query` (the snapshot's tables.duckdb); results as long as
    their limit are the point here, not news (QueryLimitWarning silenced)."""
    warnings.simplefilter("ignore", QueryLimitWarning)
    evidence = wh.sql("SELECT min(case_id) AS c FROM findings WHERE ct_rate_label = 'Lung nodule' "
                      "AND status = 'present'")["c"][0]
    PARAMS["label_evidence"] = {"case_id": evidence, "label": "Lung nodule"}  # a case of this release
    out = {}
    for q in list_queries():
        params = params_for(q.name)
        df, ms, cpu = median_ms(lambda q=q, params=params: wh.query(q.name, **params), repeats)
        out[q.name] = {"rows": df.height, "ms": ms, "cpu_ms": cpu, "frame": df}
    return out


def run_over_parquet(wh: Warehouse, repeats: int) -> dict[str, float]:
    """The same SQL on DuckDB views over the snapshot's Parquet (the engine before tables.duckdb)."""
    import duckdb

    from queries import render
    from warehouse.store.duckdb_files import parquet_tables
    from warehouse.store.layout import TABLES_DIR

    con = duckdb.connect()
    parquet_tables(con, wh.path / TABLES_DIR)
    out = {}
    for q in list_queries():
        sql, bound = render(q.name, **params_for(q.name))
        out[q.name] = median_ms(lambda sql=sql, bound=bound: con.sql(sql, params=bound).pl(), repeats)[1]
    con.close()
    return out


def answer_floor(wq: dict[str, dict], repeats: int) -> tuple[dict[str, float], float]:
    """Per query, the ms to return its answer from an in-memory DuckDB table as a Polars frame
    (the cost of handing the rows back, with no scan, join or grouping); and `SELECT 1`'s."""
    import duckdb

    con = duckdb.connect()
    out = {}
    for name, w in wq.items():
        con.register("frame", w["frame"])
        con.execute("CREATE OR REPLACE TABLE answer AS SELECT * FROM frame")
        con.unregister("frame")
        out[name] = median_ms(lambda: con.sql("SELECT * FROM answer").pl(), repeats)[1]
    select_one = median_ms(lambda: con.sql("SELECT 1").pl(), repeats)[1]
    con.close()
    return out, select_one


def same_value(a: object, b: object) -> bool:
    missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(duck, pdf) -> str | None:
    """None when the answers are equal on pandas' columns, else what differs."""
    cols = list(pdf.columns)
    if missing := [c for c in cols if c not in duck.columns]:
        return f"pandas columns {missing} not in the warehouse answer"
    left = duck.select(cols).rows()
    right = [tuple(v.item() if hasattr(v, "item") else v for v in row)
             for row in pdf.astype(object).itertuples(index=False, name=None)]
    if len(left) != len(right):
        return f"{len(left)} rows in the warehouse, {len(right)} with pandas"
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        if not all(same_value(x, y) for x, y in zip(a, b, strict=True)):
            return f"row {i}: warehouse {a} != pandas {b}"
    return None


def run_pandas(csv_dir: Path, warehouse: dict[str, dict], repeats: int) -> dict[str, dict]:
    out = {}
    for name, fn in ANSWERS.items():
        params = next(q for q in list_queries() if q.name == name).bind(**params_for(name))
        times, answer = [], None
        for _ in range(repeats):  # every run reads the files again, as a user's script does
            answer, s = timed(fn, csv_dir, **params)
            times.append(s)
        out[name] = {"ms": 1000 * statistics.median(times), "diff": compare(warehouse[name]["frame"], answer)}
    return out


def growth(seeds, base: float, repeats: int, work: Path) -> list[dict]:
    """Build time and summed query time at 1x, 4x, 16x of `base`."""
    points = []
    for factor in (1, 4, 16):
        release, gen_s = timed(generate, seeds, base * factor, 1)
        root = work / f"growth-{factor}"
        wh, build_s, rows = build(release, root)
        q = run_warehouse(wh, repeats)
        points.append({"factor": factor, "cases": release.n_cases, "rows": rows, "generate_s": gen_s,
                       "build_s": build_s, "query_ms": sum(v["ms"] for v in q.values())})
        wh.close()
        shutil.rmtree(root, ignore_errors=True)
        del release
    for p in points:
        p["build_per_row"] = (p["build_s"] / p["rows"]) / (points[0]["build_s"] / points[0]["rows"])
        p["query_per_row"] = (p["query_ms"] / p["rows"]) / (points[0]["query_ms"] / points[0]["rows"])
    return points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="x RadGenome's size (1 = 25,692 cases)")
    ap.add_argument("--quick", action="store_true", help="scale 0.05, growth base 0.01, 3/1 repeats")
    ap.add_argument("--repeats", type=int, default=5, help="warm warehouse runs per query (median)")
    ap.add_argument("--pandas-repeats", type=int, default=3, help="pandas runs per query (median)")
    ap.add_argument("--growth-base", type=float, default=None, help="scale of the 1x growth point (scale/8)")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--no-parquet", dest="parquet", action="store_false",
                    help="skip the column of the same SQL over the Parquet files")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (real released files)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    a = ap.parse_args(argv)
    if a.quick:
        a.scale, a.repeats, a.pandas_repeats = (a.scale if a.scale != 1.0 else 0.05), 3, 1
        a.growth_base = a.growth_base or 0.01
    base = a.growth_base or a.scale / 8
    if not (a.data / "radgenome").is_dir():
        print(f"the real released files are needed as seeds: {a.data / 'radgenome'} is missing", file=sys.stderr)
        return 2
    work = a.work or Path(tempfile.mkdtemp(prefix="paper-scale-"))
    try:
        return _run(a, base, work)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(a, base: float, work: Path) -> int:
    seeds = load_seeds(a.data)
    release, gen_s = timed(generate, seeds, a.scale, 0)
    csv_sizes, csv_s = timed(write_csvs, release, work / "csv")
    wh, build_s, rows = build(release, work / "warehouse")
    counts = wh.manifest["row_counts"]
    print(f"scale {a.scale:g}: {release.n_cases:,} cases, {counts['sentences']:,} sentences, "
          f"{counts['vqa']:,} VQA pairs, {counts['findings']:,} findings, {counts['case_labels']:,} labels, "
          f"{counts['region_stats']:,} region stats")
    print(f"generate {gen_s:.1f} s; released CSVs {sum(csv_sizes.values()) / 1e6:,.0f} MB in {csv_s:.1f} s; "
          f"build (rows -> snapshot) {build_s:.1f} s for {rows:,} rows")
    del release
    wq = run_warehouse(wh, a.repeats)
    mem = run_over_parquet(wh, a.repeats) if a.parquet else {}
    pq = {} if a.no_pandas else run_pandas(work / "csv", wq, a.pandas_repeats)
    floor, select_one = answer_floor(wq, a.repeats)

    print(f"\nwarehouse = Warehouse.query (the snapshot's tables.duckdb), median of {a.repeats} "
          f"warm runs; cpu = its process CPU time; parquet = the same SQL on DuckDB views over the "
          f"snapshot's Parquet; pandas = read the released CSVs and answer, median of {a.pandas_repeats}; "
          f"20x needs = pandas ms / 20; floor = hand the finished answer back from DuckDB as Polars "
          f"(SELECT 1: {select_one:.2f} ms); load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'query':32} {'rows':>7} {'warehouse ms':>12} {'cpu ms':>7} {'parquet ms':>10} {'pandas ms':>9} "
          f"{'ratio':>6} {'20x needs':>9} {'floor':>6}  same answer")
    failures = []
    for name, w in wq.items():
        p = pq.get(name)
        ratio = p["ms"] / w["ms"] if p else float("nan")
        same = "-" if not p else ("yes" if p["diff"] is None else f"NO: {p['diff']}")
        print(f"{name:32} {w['rows']:>7,} {w['ms']:>12.1f} {w['cpu_ms']:>7.1f} {mem.get(name, float('nan')):>10.1f} "
              f"{p['ms'] if p else float('nan'):>9.0f} {ratio:>6.0f} "
              f"{p['ms'] / GOAL_RATIO if p else float('nan'):>9.2f} {floor[name]:>6.2f}  {same}")
        if w["ms"] > GOAL_MS or (p and (ratio < GOAL_RATIO or p["diff"])):
            failures.append(name)
    med = statistics.median(w["ms"] for w in wq.values())
    print(f"median warehouse time {med:.1f} ms; goals: each <= {GOAL_MS:g} ms and >= {GOAL_RATIO:g}x pandas")

    points = [] if a.no_growth else growth(seeds, base, a.repeats, work)
    if points:
        print(f"\ngrowth (base scale {base:g}):\n{'x':>3} {'cases':>8} {'rows':>11} {'build s':>8} "
              f"{'build/row':>10} {'queries ms':>11} {'query/row':>10}")
        for p in points:
            print(f"{p['factor']:>3} {p['cases']:>8,} {p['rows']:>11,} {p['build_s']:>8.1f} "
                  f"{p['build_per_row']:>10.2f} {p['query_ms']:>11.1f} {p['query_per_row']:>10.2f}")
        print(f"goal: time per row at 16x within {GOAL_GROWTH:g}x of 1x (1.00 = linear)")
    if a.json:
        a.json.write_text(json.dumps({
            "scale": a.scale, "counts": counts, "generate_s": gen_s, "build_s": build_s,
            "queries": {n: {"rows": w["rows"], "warehouse_ms": w["ms"], "cpu_ms": w["cpu_ms"],
                            "parquet_ms": mem.get(n), "pandas_ms": pq.get(n, {}).get("ms"),
                            "floor_ms": floor[n],
                            "same_answer": pq[n]["diff"] is None if n in pq else None} for n, w in wq.items()},
            "growth": points}, indent=2))
    wh.close()
    if points and max(p["build_per_row"] for p in points) > GOAL_GROWTH:
        failures.append("growth")
    print("all goals met" if not failures else f"goals missed: {', '.join(failures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
