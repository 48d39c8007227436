"""Text tables at RadGenome-ChestCT's size, seeded by the real released files (no arrays).

Each synthetic case copies the structure of one of the 2,000 real training cases in
``shared/data/radgenome`` (its anatomy paths, abnormality lists, presence questions and
disorders, so every frequency and co-occurrence follows the release), with its own name,
split, sizes, metadata (sampled from CT-RATE's real validation metadata), CT-RATE labels
(vectors sampled from the 800 manually labelled reports) and region volumes. Sentence text
mixes the case's abnormality phrases with real sentences of the validation region reports.

The result is a `Release`: the released-format tables (what a user reads with pandas) and,
from the same rows, the warehouse tables (`to_warehouse`), so both sides answer from the
same data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from warehouse.core.anatomy import anatomy
from warehouse.core.schema import CT_RATE_LABELS

# RadGenome-ChestCT's headline sizes at scale 1.
TRAIN_CASES, VALIDATION_CASES = 24_128, 1_564
VOXEL_ML = 0.003  # RadGenome volumes are resampled to 1 x 1 x 3 mm
NO_FINDINGS = "no findings"


@dataclass
class Seeds:
    """The real files the generator copies structure from."""

    ab: pd.DataFrame  # tid, Anatomy, Abnormality   (one template per real case)
    pr: pd.DataFrame  # tid, Anatomy, Finding, Presence
    rr: pd.DataFrame  # tid, Anatomy                (region report rows: ab paths + extra child paths)
    disorders: np.ndarray  # per tid
    sizes: np.ndarray  # released Size strings, with their frequency
    pools: dict[str, list[str]]  # top-level region -> real sentences
    meta: pd.DataFrame  # PatientSex, PatientAge, Manufacturer, XYSpacing, ZSpacing, ...
    labels: np.ndarray  # (800, 18) manual CT-RATE labels

    @property
    def n_templates(self) -> int:
        return len(self.disorders)


def load_seeds(data: Path, seed: int = 0) -> Seeds:
    """Read the real files under `data` (the shared data folder)."""
    rg = data / "radgenome"
    ab = pd.read_csv(rg / "train_vqa_abnormality.csv", keep_default_na=False)
    pr = pd.read_csv(rg / "train_vqa_presence.csv", keep_default_na=False)
    sz = pd.read_csv(rg / "train_vqa_size.csv", keep_default_na=False)
    di = pd.read_csv(rg / "train_case_disorders.csv", keep_default_na=False)
    tid = {v: i for i, v in enumerate(di["Volumename"])}
    for df in (ab, pr):
        df.insert(0, "tid", df["Volumename"].map(tid).astype(np.int64))
    ab = ab.drop(columns="Volumename").sort_values("tid", kind="stable").reset_index(drop=True)
    pr = pr.drop(columns="Volumename").sort_values("tid", kind="stable").reset_index(drop=True)

    pools: dict[str, list[str]] = {}
    for f in sorted((data / "radgenome_validation_regions").glob("*.csv")):
        text = pd.read_csv(f, keep_default_na=False)["Sentence"]
        sentences = [s.strip() + "." for p in text for s in re.split(r"(?<=[a-z])\.\s+", p.rstrip(". "))
                     if len(s.strip()) > 12]
        pools[f.stem] = sentences

    rr = _region_report_paths(ab, len(di), np.random.default_rng(seed))
    meta = pd.read_csv(data / "ct_rate" / "validation_metadata.csv", keep_default_na=False, dtype=str)
    labels = pd.read_csv(data / "ct_rate" / "labeled_reports_dev.csv")[list(CT_RATE_LABELS)]
    return Seeds(ab=ab, pr=pr, rr=rr, disorders=di["Disorders"].to_numpy(), sizes=sz["Size"].to_numpy(),
                 pools=pools, meta=meta, labels=labels.to_numpy(np.int8))


def _region_report_paths(ab: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Per template: '' (the whole report), its abnormality paths, and a few more child paths
    under its top-level regions (fragments that name no abnormality), ~26 rows a case as released."""
    released = sorted({p for r in anatomy() for p in r.paths})
    by_top: dict[str, list[str]] = {}
    for p in released:
        by_top.setdefault(p.split("/", 1)[0], []).append(p)
    rows = []
    for t, grp in ab.groupby("tid", sort=True):
        paths = list(grp["Anatomy"])
        have = set(paths)
        candidates = [p for top in dict.fromkeys(x.split("/", 1)[0] for x in paths)
                      for p in by_top.get(top, []) if p not in have]
        k = min(len(candidates), int(rng.poisson(4.8)))
        extra = list(rng.choice(candidates, size=k, replace=False)) if k else []
        rows += [(t, p) for p in ["", *paths, *extra]]
    return pd.DataFrame(rows, columns=["tid", "Anatomy"])


@dataclass
class Release:
    """Released-format tables of one generated data set (each with `split` and a case index `_case`)."""

    cases: pd.DataFrame  # Volumename, split, patient, scan, reconstruction, sex, age, ...
    region_report: pd.DataFrame
    vqa_abnormality: pd.DataFrame
    vqa_location: pd.DataFrame
    vqa_presence: pd.DataFrame
    vqa_size: pd.DataFrame
    case_disorders: pd.DataFrame
    labels: pd.DataFrame  # VolumeName + the 18 classes
    region_stats: pd.DataFrame  # Volumename, Region, MaskSource, Voxels, VolumeMl (not a released file)

    @property
    def n_cases(self) -> int:
        return len(self.cases)


def _names(n_train: int, n_valid: int, rng: np.random.Generator) -> pd.DataFrame:
    """Volume names split_patient_scan_reconstruction, CT-RATE style (patients with 1-3 scans)."""
    out = []
    for split, prefix, n in (("train", "train", n_train), ("validation", "valid", n_valid)):
        patient, made = 0, 0
        while made < n:
            patient += 1
            for scan in "abc"[: 1 + int(rng.random() < 0.18) + int(rng.random() < 0.04)]:
                for recon in range(1, 2 + int(rng.random() < 0.35)):
                    if made < n:
                        out.append((f"{prefix}_{patient}_{scan}_{recon}.nii.gz", split, f"{prefix}_{patient}",
                                    scan, recon))
                        made += 1
    return pd.DataFrame(out, columns=["Volumename", "split", "patient", "scan", "reconstruction"])


def _expand(template: pd.DataFrame, tids: np.ndarray) -> pd.DataFrame:
    """The rows of each case's template, in case order; `_case` is the case's index."""
    counts_all = np.bincount(template["tid"].to_numpy(), minlength=int(tids.max()) + 1)
    starts = np.concatenate([[0], np.cumsum(counts_all)[:-1]])
    counts = counts_all[tids]
    total = int(counts.sum())
    first = np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.repeat(starts[tids], counts) + (np.arange(total) - first)
    out = template.iloc[idx].reset_index(drop=True).drop(columns="tid")
    out.insert(0, "_case", np.repeat(np.arange(len(tids)), counts))
    return out


def _case_metadata(names: pd.DataFrame, seeds: Seeds, rng: np.random.Generator) -> pd.DataFrame:
    """Sex, age, scanner and spacing per case; one patient keeps one sex and age."""
    patients = names["patient"].to_numpy()
    _, first = np.unique(patients, return_inverse=True)
    donor = rng.integers(len(seeds.meta), size=first.max() + 1)[first]
    m = seeds.meta.iloc[donor].reset_index(drop=True)
    age = pd.to_numeric(m["PatientAge"].str.rstrip("Y"), errors="coerce")
    return names.assign(sex=m["PatientSex"].replace("", None).to_numpy(), age=age.astype("Int16").to_numpy(),
                        age_text=m["PatientAge"].to_numpy(), manufacturer=m["Manufacturer"].to_numpy(),
                        XYSpacing=m["XYSpacing"].to_numpy(), ZSpacing=m["ZSpacing"].to_numpy(),
                        RescaleIntercept=m["RescaleIntercept"].to_numpy(),
                        RescaleSlope=m["RescaleSlope"].to_numpy(), NumberofSlices=m["NumberofSlices"].to_numpy(),
                        StudyDate=m["StudyDate"].to_numpy())


def _texts(rr: pd.DataFrame, ab: pd.DataFrame, seeds: Seeds, rng: np.random.Generator) -> np.ndarray:
    """Sentence text per region-report row: the abnormality phrase where there is one, real
    sentences of the region's top-level pool otherwise; '' rows hold the whole report."""
    a = anatomy()
    abn = dict(zip(zip(ab["_case"], ab["Anatomy"], strict=True), ab["Abnormality"], strict=True))
    verbs = ("is observed", "was detected", "is seen", "is noted", "are present")
    pieces: list[str] = []
    report: dict[int, list[str]] = {}
    r_case, r_path = rr["_case"].to_numpy(), rr["Anatomy"].to_numpy()
    picks = rng.random((len(rr), 3))
    for case, path, (p0, p1, p2) in zip(r_case, r_path, picks, strict=True):
        if not path:
            pieces.append("")
            continue
        top = path.split("/", 1)[0]
        pool = seeds.pools.get(top) or [f"The {top} is unremarkable."]
        region = a.resolve(path).name
        finding = abn.get((case, path), NO_FINDINGS)
        normal = pool[int(p0 * len(pool))]
        if finding != NO_FINDINGS:
            text = f"{finding[:1].upper()}{finding[1:]} {verbs[int(p1 * len(verbs))]} in the {region}."
        else:
            text = normal
        if path == top:  # a top-level row holds the region's paragraph
            text = f"{text} {pool[int(p2 * len(pool))]}" if finding != NO_FINDINGS else \
                f"{normal} {pool[int(p2 * len(pool))]}"
            report.setdefault(case, []).append(text)
        pieces.append(text)
    out = np.array(pieces, dtype=object)
    whole = r_path == ""
    out[whole] = [" ".join(report.get(c, [])) for c in r_case[whole]]
    return out


def _region_stats(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Every case x every region with a mask (RadGenome's 10 coarse + anatomy masks), empty ones kept."""
    regions = [r for r in anatomy() if r.radgenome_masks or r.region_mask]
    typical = {"heart": 720.0, "lung": 4800.0, "left lung": 2200.0, "right lung": 2600.0, "liver": 1500.0,
               "aorta": 160.0, "esophagus": 30.0, "trachea and bronchie": 60.0, "bone": 2500.0,
               "mediastinum": 900.0, "abdomen": 3500.0, "pleura": 120.0, "thyroid": 20.0, "breast": 400.0}
    base = np.array([typical.get(r.name, float(np.exp(1 + (r.region_id % 997) / 997 * 6))) for r in regions])
    k = len(regions)
    ml = base[None, :] * rng.lognormal(0.0, 0.22, size=(n, k))
    voxels = np.rint(ml / VOXEL_ML).astype(np.int64)
    voxels[rng.random((n, k)) < 0.04] = 0  # structures outside the field of view
    names = np.array([r.name for r in regions], dtype=object)
    return pd.DataFrame({"_case": np.repeat(np.arange(n), k), "Region": np.tile(names, n),
                         "MaskSource": "radgenome", "Voxels": voxels.ravel(),
                         "VolumeMl": np.round(voxels.ravel() * VOXEL_ML, 3)})


@dataclass
class Plan:
    """The cases of a release before their rows: names, metadata and the template each copies."""

    cases: pd.DataFrame  # as Release.cases, in the order the names were made
    tids: np.ndarray  # per case: the real case it copies

    @property
    def n_cases(self) -> int:
        return len(self.cases)


def plan(seeds: Seeds, scale: float, rng: np.random.Generator) -> Plan:
    """The cases of a release of `scale` x RadGenome's size (25,692 cases at 1)."""
    n_train, n_valid = max(1, round(TRAIN_CASES * scale)), max(1, round(VALIDATION_CASES * scale))
    cases = _case_metadata(_names(n_train, n_valid, rng), seeds, rng)
    return Plan(cases=cases, tids=rng.integers(seeds.n_templates, size=len(cases)))


def generate(seeds: Seeds, scale: float = 1.0, seed: int = 0) -> Release:
    """A release of `scale` x RadGenome's size (25,692 cases at 1), all in memory (about 1.4 GB of
    pandas frames at scale 1: see `generate_chunks` for larger ones)."""
    rng = np.random.default_rng(seed)
    p = plan(seeds, scale, rng)
    return _rows(seeds, p.cases, p.tids, rng)


def generate_chunks(seeds: Seeds, scale: float, seed: int, chunk_cases: int) -> tuple[Plan, Iterator[Release]]:
    """The same kind of release as `generate`, made `chunk_cases` cases at a time (memory bounded by a
    chunk): its plan, and the chunks' releases, each a run of cases in case-id order, so chunk after
    chunk the rows of a table sorted by case id follow each other. Each chunk draws from its own
    random stream (the data differ from `generate`'s at the same seed, not its distributions)."""
    p = plan(seeds, scale, np.random.default_rng(seed))
    order = np.argsort(p.cases["Volumename"].to_numpy().astype(str), kind="stable")

    def chunks() -> Iterator[Release]:
        for i, start in enumerate(range(0, len(order), chunk_cases)):
            idx = order[start:start + chunk_cases]
            yield _rows(seeds, p.cases.iloc[idx].reset_index(drop=True), p.tids[idx],
                        np.random.default_rng([seed, i + 1]))

    return p, chunks()


def _rows(seeds: Seeds, cases: pd.DataFrame, tids: np.ndarray, rng: np.random.Generator) -> Release:
    """Every released table's rows for `cases` (each copying template `tids`)."""
    n = len(cases)
    vol = cases["Volumename"].to_numpy()

    def named(df: pd.DataFrame) -> pd.DataFrame:
        df.insert(1, "Volumename", vol[df["_case"].to_numpy()])
        df.insert(2, "split", cases["split"].to_numpy()[df["_case"].to_numpy()])
        return df

    ab = named(_expand(seeds.ab, tids))
    loc = ab[ab["Abnormality"] != NO_FINDINGS].reset_index(drop=True)
    pr = named(_expand(seeds.pr, tids))
    rr = named(_expand(seeds.rr, tids))
    rr["Sentence"] = _texts(rr, ab, seeds, rng)

    # sizes: a few present findings get one, drawn from the released size answers
    yes = pr[pr["Presence"] == "Yes."]
    terms = yes.assign(Abnormality=yes["Finding"].str.split(", ")).explode("Abnormality")
    chosen = terms[rng.random(len(terms)) < 0.0267]
    size = chosen[["_case", "Volumename", "split", "Anatomy", "Abnormality"]].reset_index(drop=True)
    size["Size"] = rng.choice(seeds.sizes, size=len(size))

    dis = pd.DataFrame({"_case": np.arange(n), "Volumename": vol, "split": cases["split"],
                        "Disorders": seeds.disorders[tids]})
    lab = seeds.labels[rng.integers(len(seeds.labels), size=n)]
    labels = pd.DataFrame(lab, columns=list(CT_RATE_LABELS))
    labels.insert(0, "VolumeName", vol)
    labels.insert(1, "split", cases["split"].to_numpy())
    stats = named(_region_stats(n, rng))
    return Release(cases=cases, region_report=rr, vqa_abnormality=ab, vqa_location=loc, vqa_presence=pr,
                   vqa_size=size, case_disorders=dis, labels=labels, region_stats=stats)


# -- the released-format files ---------------------------------------------------------------------
FILES = {  # table -> (file name pattern, columns written)
    "region_report": ("{split}_region_report.csv", ["Volumename", "Anatomy", "Sentence"]),
    "vqa_abnormality": ("{split}_vqa_abnormality.csv", ["Volumename", "Anatomy", "Abnormality"]),
    "vqa_location": ("{split}_vqa_location.csv", ["Volumename", "Anatomy", "Abnormality"]),
    "vqa_presence": ("{split}_vqa_presence.csv", ["Volumename", "Anatomy", "Finding", "Presence"]),
    "vqa_size": ("{split}_vqa_size.csv", ["Volumename", "Anatomy", "Abnormality", "Size"]),
    "case_disorders": ("{split}_case_disorders.csv", ["Volumename", "Disorders"]),
    "labels": ("{split}_predicted_labels.csv", ["VolumeName", *CT_RATE_LABELS]),
    "metadata": ("{split}_metadata.csv", ["VolumeName", "Manufacturer", "PatientSex", "PatientAge", "XYSpacing",
                                          "ZSpacing", "RescaleIntercept", "RescaleSlope", "NumberofSlices",
                                          "StudyDate"]),
    "region_stats": ("{split}_region_stats.csv", ["Volumename", "Region", "MaskSource", "Voxels", "VolumeMl"]),
}
SPLIT_FILE = {"train": "train", "validation": "validation"}


def _metadata_frame(release: Release) -> pd.DataFrame:
    c = release.cases
    return pd.DataFrame({"VolumeName": c["Volumename"], "split": c["split"], "Manufacturer": c["manufacturer"],
                         "PatientSex": c["sex"], "PatientAge": c["age_text"], "XYSpacing": c["XYSpacing"],
                         "ZSpacing": c["ZSpacing"], "RescaleIntercept": c["RescaleIntercept"],
                         "RescaleSlope": c["RescaleSlope"], "NumberofSlices": c["NumberofSlices"],
                         "StudyDate": c["StudyDate"]})


def write_csvs(release: Release, out: Path) -> dict[str, int]:
    """Write the released-format CSVs (pandas-style minimal quoting); returns bytes per file."""
    with CsvWriter(out) as w:
        w.write(release)
    return w.sizes


class CsvWriter:
    """The released-format CSVs written a release chunk at a time (`write`), one header per file;
    `sizes` (bytes per file) once closed."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.sizes: dict[str, int] = {}
        self._open: dict[Path, tuple[object, pa.Schema]] = {}
        out.mkdir(parents=True, exist_ok=True)

    def write(self, release: Release) -> None:
        import pyarrow.csv as pacsv

        for table, (pattern, cols) in FILES.items():
            df = _metadata_frame(release) if table == "metadata" else getattr(release, table)
            for split in ("train", "validation"):
                path = self.out / pattern.format(split=SPLIT_FILE[split])
                part = pa.Table.from_pandas(df[df["split"] == split][cols], preserve_index=False)
                if path not in self._open:  # the first chunk's types; a column of nulls only is text
                    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                        for f in part.schema]).remove_metadata()
                    self._open[path] = (pacsv.CSVWriter(path, schema, write_options=pacsv.WriteOptions(
                        quoting_style="needed")), schema)
                writer, schema = self._open[path]
                writer.write_table(part.cast(schema))

    def close(self) -> None:
        for path, (writer, _) in self._open.items():
            writer.close()
            self.sizes[path.name] = path.stat().st_size
        self._open.clear()

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
