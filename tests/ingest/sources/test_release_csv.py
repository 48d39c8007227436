"""Released CSV files read row by row: every bad file, line or field an `ingest_errors` row, never an exception."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from ingest.sources.release_csv import (
    ErrorSink,
    csv_header,
    encoding_problem,
    printable,
    read_csv,
    report_rows,
)
from ingest.sources.volume_names import case_name_problem

COLUMNS = ("VolumeName", "Text")
REPORTS = "VolumeName,ClinicalInformation_EN,Technique_EN,Findings_EN,Impressions_EN\n"


def read(tmp_path: Path, data: bytes, required=COLUMNS, **options) -> tuple[list, list[tuple]]:
    """(rows, errors as (case_id, location, error)) of `data` written to a file and read back."""
    path = tmp_path / "file.csv"
    path.write_bytes(data)
    errors = ErrorSink("radgenome")
    rows = list(read_csv(path, required, errors, **options))
    assert all(e["file"] == str(path) and e["source"] == "radgenome" for e in errors.rows)
    return rows, [(e["case_id"], e["location"], e["error"]) for e in errors.rows]


def reports(tmp_path: Path, text: str, **options) -> tuple[list, list[tuple]]:
    path = tmp_path / "reports.csv"
    path.write_text(text)
    errors = ErrorSink("ct_rate")
    rows = list(report_rows(path, errors, **options))
    assert {e["stage"] for e in errors.rows} <= {options.get("stage", "report")}
    return rows, [(e["case_id"], e["location"], e["error"]) for e in errors.rows]


def test_good_rows_come_with_their_line_numbers(tmp_path):
    rows, errors = read(tmp_path, b'VolumeName,Text,Extra\nvalid_1_a_1.nii.gz,hello,1\n\n'
                                  b'valid_2_a_1.nii.gz,"a, b\nc",2\nvalid_3_a_1.nii.gz,x,3\n')
    assert rows == [(2, {"VolumeName": "valid_1_a_1.nii.gz", "Text": "hello", "Extra": "1"}),
                    (4, {"VolumeName": "valid_2_a_1.nii.gz", "Text": "a, b\nc", "Extra": "2"}),
                    (6, {"VolumeName": "valid_3_a_1.nii.gz", "Text": "x", "Extra": "3"})]
    assert errors == []


def test_a_bom_and_spaces_around_column_names_are_dropped(tmp_path):
    data = codecs.BOM_UTF8 + b" VolumeName , Text\nvalid_1_a_1.nii.gz,x\n"
    rows, errors = read(tmp_path, data)
    assert rows == [(2, {"VolumeName": "valid_1_a_1.nii.gz", "Text": "x"})] and errors == []
    assert csv_header(tmp_path / "file.csv") == ["VolumeName", "Text"]


def test_bad_bytes_skip_the_row_and_name_the_column(tmp_path):
    rows, errors = read(tmp_path, b"VolumeName,Text\nvalid_1_a_1.nii.gz,caf\xe9\n\xff_1.nii.gz,x\n"
                                  b"valid_2_a_1.nii.gz,ok\n", key="VolumeName")
    assert rows == [(4, {"VolumeName": "valid_2_a_1.nii.gz", "Text": "ok"})]
    assert errors == [("valid_1_a_1.nii.gz", "line 2", "column 'Text' is not valid UTF-8; the row is skipped"),
                      (None, "line 3", "column 'VolumeName' is not valid UTF-8; the row is skipped")]


def test_a_row_with_the_wrong_number_of_fields_is_skipped(tmp_path):
    rows, errors = read(tmp_path, b"VolumeName,Text\nvalid_1_a_1.nii.gz,a,b\nvalid_2_a_1.nii.gz\n"
                                  b"valid_3_a_1.nii.gz,ok\n", key="VolumeName")
    assert rows == [(4, {"VolumeName": "valid_3_a_1.nii.gz", "Text": "ok"})]
    assert errors == [("valid_1_a_1.nii.gz", "line 2", "3 fields where the header has 2; the row is skipped"),
                      ("valid_2_a_1.nii.gz", "line 3", "1 fields where the header has 2; the row is skipped")]


def test_an_unclosed_quote_skips_its_line_and_rereads_the_lines_it_swallowed(tmp_path):
    rows, errors = read(tmp_path, b'VolumeName,Text\nvalid_1_a_1.nii.gz,"open\nvalid_2_a_1.nii.gz,two\n'
                                  b'valid_3_a_1.nii.gz,three\n', key="VolumeName")
    assert rows == [(3, {"VolumeName": "valid_2_a_1.nii.gz", "Text": "two"}),
                    (4, {"VolumeName": "valid_3_a_1.nii.gz", "Text": "three"})]
    ((case, where, error),) = errors
    assert (case, where) == ("valid_1_a_1.nii.gz", "line 2")
    assert error.startswith('an unclosed quote (") runs on over line(s) 3..4, which start like rows (first: line 3)')


def test_an_unclosed_quote_that_runs_to_the_end_of_the_file(tmp_path):
    rows, errors = read(tmp_path, b'VolumeName,Text\nvalid_1_a_1.nii.gz,ok\nvalid_2_a_1.nii.gz,"open\nmore\n',
                        key="VolumeName")
    assert rows == [(2, {"VolumeName": "valid_1_a_1.nii.gz", "Text": "ok"})]
    assert [(c, w) for c, w, _ in errors] == [("valid_2_a_1.nii.gz", "line 3"), ("more", "line 4")]
    assert "runs to the end of the file; line 3 is skipped" in errors[0][2]
    assert errors[1][2] == "1 fields where the header has 2; the row is skipped"  # the swallowed line, read again


def test_control_characters_are_removed_and_the_row_kept(tmp_path):
    rows, errors = read(tmp_path, b"VolumeName,Text\nvalid_1_a_1.nii.gz,a\x00b\x1bc\td\r\n", key="VolumeName")
    assert rows == [(2, {"VolumeName": "valid_1_a_1.nii.gz", "Text": "abc\td"})]
    assert errors == [("valid_1_a_1.nii.gz", "line 2", "column(s) 'Text' held control characters (\\x00, \\x1b); "
                                                        "they were removed and the row is kept")]


def test_check_key_skips_rows_whose_key_is_no_case_name(tmp_path):
    rows, errors = read(tmp_path, b"VolumeName,Text\n../etc/passwd,a\nvalid_1_a_1.nii.gz,b\n", key="VolumeName",
                        check_key=case_name_problem, stage="labels")
    assert rows == [(3, {"VolumeName": "valid_1_a_1.nii.gz", "Text": "b"})]
    ((case, where, error),) = errors
    assert (case, where) == (None, "line 2")  # a path is no case an error row can name
    assert error.startswith("VolumeName '../etc/passwd': the case name is a path") and "row is skipped" in error


@pytest.mark.parametrize("data, error", [
    (b"", "the file is empty (no header line)"),
    (b"VolumeName,Other\nx,y\n", "missing column(s) 'Text'; the file has VolumeName, Other"),
    (b"VolumeName;Text\nx;y\n", "missing column(s) 'VolumeName', 'Text'; the file has VolumeName;Text; "
                                "the file seems separated by ';', not commas"),
    (b"VolumeName,Text,Text\nx,y,z\n", "column(s) 'Text' appear more than once in the header; keep one of each"),
    (b"VolumeName,T\xe9xt\nx,y\n", "the header line is not UTF-8 text (VolumeName, T\\xe9xt); save the file as UTF-8"),
    ("VolumeName,Text\nx,y\n".encode("utf-16"), "the file is UTF-16 text, not UTF-8 (it starts with a UTF-16 "
                                                "byte-order mark); save it as UTF-8"),
    ("VolumeName,Text\nx,y\n".encode("utf-16-le"), "the header line holds NUL bytes (UTF-16 text without a "
                                                   "byte-order mark?); save the file as UTF-8"),
])
def test_a_file_that_cannot_be_read_is_one_error_row(tmp_path, data, error):
    rows, errors = read(tmp_path, data)
    assert rows == [] and errors == [(None, "header", error)]


def test_a_missing_file_is_one_error_row(tmp_path):
    errors = ErrorSink("folder")
    assert list(read_csv(tmp_path / "gone.csv", COLUMNS, errors, stage="report")) == []
    (row,) = errors.rows
    assert row["stage"] == "report" and row["location"] is None
    assert row["error"] == "cannot open the file: No such file or directory"


def test_csv_header_keeps_bad_bytes_for_the_message(tmp_path):
    (tmp_path / "h.csv").write_bytes(b"VolumeName,T\xe9xt\nx,y\n")
    assert csv_header(tmp_path / "h.csv") == ["VolumeName", "T\udce9xt"]
    (tmp_path / "empty.csv").write_bytes(b"")
    assert csv_header(tmp_path / "empty.csv") == []


@pytest.mark.parametrize("head, problem", [
    (b"VolumeName,Text\n", None),
    (b"VolumeName,Text\n\0", None),  # a NUL after the header line is a row's problem, not the file's
    (codecs.BOM_UTF8 + b"VolumeName\n", None),
    (codecs.BOM_UTF16_BE + b"\0V", "UTF-16"),
    (codecs.BOM_UTF32_LE + b"V\0\0\0", "UTF-32"),  # starts like a UTF-16 BOM, is not
    (b"V\0o\0l\0", "NUL bytes"),
])
def test_encoding_problem(head, problem):
    why = encoding_problem(head)
    assert why is None if problem is None else problem in why


def test_error_sink_collects_printable_rows_and_hands_them_over():
    sink = ErrorSink("radgenome")
    sink.add("bad\x1b value", file=Path("bad\udcff.csv"), location="line 2", case_id="v\x00", stage="masks")
    sink.add("no file")
    assert sink.rows == [
        {"source": "radgenome", "case_id": "v\\x00", "stage": "masks", "file": "bad\\xff.csv",
         "location": "line 2", "error": "bad\\x1b value"},
        {"source": "radgenome", "case_id": None, "stage": "read", "file": None, "location": None,
         "error": "no file"}]
    taken = sink.take()
    assert len(taken) == 2 and sink.rows == [] and sink.take() == []


@pytest.mark.parametrize("text, shown", [
    (None, None), ("train_1_a_1.nii.gz", "train_1_a_1.nii.gz"), ("bad\udcff.nii.gz", "bad\\xff.nii.gz"),
    ("esc\x1b tab\t nl\n", "esc\\x1b tab\\t nl\\n"), ("c1\x85", "c1\\x85"), (3, "3"), ("café", "café"),
])
def test_printable(text, shown):
    assert printable(text) == shown


def test_report_rows_read_not_given_and_whitespace_as_null_and_skip_duplicates(tmp_path):
    rows, errors = reports(tmp_path, REPORTS + 'valid_1_a_1.nii.gz,Not given.,"Thin, axial",Normal.,  \n'
                                               "valid_1_a_1.nii.gz,a,b,c,d\nvalid_1_a_2.nii.gz,a,b,c,d\n")
    assert rows == [
        (2, "valid_1_a_1.nii.gz", {"clinical_information": None, "technique": "Thin, axial", "findings": "Normal.",
                                   "impressions": None}),
        (4, "valid_1_a_2.nii.gz", {"clinical_information": "a", "technique": "b", "findings": "c",
                                   "impressions": "d"})]
    assert errors == [
        ("valid_1_a_1.nii.gz", "line 2", "column(s) 'Impressions_EN' hold nothing but whitespace; stored as empty "
                                         "(write 'Not given.' for a field with no text)"),
        ("valid_1_a_1.nii.gz", "line 3", "duplicate VolumeName; the later report is skipped")]


def test_report_rows_options(tmp_path):
    text = REPORTS + "valid_1_a_1.nii.gz,a,b,c,  \nvalid_1_a_1.nii.gz,a,b,c,d\n"
    rows, errors = reports(tmp_path, text, same=None, note_blank=False)  # duplicates kept, blanks not noted
    assert [(line, name, row["impressions"]) for line, name, row in rows] == [
        (2, "valid_1_a_1.nii.gz", None), (3, "valid_1_a_1.nii.gz", "d")] and errors == []
    seen = {"valid_1_a_1.nii.gz"}
    rows, errors = reports(tmp_path, text, seen=seen, note_blank=False)  # seen in an earlier file
    assert rows == [] and [e for _, _, e in errors] == ["duplicate VolumeName; the later report is skipped"] * 2
    rows, _ = reports(tmp_path, REPORTS + "valid_1_a_1.nii.gz,a,b,c,d\nvalid_1_a_2.nii.gz,a,b,c,d\n",
                      same=lambda name: name.rsplit("_", 1)[0])  # one report per scan, whatever its reconstruction
    assert [name for _, name, _ in rows] == ["valid_1_a_1.nii.gz"]


def test_report_rows_with_fewer_or_other_columns(tmp_path):
    text = "VolumeName,Findings_EN\nvalid_1_a_1.nii.gz,Nodule.\n"
    rows, errors = reports(tmp_path, text)
    assert rows == [] and errors == [(None, "header", "missing column(s) 'ClinicalInformation_EN', 'Technique_EN', "
                                                      "'Impressions_EN'; the file has VolumeName, Findings_EN")]
    rows, errors = reports(tmp_path, text, required=["VolumeName", "Findings_EN"])
    assert rows == [(2, "valid_1_a_1.nii.gz", {"clinical_information": None, "technique": None,
                                               "findings": "Nodule.", "impressions": None})] and errors == []
    rows, _ = reports(tmp_path, "Name,Report\nscan_0042.nii.gz,Nodule.\n", stage="folder",
                      columns=(("Name", "case_id"), ("Report", "findings")))
    assert rows == [(2, "scan_0042.nii.gz", {"findings": "Nodule."})]


def test_report_rows_refuse_case_names_that_are_paths_unless_told(tmp_path):
    text = REPORTS + "dir/valid_1_a_1.nii.gz,a,b,c,d\n"
    rows, errors = reports(tmp_path, text)
    assert rows == [] and errors[0][:2] == (None, "line 2") and "the case name is a path" in errors[0][2]
    rows, errors = reports(tmp_path, text, check_key=None)
    assert [name for _, name, _ in rows] == ["dir/valid_1_a_1.nii.gz"] and errors == []
