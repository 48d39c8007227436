"""The `structure`, `label` and `eval` commands, on small CSVs written here."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from tests.fixtures.csv_files import read_csv, write_csv
from warehouse.cli.structure import register
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS

REPORTS = [
    ["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"],
    ["valid_1_a_1.nii.gz", "Cough.", "Non-contrast.",
     "Trachea, both main bronchi are open. Thoracic aorta diameter is normal. Millimetric nodules in both lungs. "
     "Pleural effusion-thickening was not detected.", "Millimetric nodules."],
    ["valid_2_a_1.nii.gz", "", "", "Not given.", "Not given."],
    ["valid_3_a_1.nii.gz", "", "", "qwerty zxcv asdf 123 !!!", ""],
    ["", "", "", "Nodules in both lungs.", ""],
]


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_structure_writes_region_report_and_names_bad_rows(app, tmp_path):
    src, out = write_csv(tmp_path / "reports.csv", REPORTS), tmp_path / "regions.csv"
    res = CliRunner().invoke(app, ["structure", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = read_csv(out)
    assert rows[0] == ["Volumename", "Anatomy", "Sentence"]
    got = {(v, a): s for v, a, s in rows[1:]}
    assert {v for v, _ in got} == {"valid_1_a_1.nii.gz"}
    assert got["valid_1_a_1.nii.gz", "lung"] == "Millimetric nodules in both lungs."
    assert got["valid_1_a_1.nii.gz", "mediastinum"] == got["valid_1_a_1.nii.gz", "abdomen"]
    assert got["valid_1_a_1.nii.gz", ""].startswith("Trachea")
    errors = read_csv(tmp_path / "regions.csv.errors.csv")
    assert errors[0] == ["row", "VolumeName", "error"]
    assert [(r[0], r[1]) for r in errors[1:]] == [("3", "valid_2_a_1.nii.gz"), ("4", "valid_3_a_1.nii.gz"), ("5", "")]
    assert "1 of 4 reports structured" in res.output and "valid_2_a_1.nii.gz: empty findings" in res.output


def test_label_writes_ct_rate_columns(app, tmp_path):
    src, out = write_csv(tmp_path / "reports.csv", REPORTS[:2]), tmp_path / "labels.csv"
    res = CliRunner().invoke(app, ["label", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    header, row = read_csv(out)
    assert header == ["VolumeName", *CT_RATE_LABELS]
    expected = {"VolumeName": "valid_1_a_1.nii.gz", **{c: "0" for c in CT_RATE_LABELS}, "Lung nodule": "1"}
    assert dict(zip(header, row, strict=True)) == expected


def test_missing_column_is_one_clear_error(app, tmp_path):
    src = write_csv(tmp_path / "bad.csv", [["VolumeName", "Impressions_EN"], ["v", "Nodule."]])
    res = CliRunner().invoke(app, ["structure", str(src), "-o", str(tmp_path / "o.csv")])
    assert isinstance(res.exception, WarehouseError) and "Findings_EN" in str(res.exception)


def test_nothing_structured_exits_1(app, tmp_path):
    src = write_csv(tmp_path / "r.csv", [REPORTS[0], REPORTS[2]])
    res = CliRunner().invoke(app, ["label", str(src), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 1


def test_eval_grounding_and_labels(app, tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    paragraphs = {"trachea and bronchie": "Trachea, both main bronchi are open.",
                  "mediastinum": "Thoracic aorta diameter is normal.", "abdomen": "Thoracic aorta diameter is normal.",
                  "lung": "Millimetric nodules in both lungs. It was evaluated in favor of granuloma."}
    for region, text in paragraphs.items():
        rows = [["Volumename", "Anatomy", "Sentence"], ["valid_9_a_1.nii.gz", region, text]]
        write_csv(truth / f"{region}.csv", rows)
    res = CliRunner().invoke(app, ["eval", "grounding", "--truth", str(truth)])
    assert res.exit_code == 0, res.output
    assert "micro-F1 (1 volumes)" in res.output and res.output.rstrip().endswith("1.0000")
    labels = write_csv(tmp_path / "labels.csv", [["AccessionNo", "report_text", *CT_RATE_LABELS],
                                                 ["a", "Nodules in both lungs.", *["0"] * 9, "1", *["0"] * 8],
                                                 ["b", "Pleural effusion.", *["0"] * 12, "1", *["0"] * 5]])
    res = CliRunner().invoke(app, ["eval", "labels", "--truth", str(labels)])
    assert res.exit_code == 0, res.output
    assert "macro-F1 (2 reports)" in res.output
    assert "Lung nodule" in res.output and "Pleural effusion" in res.output
