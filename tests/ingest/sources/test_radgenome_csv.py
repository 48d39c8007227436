"""The released-CSV readers on small written files: parsing, ids, templates and every bad row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.sources.radgenome_csv import CsvState, load_templates, read_release_csv, size_mm, split_terms
from ingest.sources.release_csv import ErrorSink
from warehouse.core.anatomy import anatomy
from warehouse.core.release_format import RADGENOME_FILES


@pytest.mark.parametrize("text, mm", [
    ("50 mm", 50.0), ("2 cm", 20.0), ("4.5 mm", 4.5), ("1.5 cm", 15.0), ("1-2 mm", 2.0), ("12 x 9 mm", 12.0),
    ("120x87mm", 120.0), ("2.7x2.6 cm", 27.0), ("3.5 x 2 cm", 35.0), ("126mm", 126.0),
    ("170 in", None), ("7-8 in", None), ("large", None), ("", None), (None, None),
])
def test_size_mm(text, mm):
    assert size_mm(text) == (pytest.approx(mm) if mm is not None else None)


def test_split_terms_keeps_order_and_reads_no_findings_as_none():
    assert split_terms("emphysema, passive atelectasis,pulmonary nodule") == [
        "emphysema", "passive atelectasis", "pulmonary nodule"]
    assert split_terms("no findings") == []


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _read(path: Path, kind: str, templates: dict | None = None) -> tuple[dict[str, list[dict]], list[dict]]:
    state = CsvState(errors=ErrorSink("radgenome"), templates=templates or load_templates(None))
    out: dict[str, list[dict]] = {}
    for chunk in read_release_csv(path, RADGENOME_FILES[kind], state):
        for table, rows in chunk.items():
            out.setdefault(table, []).extend(rows)
    return out, state.errors.rows


def test_vqa_rows_keep_raw_text_and_parse_beside_it(tmp_path):
    path = _write(tmp_path / "train_vqa_size.csv",
                  "Volumename,Anatomy,Abnormality,Size\n"
                  "train_8_b_1.nii.gz,lung/lung/lung lower lobe/right lung lower lobe,nodule,6x4 mm\n"
                  "train_8_b_1.nii.gz,lung/lung/lung lower lobe/right lung lower lobe,nodule,6x4 mm\n"
                  "train_3_b_1.nii.gz,pleura/pleura,pleural effusion,2 cm\n")
    out, errors = _read(path, "vqa_size")
    assert errors == []
    first, dup, other = out["vqa"]
    assert (first["answer"], first["size_mm"], first["term"]) == ("6x4 mm", 6.0, "nodule")
    assert first["region_id"] == anatomy().get("right lung lower lobe").region_id
    assert (first["ordinal"], dup["ordinal"], other["ordinal"]) == (0, 1, 0)
    assert first["vqa_id"] != dup["vqa_id"], "duplicate rows stay distinct through their ordinal"
    assert first["question"] == dup["question"] and "nodule" in first["question"] and "right lung lower lobe" in \
        first["question"]
    again, _ = _read(path, "vqa_size")
    assert [r["vqa_id"] for r in again["vqa"]] == [r["vqa_id"] for r in out["vqa"]], "ids are deterministic"


def test_location_answer_is_the_path_and_disorders_become_labels(tmp_path):
    loc = _write(tmp_path / "train_vqa_location.csv", "Volumename,Anatomy,Abnormality\n"
                 'train_1_a_1.nii.gz,lung/lung/right lung,"ground glass areas, nodules"\n')
    out, _ = _read(loc, "vqa_location")
    assert out["vqa"][0]["answer"] == "lung/lung/right lung"
    assert out["vqa"][0]["term"] == "ground glass areas, nodules"
    dis = _write(tmp_path / "train_case_disorders.csv", "Volumename,Disorders\n"
                 'train_1_a_1.nii.gz,"emphysema, cholelithiasis"\ntrain_6_a_1.nii.gz,no findings\n')
    out, _ = _read(dis, "case_disorders")
    assert [(r["label"], r["ordinal"], r["kind"]) for r in out["case_labels"]] == [
        ("emphysema", 0, "disorder"), ("cholelithiasis", 1, "disorder")]
    assert [r["answer"] for r in out["vqa"]] == ["emphysema, cholelithiasis", "no findings"]


def test_templates_come_from_the_release_when_it_has_them(tmp_path):
    folder = tmp_path / "dataset" / "qa_templates"
    folder.mkdir(parents=True)
    (folder / "abnormality_template.json").write_text(json.dumps({"abnormality": ["Anything in the {region}?"]}))
    templates = load_templates(tmp_path)
    assert templates["abnormality"] == ["Anything in the {region}?"]
    assert len(templates["presence"]) > 10, "the other kinds fall back to the shipped copy"
    path = _write(tmp_path / "train_vqa_abnormality.csv", "Volumename,Anatomy,Abnormality\n"
                  "train_1_a_1.nii.gz,lung/lung/left lung,nodule\n")
    out, _ = _read(path, "vqa_abnormality", templates)
    assert out["vqa"][0]["question"] == "Anything in the left lung?"


def test_missing_column_is_one_error_for_the_file(tmp_path):
    path = _write(tmp_path / "train_vqa_presence.csv", "Volumename,Finding,Presence\ntrain_1_a_1.nii.gz,x,Yes.\n")
    out, errors = _read(path, "vqa_presence")
    assert out == {}
    assert len(errors) == 1 and errors[0]["location"] == "header" and "'Anatomy'" in errors[0]["error"]
    assert errors[0]["file"] == str(path)


def test_bad_rows_are_errors_naming_the_line_and_the_rest_is_read(tmp_path):
    body = ("Volumename,Anatomy,Abnormality\n"
            "train_1_a_1.nii.gz,lung/lung/left lung,nodule\n"
            "train_1_a_1.nii.gz,lung/lung/left kidney lobe,nodule\n"  # unknown path
            "train_2_a_1.nii.gz,lung,\"multi\nline\"\n"  # a quoted newline: the next row is on line 6
            "train_2_a_1.nii.gz,lung,caf\xe9\n"  # Latin-1, not UTF-8
            "train_3_a_1.nii.gz,lung\n"  # too few fields
            "train_4_a_1.nii.gz,,nodule\n"  # a VQA row with no path
            "valid_5_a_1.nii.gz,heart,pericardial effusion\n")  # a validation volume in a train file
    path = _write(tmp_path / "train_vqa_abnormality.csv", body.encode("latin-1"))
    out, errors = _read(path, "vqa_abnormality")
    by_line = {e["location"]: e for e in errors}
    assert set(by_line) == {"line 3", "line 6", "line 7", "line 8", "line 9"}
    assert "unknown anatomy region" in by_line["line 3"]["error"]
    assert "not valid UTF-8" in by_line["line 6"]["error"] and by_line["line 6"]["case_id"] == "train_2_a_1.nii.gz"
    assert "2 fields" in by_line["line 7"]["error"]
    assert "empty Anatomy" in by_line["line 8"]["error"]
    assert "kept under its own split" in by_line["line 9"]["error"]
    assert [r["case_id"] for r in out["vqa"]] == ["train_1_a_1.nii.gz", "train_2_a_1.nii.gz", "valid_5_a_1.nii.gz"]
    assert out["vqa"][1]["answer"] == "multi\nline"


def test_duplicate_volumename_in_case_disorders(tmp_path):
    path = _write(tmp_path / "validation_case_disorders.csv", "Volumename,Disorders\n"
                  "valid_1_a_1.nii.gz,emphysema\nvalid_2_a_1.nii.gz,no findings\nvalid_1_a_1.nii.gz,atelectasis\n")
    out, errors = _read(path, "case_disorders")
    assert [r["answer"] for r in out["vqa"]] == ["emphysema", "no findings"]
    assert len(errors) == 1 and errors[0]["location"] == "line 4" and "duplicate Volumename" in errors[0]["error"]
    assert "validation_case_disorders.csv:2" in errors[0]["error"], "the message names the first row"


def test_a_build_takes_the_split_from_the_file_name_and_hashes_the_csvs(tmp_path):
    import pyarrow.parquet as pq

    from ingest.runner import build
    from ingest.sources.radgenome import RadGenomeSource
    from warehouse.store.snapshot import open_snapshot

    folder = tmp_path / "release" / "dataset" / "radgenome_files"
    folder.mkdir(parents=True)
    path = _write(folder / "validation_vqa_abnormality.csv", "Volumename,Anatomy,Abnormality\n"
                  "scan_0042.nii.gz,heart,cardiomegaly\nvalid_3_a_1.nii.gz,heart,no findings\n")
    build(RadGenomeSource(tmp_path / "release"), tmp_path / "wh", runner="local", progress=False)
    snap = open_snapshot(tmp_path / "wh")
    cases = {c["case_id"]: c for c in pq.read_table(snap.table_path("cases")).to_pylist()}
    assert cases["scan_0042.nii.gz"]["split"] == "validation" and cases["scan_0042.nii.gz"]["patient_id"] is None
    assert (cases["valid_3_a_1.nii.gz"]["split"], cases["valid_3_a_1.nii.gz"]["patient_id"]) == ("validation",
                                                                                                 "valid_3")
    assert [i["path"] for i in snap.manifest["inputs"]] == [str(path.resolve())]
