"""The text stages of a release import: CT-RATE reports without a region report are structured whole;
derived labels and disorders only where the release gives a case none; released and derived rows apart."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ingest.runner import build
from ingest.sources.radgenome import RadGenomeSource
from warehouse import Warehouse
from warehouse.core.release_format import CT_RATE_FILES
from warehouse.core.schema import CT_RATE_LABELS

FINDINGS = ("Trachea and both main bronchi are open. Heart contour and size are normal. Bilateral pleural "
            "effusion is observed, 25 mm on the right. A 6 mm nodule is observed in the left lung lower lobe. "
            "No pericardial effusion.")
NORMAL = "Trachea and both main bronchi are open. Heart contour and size are normal. No pleural effusion."
CASES = {"valid_1_a_1.nii.gz": FINDINGS, "valid_2_a_1.nii.gz": FINDINGS, "valid_3_a_1.nii.gz": NORMAL}
PREDICTED = "valid_2_a_1.nii.gz"  # CT-RATE gives this case its 18 labels: none are derived for it


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    root = tmp_path_factory.mktemp("ct_rate_only")
    reports = CT_RATE_FILES["reports"].header
    _write(root / "ct_rate/dataset/radiology_text_reports/validation_reports.csv", reports,
           [[case, "Not given.", "Not given.", text, "Not given."] for case, text in CASES.items()])
    _write(root / "ct_rate/dataset/multi_abnormality_labels/valid_predicted_labels.csv",
           ["VolumeName", *CT_RATE_LABELS], [[PREDICTED, *[0] * len(CT_RATE_LABELS)]])
    build(RadGenomeSource(None, root / "ct_rate"), root / "wh", runner="local", progress=False)
    with Warehouse.open(root / "wh") as w:
        yield w


def test_reports_without_a_region_report_are_structured_whole(wh):
    sentences = wh.sql("SELECT case_id, anatomy_path, extractor FROM sentences")
    assert set(sentences["case_id"]) == set(CASES) and set(sentences["extractor"]) == {"rules-0.1"}
    assert {"pleura", "lung"} <= set(sentences.filter(sentences["case_id"] == "valid_1_a_1.nii.gz")["anatomy_path"])
    present = wh.sql("SELECT case_id, term FROM findings WHERE status = 'present' ORDER BY 1, 2").rows()
    first = "valid_1_a_1.nii.gz"
    assert (first, "pleural effusion") in present and (first, "pulmonary nodule") in present
    assert not [c for c, _ in present if c == "valid_3_a_1.nii.gz"]
    assert wh.sql("SELECT count(*) AS n FROM vqa WHERE case_id = 'valid_1_a_1.nii.gz'")["n"][0] > 5


def test_derived_labels_only_where_the_release_has_none(wh):
    labels = wh.sql("SELECT case_id, source, label, value FROM case_labels WHERE kind = 'ct_rate'")
    by_case = {c: set(labels.filter(labels["case_id"] == c)["source"]) for c in CASES}
    assert by_case == {"valid_1_a_1.nii.gz": {"rules-0.1"}, PREDICTED: {"ct_rate_predicted"},
                       "valid_3_a_1.nii.gz": {"rules-0.1"}}
    positive = set(labels.filter((labels["case_id"] == "valid_1_a_1.nii.gz") & (labels["value"] == 1))["label"])
    assert positive == {"Pleural effusion", "Lung nodule"}
    assert labels.filter(labels["case_id"] == PREDICTED)["value"].sum() == 0  # CT-RATE's word stands
    disorders = wh.sql("SELECT label FROM case_labels WHERE kind = 'disorder' AND case_id = 'valid_1_a_1.nii.gz' "
                       "ORDER BY ordinal")["label"].to_list()
    assert disorders == ["pleural effusion", "pulmonary nodule"]


def test_the_release_export_leaves_derived_rows_out(wh, tmp_path):
    from warehouse.exports import export_release

    written = export_release(wh, tmp_path)
    assert not [p for p in written if "region_report" in p or "case_disorders" in p]
    with open(tmp_path / "ct_rate/dataset/multi_abnormality_labels/valid_predicted_labels.csv") as f:
        assert [r["VolumeName"] for r in csv.DictReader(f)] == [PREDICTED]
