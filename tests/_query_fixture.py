"""A small hand-made warehouse for the named-query tests: few rows, every join covered.

Six cases (one patient, P7, in both splits: a leak), sentences under DAG regions with two
parents (left lung lower lobe, aorta), findings with every status, sizes, CT-RATE labels,
disorders, VQA of four types and region volumes from two mask sources. The expected
answers in tests/test_queries.py are worked out by hand from these rows.
"""

from __future__ import annotations

from pathlib import Path

from warehouse.core.anatomy import anatomy
from warehouse.core.reference import reference_tables
from warehouse.store.snapshot import Snapshot, SnapshotWriter

T1, T1B, T2, V1, P7A, P7B = ("train_1_a_1.nii.gz", "train_1_a_2.nii.gz", "train_2_a_1.nii.gz",
                             "valid_1_a_1.nii.gz", "folder_p7_1", "folder_p7_2")
LLL, RUL = "left lung lower lobe", "right lung upper lobe"


def _case(case_id: str, patient: str, split: str, sex: str, age: int, source: str = "radgenome") -> dict:
    return {"case_id": case_id, "patient_id": patient, "split": split, "sex": sex, "age": age, "source": source}


def _rid(region: str | None) -> int | None:
    return anatomy().get(region).region_id if region else None


def _path(region: str | None) -> str:
    return anatomy().path(region) if region else ""


CASES = [_case(T1, "train_1", "train", "M", 45), _case(T1B, "train_1", "train", "M", 45),
         _case(T2, "train_2", "train", "F", 62), _case(V1, "valid_1", "validation", "F", 38),
         _case(P7A, "P7", "train", "M", 71, "folder"), _case(P7B, "P7", "validation", "M", 71, "folder")]

# (case, region, text, is_abnormal), in report order per case
SENTENCES = [
    (T1, None, "Whole report: a nodule in the left lower lobe, atheroma plaques.", None),
    (T1, "lung", "A 6 mm nodule in the left lower lobe. No effusion.", True),
    (T1, LLL, "A 6 mm NODULE in the left lower lobe.", True),
    (T1, "heart", "Heart size is normal.", False),
    (T1, "aorta", "Calcific atheroma plaques in the aorta.", True),
    (T2, "lung", "Lungs are otherwise clear.", False),
    (T2, RUL, "Ground glass nodule of 12 mm.", True),
    (T2, "pleura", "Bilateral pleural effusion.", True),
    (V1, LLL, "Nodule 4 mm, stable.", True),
    (V1, "heart", "Pericardial effusion.", True),
    (V1, "aorta", "Aorta of normal caliber, 50% of the ' OR 1=1 -- study.", None),
    (P7A, "lung", "No nodule.", False),
]

# (case, region, term of finding_terms, status, size_mm)
FINDINGS = [
    (T1, LLL, "pulmonary nodule", "present", 6.0), (T1, "lung", "pulmonary nodule", "present", 6.0),
    (T1, "lung", "pleural effusion", "absent", None), (T1, "aorta", "atherosclerosis", "present", None),
    (T2, RUL, "pulmonary nodule", "present", 12.0), (T2, "pleura", "pleural effusion", "present", None),
    (T2, RUL, "ground-glass opacity", "present", None),
    (V1, LLL, "pulmonary nodule", "present", 4.0), (V1, "heart", "pericardial effusion", "present", None),
    (V1, "pleura", "pleural effusion", "uncertain", None),
    (P7A, "lung", "pulmonary nodule", "absent", None),
    (P7B, "pleura", "pleural effusion", "present", 30.0), (P7B, "heart", "pericardial effusion", "present", None),
]

# (case, {CT-RATE label: value}) and (case, [disorders])
CT_RATE = {T1: {"Lung nodule": 1, "Pleural effusion": 0}, T1B: {"Lung nodule": 1, "Pleural effusion": 0},
           T2: {"Lung nodule": 1, "Pleural effusion": 1}, V1: {"Lung nodule": 1, "Pleural effusion": 0},
           P7A: {"Lung nodule": 0, "Pleural effusion": 0}}
DISORDERS = {T1: ["pulmonary nodule", "atherosclerosis"], T2: ["pulmonary nodule", "pleural effusion"],
             V1: ["pericardial effusion"], P7A: ["no findings"]}

# (case, type, region, question, answer, term, size_mm)
VQA = [
    (T1, "abnormality", LLL, "What are the abnormalities in the left lung lower lobe?", "nodule", None, None),
    (T1, "abnormality", "heart", "What are the abnormalities in the heart?", "no findings", None, None),
    (T1, "presence", LLL, "Is there a nodule in the left lung lower lobe?", "Yes.", "nodule", None),
    (T1, "disorders", None, "What are the abnormalities in the scan?", "pulmonary nodule, atherosclerosis",
     None, None),
    (T2, "abnormality", RUL, "What are the abnormalities in the right lung upper lobe?", "nodule", None, None),
    (T2, "presence", "pleura", "Is there a pleural effusion in the pleura?", "Yes.", "pleural effusion", None),
    (V1, "abnormality", LLL, "What are the abnormalities in the left lung lower lobe?", "nodule", None, None),
    (V1, "size", LLL, "How big is the nodule?", "4 mm", "nodule", 4.0),
]

# (case, region, mask_source, volume_ml)
VOLUMES = [(T1, "heart", "radgenome", 650.0), (T2, "heart", "radgenome", 800.0),
           (V1, "heart", "radgenome", 900.0), (V1, "heart", "totalsegmentator", 880.0),
           (P7A, "heart", "totalsegmentator", 720.0), (T1, "lung", "radgenome", 5000.0)]
LABEL_ORDER = {"Lung nodule": 9, "Pleural effusion": 12}


def rows() -> dict[str, list[dict]]:
    """Every table's rows."""
    out: dict[str, list[dict]] = {"cases": CASES, "sentences": [], "findings": [], "case_labels": [],
                                  "vqa": [], "region_stats": []}
    ordinal: dict[str, int] = {}
    for case, region, text, abnormal in SENTENCES:
        i = ordinal[case] = ordinal.get(case, -1) + 1
        out["sentences"].append({"sentence_id": f"{case}-s{i}", "case_id": case, "region_id": _rid(region),
                                 "anatomy_path": _path(region), "ordinal": i, "text": text,
                                 "is_abnormal": abnormal, "extractor": "fixture"})
    for i, (case, region, term, status, size) in enumerate(FINDINGS):
        out["findings"].append({"finding_id": f"f{i:03d}", "case_id": case, "region_id": _rid(region),
                                "anatomy_path": _path(region), "term": term, "raw_text": term, "status": status,
                                "size_mm": size, "size_text": f"{size:g} mm" if size else None,
                                "extractor": "fixture"})
    for case, labels in CT_RATE.items():
        out["case_labels"] += [{"case_id": case, "kind": "ct_rate", "label": k, "value": v,
                                "ordinal": LABEL_ORDER[k], "source": "fixture"} for k, v in labels.items()]
    for case, terms in DISORDERS.items():
        out["case_labels"] += [{"case_id": case, "kind": "disorder", "label": t, "value": 1, "ordinal": i,
                                "source": "fixture"} for i, t in enumerate(terms)]
    counter: dict[tuple[str, str], int] = {}
    for case, type_, region, question, answer, term, size in VQA:
        i = counter[case, type_] = counter.get((case, type_), -1) + 1
        out["vqa"].append({"vqa_id": f"{case}-{type_}-{i}", "case_id": case, "type": type_, "question": question,
                           "answer": answer, "region_id": _rid(region), "anatomy_path": _path(region),
                           "term": term, "size_mm": size, "ordinal": i, "extractor": "fixture"})
    for case, region, source, ml in VOLUMES:
        out["region_stats"].append({"case_id": case, "region_id": _rid(region), "mask_source": source,
                                    "voxels": int(ml * 1000), "volume_ml": ml})
    return out


def build(root: Path) -> Snapshot:
    """Publish the fixture as a snapshot of a new warehouse at `root`."""
    writer = SnapshotWriter(root, "query-fixture")
    writer.save_part("fixture", rows())
    return writer.publish(replaced_cases=[c["case_id"] for c in CASES], source="fixture",
                          tables=reference_tables())
