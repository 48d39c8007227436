"""Benchmark: the text stages of a release import (findings on RadGenome's grounded sentences).

Imports a release twice, side by side in one run, with the text stages and without them
(`--no-text-stages`: the released rows only), and prints both times, their ratio and the text
stages' rate in sentences per second:

1. the real sample in ``../shared/data`` (RadGenome's train VQA files and validation region
   reports, CT-RATE's validation metadata), as the README imports it;
2. ``--scale`` x RadGenome-ChestCT's size (1.0: 25,692 cases, ~665K grounded sentences, ~1.4M
   VQA pairs; written as the released CSVs by benchmarks/_paper, seeded from the real files),
   with ``--workers`` processes. Goal (issue #12): the import with its text stages under 5
   minutes on 2 cores at scale 1.

    .venv/bin/python -m benchmarks.release_text [--scale 1.0] [--workers 2] [--skip-paper]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._paper.generate import generate, load_seeds, write_csvs
from ingest.runner import build
from ingest.sources.radgenome import RadGenomeSource

ROOT = Path(__file__).resolve().parents[1]  # the repository

DATA = ROOT.parent / "shared" / "data"
GOAL_S = 300.0


def timed_import(release: Path, ct_rate: Path | None, out: Path, text: bool, workers: int) -> tuple[float, dict]:
    """Seconds for one whole import (read, text stages, publish) and its row counts."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    summary = build(RadGenomeSource(release, ct_rate, text_stages=text, workers=workers), out, runner="local",
                    workers=workers, progress=False)
    return time.perf_counter() - t, summary.row_counts


def compare(title: str, release: Path, ct_rate: Path | None, tmp: Path, workers: int) -> float:
    """Print both imports of one release; returns the time with the text stages."""
    plain, _ = timed_import(release, ct_rate, tmp / "plain", False, workers)
    full, rows = timed_import(release, ct_rate, tmp / "full", True, workers)
    extra = max(full - plain, 1e-9)
    print(f"{title}: {rows.get('sentences', 0):,} sentences, {rows.get('vqa', 0):,} VQA pairs, "
          f"{rows.get('cases', 0):,} cases; {workers} worker(s)")
    print(f"  import without text stages {plain:7.1f} s")
    print(f"  import with text stages    {full:7.1f} s  ({full / plain:.2f}x; +{extra:.1f} s)")
    print(f"  text stages: {rows.get('sentences', 0) / extra:,.0f} sentences/s, "
          f"{rows.get('findings', 0):,} findings, {rows.get('case_labels', 0):,} case labels")
    return full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="x RadGenome-ChestCT's size for the paper-scale run")
    ap.add_argument("--workers", type=int, default=2, help="processes for the text stages")
    ap.add_argument("--skip-paper", action="store_true", help="only the real sample")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"the real sample is not at {DATA}")
    with tempfile.TemporaryDirectory(prefix="radgenome-text-bench-") as tmp_name:
        tmp = Path(tmp_name)
        compare("real sample (../shared/data)", DATA, DATA, tmp, args.workers)
        if args.skip_paper:
            return
        t = time.perf_counter()
        release = generate(load_seeds(DATA), scale=args.scale)
        write_csvs(release, tmp / "paper" / "radgenome_files")
        print(f"\ngenerated {args.scale:g}x RadGenome's released CSVs in {time.perf_counter() - t:.0f} s")
        full = compare(f"paper scale {args.scale:g}x", tmp / "paper", None, tmp, args.workers)
        verdict = "meets" if full <= GOAL_S * args.scale else "misses"
        print(f"  goal: <= {GOAL_S * args.scale:.0f} s with text stages on 2 cores: {verdict}")


if __name__ == "__main__":
    main()
