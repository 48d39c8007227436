"""Process entry points for tests/test_commit_contract.py (run in 'forkserver' children), and the tiny
source they build. Each takes one dict of file paths and options and
reports through files: `ready` when started, `out` (JSON) when done.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from ingest.job import CaseJob, CaseOutput, JobContext, Source
from ingest.runner import build
from warehouse import Warehouse
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import WarehouseError
from warehouse.store.arrays import ArrayStore

REGIONS = ("left lung lower lobe", "heart", "right lung upper lobe")


@dataclass
class CubeJob(CaseJob):
    """A case with three sentences and, with `arrays`, an 8-voxel cube CT with a heart mask."""

    case_id: str
    arrays: bool = True

    def run(self, ctx: JobContext) -> CaseOutput:
        a = anatomy()
        out = CaseOutput()
        out.add("cases", {"case_id": self.case_id, "split": "train", "source": ctx.source})
        for i, region in enumerate(REGIONS):
            out.add("sentences", {"sentence_id": f"{self.case_id}-{i}", "case_id": self.case_id,
                                  "region_id": a.get(region).region_id, "anatomy_path": a.path(region),
                                  "ordinal": i, "text": f"A {4 + i} mm nodule in the {region}.",
                                  "is_abnormal": i != 1, "extractor": "cube"})
        if self.arrays:
            store = ArrayStore(ctx.arrays_path, mode="a")
            seed = sum(map(ord, self.case_id))
            hu = (np.arange(512, dtype=np.int16).reshape(8, 8, 8) + seed) % 400 - 200
            store.write_image(self.case_id, hu, np.eye(4))
            heart = np.zeros((8, 8, 8), bool)
            heart[2:2 + seed % 4 + 2, 2:6, 2:6] = True
            out.add("region_stats", store.write_masks(self.case_id, {"heart": heart}, np.eye(4), mask_source="cube"))
        return out


@dataclass
class CubeSource(Source):
    """Cases ``train_<first>_a_1.nii.gz`` ... : its build key is its name (several names: different inputs)."""

    name: str = "cube"
    first: int = 1
    n: int = 2
    arrays: bool = True

    def jobs(self) -> list[CubeJob]:
        return [CubeJob(case_id(i), self.arrays) for i in range(self.first, self.first + self.n)]


def case_id(i: int) -> str:
    return f"train_{i}_a_1.nii.gz"


def source(spec: dict) -> CubeSource:
    return CubeSource(name=spec.get("name", "cube"), first=spec.get("first", 1), n=spec.get("n", 2),
                      arrays=spec.get("arrays", True))


def _wait_for(path: str | None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while path and not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.002)


def _done(spec: dict, result: dict) -> None:
    Path(spec["out"]).write_text(json.dumps(result))


def build_worker(spec: dict) -> None:
    """Touch `ready`, wait for `go`, build; the result goes to the file `out`, the exit code is the build's."""
    os.environ.update(spec.get("env", {}))  # e.g. RADGENOME_TEST_KILL_AT
    Path(spec["ready"]).touch()
    _wait_for(spec.get("go"))
    try:
        s = build(source(spec), spec["root"], runner="local", progress=False)
    except WarehouseError as e:
        _done(spec, {"error": type(e).__name__, "message": str(e), "exit_code": e.exit_code})
        sys.exit(e.exit_code)
    _done(spec, {"snapshot_id": s.snapshot_id, "outcome": s.outcome})


def read_worker(spec: dict) -> None:
    """Open the warehouse and query it in a loop until the file `stop` names a snapshot read (or 30 s
    pass); what was seen goes to the file `out`."""
    root, stop = Path(spec["root"]), Path(spec["stop"])
    seen: dict[str, int] = {}
    bad: list[str] = []
    reads, deadline = 0, time.monotonic() + 30
    query = ("SELECT (SELECT count(*) FROM cases) AS n, (SELECT count(DISTINCT case_id) FROM sentences) AS s, "
             "(SELECT count(*) FROM sentences) AS t")
    Path(spec["ready"]).touch()
    while time.monotonic() < deadline:
        target = stop.read_text().strip() if stop.exists() else None
        if target and target in seen:
            break
        with Warehouse.open(root) as wh:
            n, s, t = wh.sql(query).row(0)
            sid, counts = wh.snapshot_id, wh.manifest["row_counts"]
        if not (n == s and t == 3 * n and n == counts["cases"]):
            bad.append(f"{sid}: cases {n}, sentence cases {s}, sentences {t}, manifest {counts['cases']}")
        seen[sid] = n
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)  # the plain-shell view
        try:
            vid = con.execute("SELECT snapshot_id FROM snapshot_info").fetchone()[0]
            n, s, t = con.execute(query).fetchone()
        finally:
            con.close()
        if not (n == s and t == 3 * n):
            bad.append(f"warehouse.duckdb ({vid}): cases {n}, sentence cases {s}, sentences {t}")
        reads += 1
    _done(spec, {"reads": reads, "seen": seen, "bad": bad})
