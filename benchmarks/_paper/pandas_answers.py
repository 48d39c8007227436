"""Each named query answered with pandas from the released-format CSVs, as users do today:
read the files, filter, group. The anatomy DAG is given to pandas (`warehouse.core.anatomy`), so
"under a region" means the same thing on both sides; the rules that link the CSVs to the
warehouse rows are those of `tables.py`.

Each function returns the query's columns (all but `question`, which the released CSVs do
not hold) in the query's order.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from warehouse.core.anatomy import TOP_LEVEL, anatomy
from warehouse.core.schema import CT_RATE_LABELS

from .generate import FILES, NO_FINDINGS
from .tables import ct_rate_class, region_maps, size_mm

SPLITS = ("train", "validation")


def read(d: Path, table: str, splits: tuple[str, ...] = SPLITS) -> pd.DataFrame:
    """Both split files of a released table, with the split they came from."""
    pattern = FILES[table][0]
    return pd.concat([pd.read_csv(d / pattern.format(split=s), keep_default_na=False).assign(split=s)
                      for s in splits], ignore_index=True)


@cache
def _names() -> dict[str, str]:
    return region_maps()[1]


@cache
def _tops() -> dict[str, tuple[str, ...]]:
    """Region name -> the top-level regions it lies under (two for the aorta)."""
    a = anatomy()
    return {r.name: tuple(t for t in TOP_LEVEL if t in a.ancestors(r.name)) for r in a}


def _under(region: str) -> set[str]:
    return set(anatomy().descendants(region))


def _patient(names: pd.Series) -> pd.Series:
    return names.str.rsplit("_", n=2).str[0]


def _present_terms(d: Path, splits: tuple[str, ...] = SPLITS) -> pd.DataFrame:
    pr = read(d, "vqa_presence", splits)
    pr = pr[pr["Presence"] == "Yes."]
    f = pr.assign(term=pr["Finding"].str.split(", ")).explode("term")
    f["term"] = f["term"].str.strip().str.lower()
    return f


def _abnormal_keys(d: Path) -> pd.DataFrame:
    ab = read(d, "vqa_abnormality")
    return ab.loc[ab["Abnormality"] != NO_FINDINGS, ["Volumename", "Anatomy"]].assign(is_abnormal=True)


def _with_abnormal(rows: pd.DataFrame, d: Path) -> pd.Series:
    flag = rows[["Volumename", "Anatomy"]].merge(_abnormal_keys(d), how="left", on=["Volumename", "Anatomy"])
    return flag["is_abnormal"].fillna(False).astype(bool).to_numpy()


def sentences_mentioning(d: Path, region: str, term: str, limit: int) -> pd.DataFrame:
    rr = read(d, "region_report")
    rr["ordinal"] = rr.groupby("Volumename", sort=False).cumcount()
    rr["region"] = rr["Anatomy"].map(_names())
    hit = rr[rr["region"].isin(_under(region)) & rr["Sentence"].str.lower().str.contains(term.lower(), regex=False)]
    hit = hit.sort_values(["Volumename", "ordinal"], kind="stable").head(limit).reset_index(drop=True)
    return pd.DataFrame({"case_id": hit["Volumename"], "region": hit["region"], "anatomy_path": hit["Anatomy"],
                         "ordinal": hit["ordinal"], "text": hit["Sentence"], "is_abnormal": _with_abnormal(hit, d)})


def findings_by_status(d: Path, region: str) -> pd.DataFrame:
    pr = read(d, "vqa_presence")
    f = pr.assign(term=pr["Finding"].str.split(", ")).explode("term")
    f["status"] = np.where(f["Presence"] == "Yes.", "present", "absent")
    f["region"] = f["Anatomy"].map(_names())
    f = f[f["region"].isin(_under(region))]
    g = f.groupby(["region", "status"]).agg(mentions=("Volumename", "size"), cases=("Volumename", "nunique"))
    return g.reset_index().sort_values(["region", "status"]).reset_index(drop=True)


def cases_with_without(d: Path, with_term: str, without_term: str) -> pd.DataFrame:
    f = _present_terms(d)
    have = set(f.loc[f["term"] == with_term.lower(), "Volumename"])
    drop = set(f.loc[f["term"] == without_term.lower(), "Volumename"])
    split = f.drop_duplicates("Volumename").set_index("Volumename")["split"]
    ids = pd.Series(sorted(have - drop), dtype=object)
    return pd.DataFrame({"case_id": ids, "patient_id": _patient(ids), "split": ids.map(split)})


def abnormality_frequency_by_region(d: Path, top: int) -> pd.DataFrame:
    f = _present_terms(d)
    f["region"] = f["Anatomy"].map(_names()).map(_tops())
    f = f.explode("region").dropna(subset=["region"])
    g = f.groupby(["region", "term"])["Volumename"].nunique().rename("cases").reset_index()
    g = g.sort_values(["region", "cases", "term"], ascending=[True, False, True])
    g["term_rank"] = g.groupby("region").cumcount() + 1
    return g[g["term_rank"] <= top].reset_index(drop=True)


def sentences_normal_abnormal(d: Path) -> pd.DataFrame:
    rr = read(d, "region_report")
    rr = rr[rr["Anatomy"] != ""].reset_index(drop=True)
    rr["abnormal"] = _with_abnormal(rr, d)
    rr["region"] = rr["Anatomy"].map(_names()).map(_tops())
    rr = rr.explode("region")
    g = rr.groupby(["split", "region"]).agg(sentences=("abnormal", "size"), abnormal=("abnormal", "sum"))
    g["normal"] = g["sentences"] - g["abnormal"]
    g["unknown"] = 0
    return g.reset_index()[["split", "region", "sentences", "normal", "abnormal", "unknown"]]


def _n_cases(d: Path, splits: tuple[str, ...]) -> int:
    return len(read(d, "metadata", splits))


def _scope(split: str | None) -> tuple[str, ...]:
    return (split,) if split else SPLITS


def _with_cases(g: pd.DataFrame, with_data: set[str]) -> pd.DataFrame:
    """`g` (a `cases` column) with the denominator and each row's share of it."""
    g["cases_with_data"] = len(with_data)
    g["share"] = g["cases"] / len(with_data)
    return g


def _findings_data(d: Path, splits: tuple[str, ...]) -> set[str]:
    """Cases read for findings: a presence row (the warehouse's findings) or a region report row with a
    region (a sentence with a normal/abnormal flag; the whole-report row has none)."""
    rr = read(d, "region_report", splits)
    return set(rr.loc[rr["Anatomy"] != "", "Volumename"]) | set(read(d, "vqa_presence", splits)["Volumename"])


def top_abnormalities(d: Path, top: int, split: str | None) -> pd.DataFrame:
    f = _present_terms(d, _scope(split))
    g = f.groupby("term")["Volumename"].nunique().rename("cases").reset_index()
    g = g.sort_values(["cases", "term"], ascending=[False, True]).head(top).reset_index(drop=True)
    return _with_cases(g, _findings_data(d, _scope(split)))


def top_disorders(d: Path, top: int, split: str | None) -> pd.DataFrame:
    di = read(d, "case_disorders", _scope(split))
    x = di.assign(disorder=di["Disorders"].str.split(", ")).explode("disorder")
    x["disorder"] = x["disorder"].str.strip()
    x = x[x["disorder"].str.lower() != NO_FINDINGS]
    g = x.groupby("disorder")["Volumename"].nunique().rename("cases").reset_index()
    g = g.sort_values(["cases", "disorder"], ascending=[False, True]).head(top).reset_index(drop=True)
    # disorder data: every case_disorders row ('no findings' included), and every case read for findings
    return _with_cases(g, set(di["Volumename"]) | _findings_data(d, _scope(split)))


_VQA_COLUMNS = {"abnormality": ("Abnormality", None), "location": ("Anatomy", "Abnormality"),
                "presence": ("Presence", "Finding"), "size": ("Size", "Abnormality")}


def vqa_by_type_region(d: Path, type: str, region: str, limit: int) -> pd.DataFrame:
    v = read(d, f"vqa_{type}")
    v["ordinal"] = v.groupby("Volumename", sort=False).cumcount()
    v = v[v["Anatomy"].map(_names()).isin(_under(region))]
    v = v.sort_values(["Volumename", "ordinal"], kind="stable").head(limit).reset_index(drop=True)
    answer, term = _VQA_COLUMNS[type]
    return pd.DataFrame({"case_id": v["Volumename"], "type": type, "anatomy_path": v["Anatomy"],
                         "answer": v[answer], "term": v[term] if term else None})


def finding_size_distribution(d: Path, term: str, bin_mm: float) -> pd.DataFrame:
    sz = read(d, "vqa_size")
    sz = sz[sz["Abnormality"].str.strip().str.lower() == term.lower()]
    mm = sz["Size"].map(size_mm)
    sz = sz.assign(bin_start_mm=np.floor(mm.astype(float) / bin_mm) * bin_mm).dropna(subset=["bin_start_mm"])
    g = sz.groupby("bin_start_mm").agg(findings=("Volumename", "size"), cases=("Volumename", "nunique"))
    g = g.reset_index()
    g.insert(1, "bin_end_mm", g["bin_start_mm"] + bin_mm)
    return g


def cases_region_volume(d: Path, region: str, min_ml: float, max_ml: float | None) -> pd.DataFrame:
    rs = read(d, "region_stats")
    keep = (rs["Region"] == region) & (rs["VolumeMl"] >= min_ml)
    if max_ml is not None:
        keep &= rs["VolumeMl"] <= max_ml
    rs = rs[keep].sort_values(["VolumeMl", "Volumename", "MaskSource"], ascending=[False, True, True])
    rs = rs.reset_index(drop=True)
    return pd.DataFrame({"case_id": rs["Volumename"], "patient_id": _patient(rs["Volumename"]),
                         "split": rs["split"], "mask_source": rs["MaskSource"], "volume_ml": rs["VolumeMl"],
                         "voxels": rs["Voxels"]})


def finding_cooccurrence(d: Path, term: str, min_cases: int, limit: int) -> pd.DataFrame:
    pairs = _present_terms(d)[["Volumename", "term"]].drop_duplicates()
    anchor = set(pairs.loc[pairs["term"] == term.lower(), "Volumename"])
    both = pairs[pairs["Volumename"].isin(anchor) & (pairs["term"] != term.lower())]
    g = both.groupby("term").size().rename("cases_both").reset_index()
    g = g[g["cases_both"] >= min_cases]
    g = g.merge(pairs.groupby("term").size().rename("cases_term").reset_index(), on="term")
    g["share"] = g["cases_both"] / len(anchor)
    g["lift"] = g["share"] / (g["cases_term"] / _n_cases(d, SPLITS))
    return g.sort_values(["cases_both", "term"], ascending=[False, True]).head(limit).reset_index(drop=True)


def _metadata(d: Path) -> pd.DataFrame:
    m = read(d, "metadata")
    m["age"] = pd.to_numeric(m["PatientAge"].str.rstrip("Y"), errors="coerce")
    m["sex"] = m["PatientSex"].replace("", None)
    return m


def label_prevalence_by_sex_age(d: Path, band_years: int, label: str | None) -> pd.DataFrame:
    lab = read(d, "labels").melt(id_vars=["VolumeName", "split"], value_vars=list(CT_RATE_LABELS),
                                 var_name="label", value_name="value")
    if label is not None:
        lab = lab[lab["label"].str.lower() == label.lower()]
    lab["label_order"] = lab["label"].map({k: i for i, k in enumerate(CT_RATE_LABELS)})
    x = lab.merge(_metadata(d)[["VolumeName", "sex", "age"]], on="VolumeName").dropna(subset=["age"])
    x["age_band"] = (np.floor(x["age"] / band_years) * band_years).astype(int)
    x["pos"] = x["value"] == 1
    g = x.groupby(["label", "sex", "age_band"], dropna=False).agg(
        label_order=("label_order", "min"), cases=("pos", "size"), positives=("pos", "sum")).reset_index()
    g["prevalence"] = g["positives"] / g["cases"]
    g = g.sort_values(["label_order", "label", "sex", "age_band"], na_position="last").reset_index(drop=True)
    return g[["label", "sex", "age_band", "cases", "positives", "prevalence"]]


def patients_in_two_splits(d: Path) -> pd.DataFrame:
    m = read(d, "metadata")
    m["patient_id"] = _patient(m["VolumeName"])
    g = m.groupby("patient_id").agg(splits=("split", "nunique"), first_split=("split", "min"),
                                    last_split=("split", "max"), cases=("split", "size")).reset_index()
    return g[g["splits"] > 1].sort_values("patient_id").reset_index(drop=True)


def case_sentences(d: Path, case_id: str) -> pd.DataFrame:
    rr = read(d, "region_report")
    rr = rr[rr["Volumename"] == case_id].reset_index(drop=True)
    region = rr["Anatomy"].map(_names())
    flags = _with_abnormal(rr, d)
    return pd.DataFrame({"ordinal": np.arange(len(rr)), "region": region,
                         "top_level": region.map(lambda n: anatomy().top_level(n) if isinstance(n, str) else None),
                         "anatomy_path": rr["Anatomy"], "text": rr["Sentence"],
                         "is_abnormal": [None if p == "" else bool(f) for p, f in zip(rr["Anatomy"], flags,
                                                                                     strict=True)]})


def cohort_by_label(d: Path, label: str, sex: str | None, min_age: int, max_age: int,
                    split: str | None) -> pd.DataFrame:
    lab = read(d, "labels")
    column = next(c for c in CT_RATE_LABELS if c.lower() == label.lower())
    m = _metadata(d).merge(lab[["VolumeName", column]], on="VolumeName")
    keep = (m[column] == 1) & m["age"].between(min_age, max_age)
    if sex is not None:
        keep &= m["sex"] == sex
    if split is not None:
        keep &= m["split"] == split
    m = m[keep].sort_values("VolumeName").reset_index(drop=True)
    return pd.DataFrame({"case_id": m["VolumeName"], "patient_id": _patient(m["VolumeName"]), "split": m["split"],
                         "sex": m["sex"], "age": m["age"]})


def label_evidence(d: Path, case_id: str, label: str) -> pd.DataFrame:
    """The case's finding mentions of the class's terms, present ones first (presence answers)."""
    pr = read(d, "vqa_presence")
    pr = pr[pr["Volumename"] == case_id]
    f = pr.assign(raw=pr["Finding"].str.split(", ")).explode("raw")
    f = f[f["raw"].str.strip().str.lower().map(ct_rate_class) == label]
    status = np.where(f["Presence"] == "Yes.", "present", "absent")
    out = pd.DataFrame({"case_id": f["Volumename"], "label": label, "status": status})
    return out.sort_values("status", key=lambda s: s.map({"present": 0, "uncertain": 1, "absent": 2}),
                           kind="stable").reset_index(drop=True)


ANSWERS = {f.__name__: f for f in (
    sentences_mentioning, findings_by_status, cases_with_without, abnormality_frequency_by_region,
    sentences_normal_abnormal, top_abnormalities, top_disorders, vqa_by_type_region, finding_size_distribution,
    cases_region_volume, finding_cooccurrence, label_prevalence_by_sex_age, patients_in_two_splits,
    case_sentences, cohort_by_label, label_evidence)}
