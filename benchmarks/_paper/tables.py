"""The warehouse tables of a generated `Release`, built the way an import of the release fills them.

The rules that tie the two sides together (the pandas answers in `pandas_answers.py`
follow the same ones):

* sentences: one per region_report row, in file order (`ordinal`); the '' row is the
  whole report (no region); `is_abnormal` = the (case, path) has an abnormality answer
  other than 'no findings' (null for the whole report);
* findings: one per term of a presence row's comma list, status present (Yes.) or absent
  (No.); the size answers give `size_mm` (largest number, cm converted) to the very
  present finding they were drawn from;
* case_labels: the 18 CT-RATE classes (kind ct_rate) and the disorder list (kind disorder);
* vqa: the five types in released row order per case and type.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.terms import lookup_term, term_entries

from .generate import NO_FINDINGS, Release


def ct_rate_class(phrase: str) -> str | None:
    """The CT-RATE class a released finding phrase is evidence for (its vocabulary term's first class;
    the benchmark's findings come from presence answers, with no sentence to check a place in)."""
    entry = term_entries().get(lookup_term(phrase) or phrase)
    return entry.ct_rate_labels[0] if entry and entry.ct_rate_labels else None

_NUM = re.compile(r"\d+(?:\.\d+)?")


def size_mm(text: str) -> float | None:
    """'50 mm' -> 50, '2 cm' -> 20, '6x4 mm' -> 6, '3-5 mm' -> 5; None without a number."""
    numbers = [float(x) for x in _NUM.findall(text or "")]
    if not numbers:
        return None
    return max(numbers) * (10.0 if re.search(r"\bcm\b", text) else 1.0)


def _hash_ids(*cols: pd.Series) -> np.ndarray:
    frame = pd.concat([c.reset_index(drop=True).astype(str) for c in cols], axis=1)
    return pd.util.hash_pandas_object(frame, index=False).map("{:016x}".format).to_numpy()


def region_maps() -> tuple[dict[str, int], dict[str, str]]:
    """Released path (and region name) -> region id, and -> region name."""
    a = anatomy()
    ids, names = {}, {}
    for r in a:
        for key in (*r.paths, r.name):
            ids.setdefault(key, r.region_id)
            names.setdefault(key, r.name)
    return ids, names


def _const(value: str, n: int) -> pa.Array:
    return pa.array(np.full(n, value, dtype=object), pa.string())


def _ordinal(df: pd.DataFrame) -> np.ndarray:
    return df.groupby("_case", sort=False).cumcount().to_numpy(np.int32)


def to_warehouse(rel: Release) -> dict[str, pa.Table]:
    """Every data table of the warehouse (anatomy tables excluded) as Arrow tables."""
    ids, _ = region_maps()
    c = rel.cases
    out: dict[str, pa.Table] = {}
    out["cases"] = schema.to_table("cases", pa.table({
        "case_id": c["Volumename"], "patient_id": c["patient"], "scan": c["scan"],
        "scan_id": c["patient"] + "_" + c["scan"],
        "reconstruction": c["reconstruction"].astype(np.int16), "split": c["split"],
        "age": pa.Array.from_pandas(c["age"]).cast(pa.int16()),
        "sex": c["sex"], "manufacturer": c["manufacturer"], "spacing_z": pd.to_numeric(c["ZSpacing"], "coerce"),
        "has_image": np.zeros(len(c), bool), "has_masks": np.zeros(len(c), bool),
        "source": _const("radgenome", len(c))}))

    rr, ab = rel.region_report, rel.vqa_abnormality
    abn = ab.loc[ab["Abnormality"] != NO_FINDINGS, ["_case", "Anatomy"]].assign(_abn=True)
    flag = rr[["_case", "Anatomy"]].merge(abn, how="left", on=["_case", "Anatomy"])["_abn"].fillna(False)
    is_abn = pa.array(np.where(rr["Anatomy"] == "", None, flag.to_numpy(bool)).tolist(), pa.bool_())
    out["sentences"] = schema.to_table("sentences", pa.table({
        "sentence_id": _hash_ids(rr["Volumename"], rr["Anatomy"], rr["Sentence"]),
        "case_id": rr["Volumename"], "region_id": pa.array(rr["Anatomy"].map(ids), pa.int32()),
        "anatomy_path": rr["Anatomy"], "ordinal": _ordinal(rr), "text": rr["Sentence"],
        "is_abnormal": is_abn, "extractor": _const("radgenome-release", len(rr))}))

    pr = rel.vqa_presence
    f = pr.assign(raw=pr["Finding"].str.split(", ")).explode("raw", ignore_index=False)
    f["row"] = f.index.to_numpy()
    f = f.reset_index(drop=True)
    f["term"] = f["raw"].str.strip().str.lower()
    f["status"] = np.where(f["Presence"] == "Yes.", "present", "absent")
    sz = rel.vqa_size
    key = ["_case", "Anatomy", "raw"]
    sized = sz.rename(columns={"Abnormality": "raw"})[[*key, "Size"]]
    sized = sized.assign(_n=sized.groupby(key).cumcount())  # the n-th size of a (case, path, term)
    present = (f["status"] == "present").to_numpy()
    f["_n"] = -1
    f.loc[present, "_n"] = f[present].groupby(key).cumcount()  # ... goes to its n-th present mention
    f = f.merge(sized, how="left", on=[*key, "_n"])
    out["findings"] = schema.to_table("findings", pa.table({
        "finding_id": _hash_ids(f["Volumename"], f["Anatomy"], f["row"], f["raw"]),
        "case_id": f["Volumename"], "region_id": pa.array(f["Anatomy"].map(ids), pa.int32()),
        "anatomy_path": f["Anatomy"], "term": f["term"], "raw_text": f["raw"], "status": f["status"],
        "size_mm": pa.array([size_mm(s) if isinstance(s, str) else None for s in f["Size"]], pa.float64()),
        "size_text": f["Size"].where(f["Size"].notna(), None), "ct_rate_label": f["term"].map(ct_rate_class),
        "extractor": _const("radgenome-release", len(f))}))

    out["case_labels"] = _case_labels(rel)
    out["vqa"] = _vqa(rel, ids)
    rs = rel.region_stats
    out["region_stats"] = schema.to_table("region_stats", pa.table({
        "case_id": rs["Volumename"], "region_id": pa.array(rs["Region"].map(ids), pa.int32()),
        "mask_source": rs["MaskSource"], "voxels": rs["Voxels"], "volume_ml": rs["VolumeMl"]}))
    return out


def _case_labels(rel: Release) -> pa.Table:
    lab = rel.labels
    classes = [c for c in lab.columns if c not in ("VolumeName", "split")]
    n = len(lab)
    ct = pd.DataFrame({"case_id": np.repeat(lab["VolumeName"].to_numpy(), len(classes)), "kind": "ct_rate",
                       "label": np.tile(classes, n), "value": lab[classes].to_numpy(np.int8).ravel(),
                       "ordinal": np.tile(np.arange(len(classes), dtype=np.int32), n),
                       "source": "ct_rate_predicted"})
    d = rel.case_disorders.assign(label=rel.case_disorders["Disorders"].str.split(", ")).explode("label")
    d["label"] = d["label"].str.strip()
    dis = pd.DataFrame({"case_id": d["Volumename"].to_numpy(), "kind": "disorder", "label": d["label"].to_numpy(),
                        "value": np.int8(1), "ordinal": d.groupby("_case").cumcount().to_numpy(np.int32),
                        "source": "radgenome-release"})
    return schema.to_table("case_labels", pa.Table.from_pandas(pd.concat([ct, dis]), preserve_index=False))


QUESTION = {  # one template per type; the real build picks among RadGenome's templates
    "abnormality": "What are the abnormalities in the {region}?",
    "location": "Where is the {term} located in the image?",
    "presence": "Is there {term} in the {region}?",
    "size": "What is the size of the {term} in the {region}?",
    "disorders": "What are the abnormalities in the scan?",
}


def _vqa(rel: Release, ids: dict[str, int]) -> pa.Table:
    _, names = region_maps()
    parts = []
    specs = (("abnormality", rel.vqa_abnormality, "Abnormality", None),
             ("location", rel.vqa_location, "Anatomy", "Abnormality"),
             ("presence", rel.vqa_presence, "Presence", "Finding"),
             ("size", rel.vqa_size, "Size", "Abnormality"),
             ("disorders", rel.case_disorders.assign(Anatomy=""), "Disorders", None))
    for type_, df, answer, term in specs:
        region = df["Anatomy"].map(names).fillna("")
        terms = df[term] if term else pd.Series([None] * len(df))
        q = [QUESTION[type_].format(region=r, term=t) for r, t in zip(region, terms, strict=True)]
        parts.append(pd.DataFrame({
            "vqa_id": _hash_ids(df["Volumename"], pd.Series([type_] * len(df)), df["Anatomy"], df[answer],
                                pd.Series(_ordinal(df))),
            "case_id": df["Volumename"].to_numpy(), "type": type_, "question": q, "answer": df[answer].to_numpy(),
            "region_id": pd.array(df["Anatomy"].map(ids).to_numpy(), dtype="Int32"),
            "anatomy_path": df["Anatomy"].to_numpy(),
            "term": terms.to_numpy(),
            "size_mm": [size_mm(s) for s in df["Size"]] if type_ == "size" else None,
            "ordinal": _ordinal(df), "extractor": "radgenome-release"}))
    return schema.to_table("vqa", pa.Table.from_pandas(pd.concat(parts, ignore_index=True), preserve_index=False))
