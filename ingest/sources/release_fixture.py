"""A miniature RadGenome-ChestCT + CT-RATE release, written from the demo's synthetic cases.

`write_release(root, n, seed)` lays out, in the exact released layouts (see
``../shared/data/README.md``)::

    root/radgenome/dataset/radgenome_files/{train,validation}_*.csv    (6 kinds, from each case's truth)
    root/radgenome/dataset/qa_templates/*_template.json
    root/radgenome/dataset/{train,valid}_preprocessed/train_1/train_1a/train_1_a_1.nii.gz   (HU)
    root/radgenome/dataset/{train,valid}_region_mask.tar.gz           (10 coarse regions)
    root/radgenome/dataset/train_anatomy_mask_aa .. _ae               (one tar.gz cut into 5 parts)
    root/radgenome/dataset/valid_anatomy_mask/seg_<volume>/<structure>.nii.gz   (an extracted folder)
    root/ct_rate/dataset/{radiology_text_reports,metadata,multi_abnormality_labels}/*.csv
    root/ct_rate/dataset/{train,valid}/train_1/train_1_a/train_1_a_1.nii.gz   (raw values, bare header)

Anatomy masks include empty structures, as released. Second reconstructions
(``*_a_2``) are left out of RadGenome's images and masks, so they are ingested from the
CT-RATE volume: raw = (HU - RescaleIntercept) / RescaleSlope, with no scl_slope and no
qform/sform in the header (CT-RATE's first release). The metadata holds both intercepts
(-1024 and -8192). Tests use the helpers (`nifti_bytes`, `write_tar_gz`, `split_file`)
to write broken inputs beside it.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import tarfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np

from ingest.sources.volume_names import parse
from warehouse.core.anatomy import COARSE_REGIONS, anatomy
from warehouse.core.release_format import CT_RATE_FILES, RADGENOME_FILES
from warehouse.core.schema import CT_RATE_LABELS

EMPTY_STRUCTURES = ("gallbladder", "left kidney")  # released anatomy masks include empty ones


@dataclass
class ReleaseFixture:
    """Where the miniature release is and what it holds."""

    radgenome: Path
    ct_rate: Path
    cases: list = field(default_factory=list)  # the demo's SyntheticCase objects
    rows: dict[str, int] = field(default_factory=dict)  # CSV path relative to root -> data rows
    masked: list[str] = field(default_factory=list)  # cases with RadGenome images and masks


def nifti_bytes(array: np.ndarray, affine: np.ndarray | None, *, bare: bool = False) -> bytes:
    """A gzip-compressed NIfTI-1 file; `bare`: no qform/sform and no scl (CT-RATE's first release)."""
    img = nib.Nifti1Image(array, None if bare else (np.eye(4) if affine is None else affine))
    img.header["scl_slope"], img.header["scl_inter"] = np.nan, np.nan  # with no affine: codes 0, pixdim 1
    return gzip.compress(img.to_bytes(), compresslevel=1, mtime=0)


def write_tar_gz(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A .tar.gz of (member name, bytes), written as given (names are not checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))


def split_file(path: Path, parts: int, suffixes: tuple[str, ...] = ("aa", "ab", "ac", "ad", "ae")) -> list[Path]:
    """Cut a file into `parts` pieces ``<stem>_aa`` .. (as `split` does) and remove it."""
    data, stem = path.read_bytes(), path.name.split(".")[0]
    size = -(-len(data) // parts)
    out = []
    for i in range(parts):
        out.append(path.with_name(f"{stem}_{suffixes[i]}"))
        out[-1].write_bytes(data[i * size:(i + 1) * size])
    path.unlink()
    return out


def _csv(path: Path, header: list[str], rows: list[list]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([["" if v is None else v for v in r] for r in rows])
    return len(rows)


def _release_rows(case) -> dict[str, list[dict]]:
    """A case's RadGenome rows (warehouse columns), from its truth, by released file kind."""
    from ingest.vqa import generate_vqa

    dag, cid = anatomy(), case.case_id
    report = [{"case_id": cid, "anatomy_path": "", "text": case.report["Findings_EN"]}]
    report += [{"case_id": cid, "anatomy_path": top, "text": text}
               for top, text in case.truth.region_paragraphs().items()]
    sentences, findings = [], []
    for s in case.truth.sentences:
        for region in s.regions:
            if s.section == "findings" and region not in COARSE_REGIONS:
                report.append({"case_id": cid, "anatomy_path": dag.path(region), "text": s.text})
            sentences.append({"region_id": dag.get(region).region_id})
    for _, f in case.truth.findings:
        findings.append({"region_id": dag.get(f.region).region_id, "term": f.term, "status": f.status,
                         "size_mm": f.size_mm, "size_text": f.size_text})
    out: dict[str, list[dict]] = {"region_report": report}
    for row in generate_vqa(cid, sentences, findings, case.truth.disorders):
        out.setdefault(f"vqa_{row['type']}" if row["type"] != "disorders" else "case_disorders", []).append(row)
    return out


def released_masks(case) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(region masks, anatomy masks) as (released file name, array); anatomy adds empty structures."""
    dag, region, structures = anatomy(), [], []
    for name, mask in sorted(case.masks.items()):
        r = dag.get(name)
        file_name = r.radgenome_masks[0] if r.radgenome_masks else r.name
        if dag.resolve(file_name).name != r.name:
            continue
        (region if r.name in COARSE_REGIONS else structures).append((file_name, mask.astype(np.uint8)))
    structures += [(n, np.zeros(case.hu.shape, np.uint8)) for n in EMPTY_STRUCTURES if n not in case.masks]
    return region, structures


def write_release(root: Path | str, n: int = 10, seed: int = 0, *, cases: list | None = None) -> ReleaseFixture:
    """Write the miniature release of the first `n` demo cases of `seed` under `root`."""
    from ingest.sources.demo import generate_cases

    root = Path(root)
    cases = cases if cases is not None else generate_cases(n, seed)
    fx = ReleaseFixture(radgenome=root / "radgenome", ct_rate=root / "ct_rate", cases=cases)
    rg, ct = fx.radgenome / "dataset", fx.ct_rate / "dataset"
    (rg / "qa_templates").mkdir(parents=True, exist_ok=True)
    for kind in ("abnormality", "presence", "location", "size", "disorders"):
        src = files("ingest") / "qa_templates" / f"{kind}_template.json"
        (rg / "qa_templates" / f"{kind}_template.json").write_text(src.read_text())
    rows: dict[tuple[str, str], list[dict]] = {}
    archives: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    for case in cases:
        vol = parse(case.case_id)
        for kind, kind_rows in _release_rows(case).items():
            rows.setdefault((kind, vol.split), []).extend(kind_rows)
        meta = case.metadata
        slope, inter = float(meta["RescaleSlope"]), float(meta["RescaleIntercept"])
        raw = np.rint((case.hu.astype(np.float64) - inter) / slope).astype(np.int16)
        path = ct / vol.ct_rate_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nifti_bytes(raw, None, bare=True))
        if vol.reconstruction != 1:
            continue
        fx.masked.append(case.case_id)
        path = rg / vol.radgenome_image_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(nifti_bytes(case.hu, case.affine))
        for kind, masks in zip(("region", "anatomy"), released_masks(case), strict=True):
            folder = vol.mask_folder(kind)
            archives.setdefault((vol.prefix, kind), []).extend(
                (f"{folder}/{name}.nii.gz", nifti_bytes(m, case.affine)) for name, m in masks)
    for (prefix, kind), members in archives.items():
        if (prefix, kind) == ("valid", "anatomy"):  # an extracted folder
            for name, data in members:
                (rg / name).parent.mkdir(parents=True, exist_ok=True)
                (rg / name).write_bytes(data)
            continue
        write_tar_gz(rg / f"{prefix}_{kind}_mask.tar.gz", members)
        if (prefix, kind) == ("train", "anatomy"):
            split_file(rg / f"{prefix}_{kind}_mask.tar.gz", 5)
    for (kind, split), kind_rows in sorted(rows.items()):
        spec = RADGENOME_FILES[kind]
        rel = Path("radgenome/dataset/radgenome_files", spec.file_name(split))
        fx.rows[str(rel)] = _csv(root / rel, spec.header, [[r[c] for _, c in spec.columns] for r in kind_rows])
    _write_ct_rate(root, cases, fx)
    return fx


def _write_ct_rate(root: Path, cases: list, fx: ReleaseFixture) -> None:
    by_split: dict[str, list] = {}
    for case in cases:
        by_split.setdefault(parse(case.case_id).split, []).append(case)
    for split, group in by_split.items():
        for kind, rows in (
            ("reports", [[c.report[h] or "Not given." for h in CT_RATE_FILES["reports"].header] for c in group]),
            ("metadata", [list(c.metadata.values()) for c in group]),
            ("predicted_labels", [[c.case_id] + [c.truth.labels[lab] for lab in CT_RATE_LABELS] for c in group]),
        ):
            spec = CT_RATE_FILES[kind]
            header = list(group[0].metadata) if kind == "metadata" else spec.header
            rel = Path("ct_rate/dataset", spec.folder, spec.file_name(split))
            fx.rows[str(rel)] = _csv(root / rel, header, rows)


def remove(root: Path | str) -> None:
    """Delete a fixture written by `write_release`."""
    shutil.rmtree(root, ignore_errors=True)
