"""Per-case time of each pipeline stage on the real CTs, and of the text stages at CT-RATE's 25,692 reports.

    .venv/bin/python -m benchmarks.pipeline [--reports 25692] [--skip-text]

Image stages run once per CT in ../shared/data/ct (wall and CPU seconds): read (NIfTI, and
chest_crop also as a DICOM series), write_image, each segmenter (builtin; import of the
masks that ship with the CT; a small MONAI TorchScript net at 4 mm), the array-store write
of its masks with region statistics, and the `show` picture. Text stages structure the
800 real reports of labeled_reports_dev.csv, cycled up to `--reports`, and generate VQA.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository

DATA = ROOT.parent / "shared" / "data"
N_CT_RATE = 25_692


@contextmanager
def timed(rows: list, case: str, stage: str):
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    rows.append((case, stage, time.perf_counter() - t0, time.process_time() - c0))


def image_stages(tmp: Path) -> list[tuple[str, str, float, float]]:
    from ingest.images import read_ct
    from ingest.segment import make_segmenter
    from ingest.segment.base import region_for_name
    from tests.fixtures.folder_data import image_folder, mask_folder, torchscript_model
    from warehouse.core.anatomy import anatomy
    from warehouse.store.arrays import ArrayStore

    images = image_folder(DATA, tmp, dicom=("chest_crop",))
    masks = mask_folder(DATA, tmp)
    model = torchscript_model(tmp / "air.ts", kind="air", spacing=[4.0, 4.0, 4.0], roi_size=[64, 64, 64])
    store = ArrayStore(tmp / "arrays.zarr")
    resolve = lambda n: anatomy().get(region_for_name(n))  # noqa: E731
    rows: list = []
    for path in sorted(images.iterdir()):
        case = path.name
        with timed(rows, case, "read" + (" (dicom)" if path.is_dir() else "")):
            img = read_ct(path)
        with timed(rows, case, "write_image"):
            store.write_image(case, img.hu, img.affine)
        for spec in ("builtin", f"import:{masks}", f"monai:{model}"):
            seg = make_segmenter(spec)
            if not seg.applies(case):
                continue
            kind = spec.split(":")[0]
            with timed(rows, case, f"segment {kind}"):
                res = seg.segment(case, img)
            with timed(rows, case, f"write masks+stats {kind}"):
                if res.masks:
                    store.write_masks(case, res.masks, img.affine, mask_source=res.mask_source, resolve=resolve)
                if res.label_map is not None:
                    store.write_label_map(case, res.label_map, res.classes, img.affine,
                                          mask_source=res.mask_source, resolve=resolve)
    return rows


def show_stage(tmp: Path) -> list:
    from ingest.runner import build
    from ingest.sources.folder import FolderSource
    from tests.fixtures.folder_data import image_folder
    from warehouse import Warehouse
    from warehouse.viewer import render_case

    images = image_folder(DATA, tmp / "show", names=("chest_cta",))
    build(FolderSource(images, None, ["builtin"]), tmp / "wh", runner="local", progress=False)
    rows: list = []
    with timed(rows, "chest_cta.nii.gz", "show (1800x640 PNG)"):
        with Warehouse.open(tmp / "wh") as wh:
            render_case(wh, "chest_cta.nii.gz", region="lung", out=tmp / "case.png")
    return rows


def text_stages(n: int) -> list:
    from ingest.structure import structure_reports
    from ingest.vqa import generate_vqa

    texts = _all_dev_reports()
    inputs = [(f"bench_{i}", texts[i % len(texts)], None) for i in range(n)]
    rows: list = []
    with timed(rows, f"{n:,} reports", "structure (rules)"):
        structured = structure_reports(inputs)
    with timed(rows, f"{n:,} reports", "vqa"):
        pairs = sum(len(generate_vqa(s.case_id, s.sentences, s.findings)) for s in structured)
    rows.append((f"{n:,} reports", f"rows: {sum(len(s.sentences) for s in structured):,} sentences, "
                 f"{sum(len(s.findings) for s in structured):,} findings, {pairs:,} vqa", 0.0, 0.0))
    return rows


def _all_dev_reports() -> list[str]:
    import csv

    with open(DATA / "ct_rate" / "labeled_reports_dev.csv", newline="", encoding="utf-8") as f:
        return [r["report_text"] for r in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=N_CT_RATE)
    parser.add_argument("--skip-text", action="store_true")
    args = parser.parse_args()
    if not (DATA / "ct").is_dir():
        print(f"skipped: no real CTs at {DATA / 'ct'}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = image_stages(Path(tmp)) + show_stage(Path(tmp))
    if not args.skip_text:
        rows += text_stages(args.reports)
    print(f"{'case':<24} {'stage':<44} {'wall s':>8} {'cpu s':>8}")
    for case, stage, wall, cpu in rows:
        print(f"{case:<24} {stage:<44} {wall:8.2f} {cpu:8.2f}" if wall or cpu else f"{case:<24} {stage}")
    if not args.skip_text:
        _, _, wall, cpu = next(r for r in rows if r[1] == "structure (rules)")
        print(f"structure: {args.reports / wall:,.0f} reports/s wall, {args.reports / cpu:,.0f} per CPU second")


if __name__ == "__main__":
    main()
