"""The paper-scale benchmark: every named query at RadGenome-ChestCT's size, warehouse against pandas.

    python -m benchmarks.paper_scale             # 25,692 cases, ~665K sentences, ~1.4M VQA pairs
    python -m benchmarks.paper_scale --quick     # a small run (scale 0.05, fewer repeats)
    python -m benchmarks.paper_scale --scale 0.5 --json out.json

1. generate the text tables at `--scale` x RadGenome's size from the real released files
   (no arrays; see _paper/generate.py), `--chunk-cases` cases at a time, write them as the
   released CSVs, and build a warehouse snapshot from the same rows (timed: the build; the
   rows -> snapshot parts, then publishing them);
2. run every named query through `Warehouse.query` (median of `--repeats` warm runs) and
   answer the same question with pandas on the CSVs (read, filter, group: _paper/pandas_answers.py);
   check that both give the same answer;
3. print one table (query, rows, warehouse ms, pandas ms, ratio) and the growth of build
   and query time at 1x, 4x and 16x of a smaller base. Beside each query it prints what the
   ratio goal asks (pandas ms / 20) and a floor no DuckDB query giving that answer can beat:
   the time to hand the finished answer, already a table in memory, back as a Polars frame.

Goals (issue #7): every query >= 20x faster than pandas and <= 50 ms median on 2 cores;
time per row at 16x within 1.2x of the time per row at 1x. Issue #16: at scale 10 (256,920
cases, about 90M rows) the build fits this machine (24 GB, 2 cores) and every query's median is
<= 100 ms; the run ends with a summary of those numbers (cases, rows per table, generate and build
seconds, peak memory of the process tree, each query's median against 100 ms).

Memory: rows are generated, written as CSVs and saved as snapshot parts `--chunk-cases` cases at a
time; publishing sorts each table out of core under RADGENOME_BUILD_MEMORY (the library's
`SnapshotWriter.stage_tables`, warehouse/store/parquet.py), so no step holds a whole table. Pandas
reads the whole CSVs: above `--pandas-max-gb` of them (about 0.62 GB per unit of scale) it is
skipped, and the CSVs not written (it says so), unless `--pandas` is given.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from benchmarks._paper.generate import CsvWriter, Release, Seeds, generate_chunks, load_seeds
from benchmarks._paper.pandas_answers import ANSWERS
from benchmarks._paper.tables import to_warehouse
from queries import list_queries
from warehouse import Warehouse
from warehouse.core.errors import QueryLimitWarning
from warehouse.core.reference import reference_tables
from warehouse.store.parquet import sort_table
from warehouse.store.snapshot import SnapshotWriter

ROOT = Path(__file__).resolve().parents[1]  # the repository

DATA = ROOT.parent / "shared" / "data"
GOAL_RATIO, GOAL_MS, GOAL_GROWTH = 20.0, 50.0, 1.2
GOAL_SCALE_MS = 100.0  # issue #16: each query's median at scale 10
CSV_GB_PER_SCALE = 0.62  # the released CSVs' size at scale 1 (GB)
PARAMS = {"case_sentences": {"case_id": "train_1_a_1.nii.gz"}}  # beyond each header's example
CHUNK_CASES = 2048


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def build(release: Release, root: Path) -> tuple[Warehouse, float, int]:
    """Warehouse rows from a release in memory, saved in chunks of cases and published; (wh, seconds, rows).
    The tests' build; the benchmark's is `build_chunked` (memory bounded by a chunk up to publishing)."""
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


class Memory:
    """Peak resident memory of this process and its children: `ru_maxrss` (RUSAGE_SELF, RUSAGE_CHILDREN)
    for the whole run, and per phase (`phase`) the highest VmRSS sampled every 20 ms."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._phase, self._stop = "start", threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def rss_gb() -> float:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return kb / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._note()

    def _note(self) -> None:
        self.phases[self._phase] = max(self.phases.get(self._phase, 0.0), self.rss_gb())

    def phase(self, name: str) -> None:
        self._note()
        self._phase = name
        self._note()

    def peak_gb(self) -> float:
        """The process tree's peak: the larger of this process's and its largest child's (GB)."""
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return max(own, children) / 2**20

    def stop(self) -> None:
        self._note()
        self._stop.set()


def _files_gb(folder: Path) -> dict[str, float]:
    return {d.name: sum(p.stat().st_size for p in d.glob("*.arrow")) / 2**30
            for d in folder.iterdir() if d.is_dir()} if folder.is_dir() else {}


def build_chunked(seeds: Seeds, scale: float, seed: int, root: Path, csv_dir: Path | None, *,
                  chunk_cases: int = CHUNK_CASES, mem: Memory | None = None, say=print) -> tuple[Warehouse, dict]:
    """Generate `scale` x RadGenome `chunk_cases` cases at a time, write each chunk's released CSVs
    (unless `csv_dir` is None) and save its warehouse rows as one snapshot part, then publish. Returns
    the warehouse and what was measured: cases, rows (per table), generate_s, csv_s, build_s (rows ->
    parts, plus publish_s), parts_gb."""
    t_start = time.perf_counter()
    plan, chunks = generate_chunks(seeds, scale, seed, chunk_cases)
    key = f"paper-scale-{plan.n_cases}"
    writer = SnapshotWriter(root, key, base=False)
    gen_s = csv_s = parts_s = 0.0
    rows: dict[str, int] = {}
    csv = CsvWriter(csv_dir) if csv_dir is not None else None
    case_ids: list[str] = []
    it = iter(chunks)
    for i in range(0, plan.n_cases, chunk_cases):
        t = time.perf_counter()
        release = next(it)
        gen_s += time.perf_counter() - t
        if csv is not None:
            _, s = timed(csv.write, release)
            csv_s += s
        t = time.perf_counter()
        tables = {name: sort_table(name, table) for name, table in to_warehouse(release).items()}
        writer.save_part(f"chunk-{i:08d}", tables)
        parts_s += time.perf_counter() - t
        case_ids += release.cases["Volumename"].tolist()
        for name, table in tables.items():
            rows[name] = rows.get(name, 0) + table.num_rows
        del release, tables
    if csv is not None:
        _, s = timed(csv.close)
        csv_s += s
    gc.collect()
    sizes = _files_gb(writer.staging / "parts")
    say(f"parts saved: {sum(sizes.values()):.2f} GB of compressed Arrow (largest {max(sizes, key=sizes.get)} "
        f"{max(sizes.values()):.2f} GB)")
    if mem:
        mem.phase("publish")
    t = time.perf_counter()
    writer.publish(replaced_cases=case_ids, source="paper-scale", tables=reference_tables())
    publish_s = time.perf_counter() - t
    wh = Warehouse.open(root)
    total = time.perf_counter() - t_start
    return wh, {"cases": plan.n_cases, "rows": rows, "generate_s": gen_s, "csv_s": csv_s,
                "build_s": parts_s + publish_s, "publish_s": publish_s, "total_s": total,
                "parts_gb": sum(sizes.values())}


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
    """Build time and summed query time at 1x, 4x, 16x of `base` (built as the main run is)."""
    points = []
    for factor in (1, 4, 16):
        root = work / f"growth-{factor}"
        wh, b = build_chunked(seeds, base * factor, 1, root, None, say=lambda _: None)
        q = run_warehouse(wh, repeats)
        rows = sum(b["rows"].values())
        points.append({"factor": factor, "cases": b["cases"], "rows": rows, "generate_s": b["generate_s"],
                       "build_s": b["build_s"], "query_ms": sum(v["ms"] for v in q.values())})
        wh.close()
        shutil.rmtree(root, ignore_errors=True)
    for p in points:
        p["build_per_row"] = (p["build_s"] / p["rows"]) / (points[0]["build_s"] / points[0]["rows"])
        p["query_per_row"] = (p["query_ms"] / p["rows"]) / (points[0]["query_ms"] / points[0]["rows"])
    return points


GROWTH_MAX_SCALE = 4.0  # the default growth's largest point (16x its base) stays within this


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="x RadGenome's size (1 = 25,692 cases)")
    ap.add_argument("--quick", action="store_true", help="scale 0.05, growth base 0.01, 3/1 repeats")
    ap.add_argument("--repeats", type=int, default=5, help="warm warehouse runs per query (median)")
    ap.add_argument("--pandas-repeats", type=int, default=3, help="pandas runs per query (median)")
    ap.add_argument("--growth-base", type=float, default=None,
                    help=f"scale of the 1x growth point (default scale/8; no growth when 16x that passes "
                         f"{GROWTH_MAX_SCALE:g})")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--pandas", action="store_true", help="run the pandas side whatever the CSVs' size")
    ap.add_argument("--pandas-max-gb", type=float, default=1.0,
                    help="skip pandas (saying so) when the released CSVs pass this many GB (scale 1: 0.6)")
    ap.add_argument("--no-parquet", dest="parquet", action="store_false",
                    help="skip the column of the same SQL over the Parquet files")
    ap.add_argument("--chunk-cases", type=int, default=CHUNK_CASES, help="cases generated and saved at a time")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (real released files)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the generated CSVs and warehouse in --work")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    a = ap.parse_args(argv)
    if a.quick:
        a.scale, a.repeats, a.pandas_repeats = (a.scale if a.scale != 1.0 else 0.05), 3, 1
        a.growth_base = a.growth_base or 0.01
    base = a.growth_base or a.scale / 8
    a.growth_note = None
    if not a.no_growth and a.growth_base is None and 16 * base > GROWTH_MAX_SCALE:
        a.no_growth = True
        a.growth_note = (f"growth skipped: its default 16x point would be scale {16 * base:g} (> {GROWTH_MAX_SCALE:g});"
                         f" give --growth-base to run it")
    if not (a.data / "radgenome").is_dir():
        print(f"the real released files are needed as seeds: {a.data / 'radgenome'} is missing", file=sys.stderr)
        return 2
    work = a.work or Path(tempfile.mkdtemp(prefix="paper-scale-"))
    try:
        return _run(a, base, work)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
        elif not a.keep:
            for sub in ("csv", "warehouse"):
                shutil.rmtree(work / sub, ignore_errors=True)


def _run(a, base: float, work: Path) -> int:
    mem = Memory()
    mem.phase("generate + build")
    seeds = load_seeds(a.data)
    for sub in ("csv", "warehouse"):
        shutil.rmtree(work / sub, ignore_errors=True)
    pandas_note = None
    run_pd = not a.no_pandas and (a.pandas or CSV_GB_PER_SCALE * a.scale <= a.pandas_max_gb)
    if not a.no_pandas and not run_pd:
        pandas_note = (f"pandas skipped (and no CSVs written): the released CSVs would be about "
                       f"{CSV_GB_PER_SCALE * a.scale:.1f} GB (> --pandas-max-gb {a.pandas_max_gb:g}); pandas reads "
                       f"a whole table's CSVs per query (at scale 1, 0.6 GB of CSVs took the process to about "
                       f"4 GB); --pandas forces it")
    wh, b = build_chunked(seeds, a.scale, 0, work / "warehouse", work / "csv" if run_pd else None,
                          chunk_cases=a.chunk_cases, mem=mem)
    gen_s, build_s, rows = b["generate_s"], b["build_s"], sum(b["rows"].values())
    csv_sizes = {p.name: p.stat().st_size for p in (work / "csv").glob("*.csv")}
    csv_gb = sum(csv_sizes.values()) / 1e9
    counts = wh.manifest["row_counts"]
    print(f"scale {a.scale:g}: {b['cases']:,} cases, {counts['sentences']:,} sentences, "
          f"{counts['vqa']:,} VQA pairs, {counts['findings']:,} findings, {counts['case_labels']:,} labels, "
          f"{counts['region_stats']:,} region stats")
    print(f"generate {gen_s:.1f} s; released CSVs {csv_gb * 1e3:,.0f} MB in {b['csv_s']:.1f} s; "
          if run_pd else f"generate {gen_s:.1f} s; no CSVs (no pandas); "
          f"build (rows -> snapshot) {build_s:.1f} s for {rows:,} rows (of which publish {b['publish_s']:.1f} s), "
          f"{a.chunk_cases:,} cases a chunk; peak memory so far {mem.peak_gb():.2f} GB")
    mem.phase("warehouse queries")
    wq = run_warehouse(wh, a.repeats)
    mem.phase("parquet queries")
    over_parquet = run_over_parquet(wh, a.repeats) if a.parquet else {}
    mem.phase("pandas")
    pq = run_pandas(work / "csv", wq, a.pandas_repeats) if run_pd else {}
    mem.phase("floor")
    floor, select_one = answer_floor(wq, a.repeats)

    print(f"\nwarehouse = Warehouse.query (the snapshot's tables.duckdb), median of {a.repeats} "
          f"warm runs; cpu = its process CPU time; parquet = the same SQL on DuckDB views over the "
          f"snapshot's Parquet; pandas = read the released CSVs and answer, median of {a.pandas_repeats}; "
          f"20x needs = pandas ms / 20; floor = hand the finished answer back from DuckDB as Polars "
          f"(SELECT 1: {select_one:.2f} ms); load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if pandas_note:
        print(pandas_note)
    print(f"{'query':32} {'rows':>7} {'warehouse ms':>12} {'cpu ms':>7} {'parquet ms':>10} {'pandas ms':>9} "
          f"{'ratio':>6} {'20x needs':>9} {'floor':>6}  same answer")
    failures = []
    for name, w in wq.items():
        p = pq.get(name)
        ratio = p["ms"] / w["ms"] if p else float("nan")
        same = "-" if not p else ("yes" if p["diff"] is None else f"NO: {p['diff']}")
        print(f"{name:32} {w['rows']:>7,} {w['ms']:>12.1f} {w['cpu_ms']:>7.1f} "
              f"{over_parquet.get(name, float('nan')):>10.1f} "
              f"{p['ms'] if p else float('nan'):>9.0f} {ratio:>6.0f} "
              f"{p['ms'] / GOAL_RATIO if p else float('nan'):>9.2f} {floor[name]:>6.2f}  {same}")
        if w["ms"] > GOAL_MS or (p and (ratio < GOAL_RATIO or p["diff"])):
            failures.append(name)
    med = statistics.median(w["ms"] for w in wq.values())
    print(f"median warehouse time {med:.1f} ms; goals: each <= {GOAL_MS:g} ms and >= {GOAL_RATIO:g}x pandas")

    mem.phase("growth")
    points = [] if a.no_growth else growth(seeds, base, a.repeats, work)
    if a.growth_note:
        print(f"\n{a.growth_note}")
    if points:
        print(f"\ngrowth (base scale {base:g}):\n{'x':>3} {'cases':>8} {'rows':>11} {'build s':>8} "
              f"{'build/row':>10} {'queries ms':>11} {'query/row':>10}")
        for p in points:
            print(f"{p['factor']:>3} {p['cases']:>8,} {p['rows']:>11,} {p['build_s']:>8.1f} "
                  f"{p['build_per_row']:>10.2f} {p['query_ms']:>11.1f} {p['query_per_row']:>10.2f}")
        print(f"goal: time per row at 16x within {GOAL_GROWTH:g}x of 1x (1.00 = linear)")
    wh.close()
    mem.stop()
    peak = mem.peak_gb()
    over = [n for n, w in wq.items() if w["ms"] > GOAL_SCALE_MS]
    print(f"\nsummary (issue #16), scale {a.scale:g}: {b['cases']:,} cases, {rows:,} rows")
    for name in ("cases", "sentences", "findings", "case_labels", "vqa", "region_stats"):
        print(f"  {name:14} {counts[name]:>12,} rows")
    print(f"  generate {gen_s:.1f} s, CSVs {b['csv_s']:.1f} s, build {build_s:.1f} s (publish {b['publish_s']:.1f} s); "
          f"peak memory {peak:.2f} GB (ru_maxrss of the process and its children)")
    print("  peak resident memory by phase: " + ", ".join(f"{k} {v:.2f} GB" for k, v in mem.phases.items()
                                                          if k != "start"))
    print(f"  {'query':32} {'median ms':>9} {'cpu ms':>7} {'goal ms':>7}   (load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores)")
    for name, w in sorted(wq.items(), key=lambda kv: -kv[1]["ms"]):
        print(f"  {name:32} {w['ms']:>9.1f} {w['cpu_ms']:>7.1f} {GOAL_SCALE_MS:>7g}{'  OVER' if name in over else ''}")
    print(f"  {len(wq) - len(over)} of {len(wq)} queries <= {GOAL_SCALE_MS:g} ms" +
          (f"; over: {', '.join(over)}" if over else ""))
    if a.json:
        a.json.write_text(json.dumps({
            "scale": a.scale, "cases": b["cases"], "counts": counts, "rows": rows,
            "generate_s": gen_s, "csv_s": b["csv_s"], "build_s": build_s, "publish_s": b["publish_s"],
            "build_memory": os.environ.get("RADGENOME_BUILD_MEMORY", "4GB"), "parts_gb": b["parts_gb"],
            "peak_memory_gb": peak, "peak_memory_gb_by_phase": mem.phases, "csv_gb": csv_gb,
            "chunk_cases": a.chunk_cases, "load_average": os.getloadavg(), "pandas_note": pandas_note,
            "goal_ms": GOAL_SCALE_MS, "queries_over_goal": over,
            "queries": {n: {"rows": w["rows"], "warehouse_ms": w["ms"], "cpu_ms": w["cpu_ms"],
                            "over_goal": n in over, "parquet_ms": over_parquet.get(n),
                            "pandas_ms": pq.get(n, {}).get("ms"), "floor_ms": floor[n],
                            "same_answer": pq[n]["diff"] is None if n in pq else None} for n, w in wq.items()},
            "growth": points}, indent=2))
    if points and max(p["build_per_row"] for p in points) > GOAL_GROWTH:
        failures.append("growth")
    print("all goals met" if not failures else f"goals missed: {', '.join(failures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
