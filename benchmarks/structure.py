"""Benchmark: structuring reports with the default (rules) backend (prints, asserts nothing).

Times sentence splitting, grounding, findings and the 18 CT-RATE labels (the whole
`structure_reports` call, rows included) on CT-RATE-sized reports: the 800 real reports of
``../shared/data/ct_rate/labeled_reports_dev.csv`` (findings and impressions), repeated to
``--reports`` (a built-in CT-RATE-style report where the data is absent). Prints reports per
second on one core and the projected time for all 25,692 CT-RATE reports on ``--cores``
cores (goal: <= 2 minutes on 2). ``--workers N`` also measures N processes for real.

    .venv/bin/python -m benchmarks.structure [--reports 4000] [--cores 2] [--workers 0]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ingest.structure import ReportInput, structure_reports
from ingest.structure.eval import read_label_truth

ROOT = Path(__file__).resolve().parents[1]  # the repository

DEV = ROOT.parent / "shared" / "data" / "ct_rate" / "labeled_reports_dev.csv"
CT_RATE_REPORTS = 25_692
FALLBACK = (
    "Trachea, both main bronchi are open. Mediastinal main vascular structures, heart contour, size are normal. "
    "Thoracic aorta diameter is normal. Pericardial effusion-thickening was not observed. Calcific atheroma "
    "plaques are observed in the aorta and coronary arteries. No enlarged lymph nodes in prevascular, "
    "pre-paratracheal, subcarinal or bilateral hilar-axillary pathological dimensions were detected. When "
    "examined in the lung parenchyma window; A 4.6 mm nonspecific nodule is observed in the left lung lower "
    "lobe. Linear atelectasis is observed in both lung lower lobes. Pleural effusion-thickening was not "
    "detected. Upper abdominal organs included in the sections are normal. Degenerative changes are observed in "
    "the vertebrae. Nodule of 4.6 mm in the left lower lobe. Linear atelectasis.")


def sample(n: int) -> tuple[list[ReportInput], str]:
    texts = [t for _, t, _ in read_label_truth(DEV)] if DEV.is_file() else [FALLBACK]
    where = f"{DEV.name} ({len(texts)} real reports)" if DEV.is_file() else "a built-in report"
    return [ReportInput(f"r{k}", texts[k % len(texts)]) for k in range(n)], where


def _work(reports: list[ReportInput]) -> int:
    return sum(r.ok for r in structure_reports(reports))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reports", type=int, default=4000, help="reports to structure (repeats the sample)")
    ap.add_argument("--cores", type=int, default=2, help="cores to project the CT-RATE time for")
    ap.add_argument("--workers", type=int, default=0, help="also time this many worker processes")
    args = ap.parse_args()
    reports, where = sample(args.reports)
    structure_reports(reports[:20])  # load vocabularies once, as a long run would
    chars = sum(len(r.findings or "") for r in reports) / len(reports)
    t = time.perf_counter()
    ok = _work(reports)
    dt = time.perf_counter() - t
    rate = len(reports) / dt
    projected = CT_RATE_REPORTS / (rate * args.cores)
    print(f"input: {len(reports)} reports from {where}, {chars:,.0f} characters on average, {ok} structured")
    print(f"rules backend, 1 core: {rate:,.0f} reports/s/core ({dt:.2f} s)")
    print(f"projected: {CT_RATE_REPORTS:,} CT-RATE reports on {args.cores} cores in {projected:,.0f} s "
          f"({projected / 60:.1f} min; goal <= 2 min)")
    if args.workers > 1:
        chunks = [reports[k::args.workers] for k in range(args.workers)]
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_work, [c[:10] for c in chunks]))  # start the workers, load vocabularies
            t = time.perf_counter()
            list(pool.map(_work, chunks))
            dt = time.perf_counter() - t
        print(f"measured, {args.workers} processes: {len(reports) / dt:,.0f} reports/s "
              f"({CT_RATE_REPORTS / (len(reports) / dt):,.0f} s for {CT_RATE_REPORTS:,})")


if __name__ == "__main__":
    main()
