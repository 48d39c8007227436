"""Per-case VQA counts: our generator on real reports against the released RadGenome subset.

Structures the 800 real CT-RATE reports of ``../shared/data/ct_rate/labeled_reports_dev.csv``
with the default backend, generates VQA by RadGenome's rules (`ingest.vqa`), and prints, for
each VQA type, the mean pairs per case next to the released 2,000-case train subset
(``../shared/data/radgenome/train_vqa_*.csv``). Not a speed benchmark: a check that the rules
produce the released shape of data.

    python -m benchmarks.vqa_counts [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

from ingest.structure import structure_reports
from ingest.vqa import generate_vqa

ROOT = Path(__file__).resolve().parents[1]  # the repository

TYPES = ("abnormality", "presence", "location", "size", "disorders")


def released_counts(release: Path) -> tuple[dict[str, float], int]:
    volumes = {r["Volumename"] for r in csv.DictReader(open(release / "train_case_disorders.csv"))}
    counts: Counter[str] = Counter()
    for kind in TYPES[:4]:
        with open(release / f"train_vqa_{kind}.csv", newline="") as f:
            counts[kind] = sum(1 for _ in csv.DictReader(f))
    counts["disorders"] = len(volumes)
    return {k: counts[k] / len(volumes) for k in TYPES}, len(volumes)


def generated_counts(reports_csv: Path) -> tuple[dict[str, float], int, float]:
    with open(reports_csv, newline="") as f:
        rows = [(r["AccessionNo"], r["report_text"], None) for r in csv.DictReader(f)]
    t0 = time.perf_counter()
    counts: Counter[str] = Counter()
    done = 0
    for res in structure_reports(rows):
        if not res.ok:
            continue
        done += 1
        disorders = list(dict.fromkeys(f["term"] for f in res.findings if f["status"] == "present"))
        counts.update(r["type"] for r in generate_vqa(res.case_id, res.sentences, res.findings, disorders))
    return {k: counts[k] / max(done, 1) for k in TYPES}, done, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    if not (args.data / "radgenome").is_dir():
        sys.exit(f"needs the real sample data in {args.data}")
    rel, n_rel = released_counts(args.data / "radgenome")
    gen, n_gen, secs = generated_counts(args.data / "ct_rate" / "labeled_reports_dev.csv")
    print(f"VQA pairs per case: generated from {n_gen} real reports ({secs:.1f} s) vs released ({n_rel} cases)")
    print(f"{'type':<12} {'generated':>10} {'released':>10} {'ratio':>7}")
    for k in TYPES:
        print(f"{k:<12} {gen[k]:>10.2f} {rel[k]:>10.2f} {gen[k] / rel[k]:>7.2f}")
    print(f"{'all':<12} {sum(gen.values()):>10.2f} {sum(rel.values()):>10.2f} "
          f"{sum(gen.values()) / sum(rel.values()):>7.2f}")


if __name__ == "__main__":
    main()
