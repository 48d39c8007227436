"""Load check of #18: `radgenome serve`'s server answering 4 clients at once.

200 requests (by default) from 4 concurrent clients against a local server: half queries (a page
of SQL, named queries from their forms, a case page's data), half CT slices (a random case, view,
index and window, read from the store's chunks). Prints the latency percentiles and the rate; every
answer must be 200. The warehouse is the synthetic demo (``--cases``) or any ``--warehouse ROOT``.

    python -m benchmarks.serve_load [--requests 200] [--clients 4] [--cases 8] [--warehouse ROOT]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.fixtures.web import request, served
from warehouse import Warehouse
from warehouse.core.ids import case_key
from warehouse.web.cases import AXES, WINDOWS

QUERIES = [
    ("/api/sql", {"sql": "SELECT case_id, anatomy_path, text FROM sentences ORDER BY case_id, ordinal", "page": 1}),
    ("/api/sql", {"sql": "SELECT term, count(*) AS n FROM findings WHERE status = 'present' GROUP BY term "
                         "ORDER BY n DESC"}),
    ("/api/query/sentences_mentioning", {"params": {"term": "nodule"}}),
    ("/api/query/top_abnormalities", {"params": {}}),
    ("/api/query/vqa_by_type_region", {"params": {"type": "abnormality", "region": "lung"}}),
]


def plan(wh: Warehouse, n: int, seed: int = 0) -> list[tuple[str, dict | None]]:
    """`n` requests, alternating a query (or a case page's data) and a slice."""
    rng = random.Random(seed)
    cases = wh.sql("SELECT case_id FROM cases ORDER BY case_id")["case_id"].to_list()
    store = wh.arrays
    with_image = [c for c in cases if store.has_image(c)]
    out: list[tuple[str, dict | None]] = []
    for i in range(n):
        if i % 2 == 0:
            if i % 10 == 0:
                out.append((f"/api/case/{case_key(rng.choice(cases))}", None))
            else:
                out.append(rng.choice(QUERIES))
            continue
        case = rng.choice(with_image)
        shape = store.grid(case).to_lps().shape
        view = rng.choice(list(AXES))
        index = rng.randrange(shape[AXES[view]])
        window = urllib.parse.quote(rng.choice(list(WINDOWS)))
        out.append((f"/api/case/{case_key(case)}/slice/{view}/{index}.png?window={window}", None))
    return out


def run(wh: Warehouse, requests: int = 200, clients: int = 4) -> dict:
    """Serve `wh`, send the planned requests from `clients` threads; latencies in ms, statuses, wall time."""
    todo = plan(wh, requests)
    with tempfile.TemporaryDirectory() as exports, served(wh, Path(exports)) as url:
        request(url + "/api/info")  # warm: the first connection and the engine

        def one(item: tuple[str, dict | None]) -> tuple[str, int, float]:
            path, body = item
            t = time.perf_counter()
            status, _, _ = request(url + path, body)
            return path, status, 1000 * (time.perf_counter() - t)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            done = list(pool.map(one, todo))
        wall = time.perf_counter() - t0
    ms = sorted(d[2] for d in done)
    kinds = {"slice": [d[2] for d in done if "/slice/" in d[0]], "query": [d[2] for d in done if "/slice/" not in d[0]]}
    return {"requests": len(done), "clients": clients, "wall_s": wall, "rate": len(done) / wall,
            "failed": [(p, s) for p, s, _ in done if s != 200],
            "p50_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))], "max_ms": ms[-1],
            **{f"{k}_p50_ms": statistics.median(v) for k, v in kinds.items() if v},
            **{f"{k}_p95_ms": sorted(v)[int(0.95 * (len(v) - 1))] for k, v in kinds.items() if v}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--cases", type=int, default=8, help="demo cases to build when no --warehouse is given")
    ap.add_argument("--warehouse", help="serve this warehouse instead of a new demo")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.warehouse
        if root is None:
            from ingest.runner import build
            from ingest.sources.demo import DemoSource

            root = Path(tmp) / "wh"
            build(DemoSource(n=args.cases), root, runner="local", progress=False)
        with Warehouse.open(root) as wh:
            out = run(wh, args.requests, args.clients)
    print(f"{out['requests']} requests from {out['clients']} clients in {out['wall_s']:.2f} s "
          f"({out['rate']:.0f}/s), {len(out['failed'])} failed")
    print(f"all     p50 {out['p50_ms']:.1f} ms  p95 {out['p95_ms']:.1f} ms  max {out['max_ms']:.1f} ms")
    for kind in ("query", "slice"):
        print(f"{kind:7} p50 {out[f'{kind}_p50_ms']:.1f} ms  p95 {out[f'{kind}_p95_ms']:.1f} ms")
    if out["failed"]:
        raise SystemExit(f"failed: {out['failed'][:5]}")


if __name__ == "__main__":
    main()
