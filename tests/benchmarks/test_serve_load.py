"""The load check of `radgenome serve` (benchmarks/serve_load.py): 200 requests, queries and slices, from 4
concurrent clients against a real local server: every answer 200, within a bound of time."""

from __future__ import annotations

from benchmarks.serve_load import plan, run
from ingest.runner import build
from ingest.sources.demo import DemoSource
from warehouse import Warehouse


def test_four_clients_get_two_hundred_answers(tmp_path):
    build(DemoSource(n=3), tmp_path / "wh", runner="local", progress=False)
    with Warehouse.open(tmp_path / "wh") as wh:
        todo = plan(wh, 200)
        assert sum("/slice/" in path for path, _ in todo) == 100  # half slices, half queries and case pages
        out = run(wh, 200, 4)
    assert out["requests"] == 200 and out["failed"] == []
    assert out["wall_s"] < 60 and out["p95_ms"] < 5000  # generous: a busy 2-core machine stays far inside
    print(f"\nserve load: p50 {out['p50_ms']:.1f} ms, p95 {out['p95_ms']:.1f} ms, {out['rate']:.0f} requests/s")
