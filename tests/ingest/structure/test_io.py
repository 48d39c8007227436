"""`ingest.structure.io.structure_csv`, the function behind `radgenome structure` and `radgenome label`."""

from __future__ import annotations

import pytest

from ingest.structure.io import CHUNK, FIRST_ERRORS, structure_csv
from tests.fixtures.csv_files import read_csv, write_csv
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS

HEADER = ["VolumeName", "Findings_EN", "Impressions_EN"]
GOOD = ["valid_1_a_1.nii.gz", "Millimetric nodules in both lungs. Pleural effusion-thickening was not detected.",
        "Nodules."]


def test_a_summary_counts_the_reports_and_names_the_failures(tmp_path):
    src = write_csv(tmp_path / "reports.csv", [HEADER, GOOD, ["valid_2_a_1.nii.gz", "Not given.", ""],
                                               ["", "Nodules in both lungs.", ""]])
    summary = structure_csv(src, tmp_path / "regions.csv")
    assert (summary.reports, summary.structured, summary.ok, summary.kind) == (3, 1, True, "region_report")
    assert summary.rows == len(read_csv(tmp_path / "regions.csv")) - 1 > 0
    assert summary.errors_file == tmp_path / "regions.csv.errors.csv" and summary.error_count == 2
    assert [(line, case) for line, case, _ in summary.first_errors] == [(3, "valid_2_a_1.nii.gz"), (4, "")]
    assert [r[:2] for r in read_csv(summary.errors_file)] == [["row", "VolumeName"], ["3", "valid_2_a_1.nii.gz"],
                                                              ["4", ""]]
    text = str(summary).splitlines()
    assert text[0] == (f"1 of 3 reports structured by {summary.extractor}; {summary.rows} rows written to "
                       f"{tmp_path / 'regions.csv'}")
    assert text[1].startswith("2 row(s) could not be structured") and text[3] == "  line 4 (no id): " + \
        summary.first_errors[1][2]


def test_labels_and_a_clean_file_leave_no_errors_file(tmp_path):
    src = write_csv(tmp_path / "reports.csv", [HEADER, GOOD])
    summary = structure_csv(src, tmp_path / "labels.csv", kind="labels")
    header, row = read_csv(tmp_path / "labels.csv")
    assert header == ["VolumeName", *CT_RATE_LABELS] and row[CT_RATE_LABELS.index("Lung nodule") + 1] == "1"
    assert (summary.rows, summary.error_count, summary.errors_file, summary.error_lines()) == (1, 0, None, [])
    assert not (tmp_path / "labels.csv.errors.csv").exists()


def test_nothing_structured_is_not_ok_and_an_unknown_kind_is_refused(tmp_path):
    src = write_csv(tmp_path / "reports.csv", [HEADER, ["valid_2_a_1.nii.gz", "", ""]])
    assert not structure_csv(src, tmp_path / "o.csv").ok
    assert not structure_csv(write_csv(tmp_path / "empty.csv", [HEADER]), tmp_path / "o.csv").ok
    with pytest.raises(ValueError, match="choose one of region_report, labels"):
        structure_csv(src, tmp_path / "o.csv", kind="vqa")
    with pytest.raises(WarehouseError, match="Findings_EN"):
        structure_csv(write_csv(tmp_path / "bad.csv", [["VolumeName"], ["v"]]), tmp_path / "o.csv")


def test_workers_and_a_progress_callback_give_the_same_rows(tmp_path):
    n = 2 * CHUNK + 3  # three chunks: the pool and the callback both see more than one
    rows = [[f"valid_{i}_a_1.nii.gz", GOOD[1], GOOD[2]] for i in range(1, n + 1)]
    rows[5][1] = ""  # one failure, among more than FIRST_ERRORS lines of output otherwise
    src = write_csv(tmp_path / "reports.csv", [HEADER, *rows])
    seen: list[tuple[int, int]] = []
    one = structure_csv(src, tmp_path / "one.csv", kind="labels")
    two = structure_csv(src, tmp_path / "two.csv", kind="labels", workers=2, progress=lambda *a: seen.append(a))
    assert read_csv(tmp_path / "one.csv") == read_csv(tmp_path / "two.csv")
    assert (two.structured, two.error_count, two.first_errors) == (n - 1, 1, one.first_errors)
    assert seen == [(CHUNK, n), (2 * CHUNK, n), (n, n)]
    assert len(two.first_errors) <= FIRST_ERRORS
