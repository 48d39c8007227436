"""Bad input never corrupts (issue #14): a corpus of malformed inputs through the real ingest entry points.

Each input is written into one of a few builds (`GROUPS`) beside good cases: through the CLI
(``radgenome ingest radgenome``, ``radgenome ingest folder``) or `ingest.runner.build`. Every
input is its own test: its `ingest_errors` row (stage, file, line or member, a phrase of the
message), or, for a benign variant (a BOM, CRLF), that its rows were read. Per build: every
error row is one the corpus expects, and the untouched control case's rows are identical to
those of a clean build of the same inputs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from ingest.sources.folder import FolderSource
from ingest.sources.radgenome import RadGenomeSource
from ingest.sources.volume_names import parse
from tests.fixtures.folder_data import write_dicom_series
from tests.fixtures.hostile_data import (
    AFFINE,
    Member,
    append_line,
    copy_tree,
    csv_line,
    ct,
    fsname,
    mask,
    nifti,
    read_tar,
    tar_gz,
)
from tests.fixtures.release import write_release
from warehouse.cli import main
from warehouse.store.snapshot import open_snapshot

ANY = object()
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR AS")  # the DICOM age input
TABLES = ("cases", "reports", "sentences", "findings", "vqa", "case_labels", "region_stats", "ingest_errors")
A, R2, B, C = "train_4484_a_1.nii.gz", "train_4484_a_2.nii.gz", "train_4485_a_1.nii.gz", "train_4486_a_1.nii.gz"


@dataclass
class Row:
    """An expected `ingest_errors` row; `check` looks at the build's tables too."""

    stage: str
    phrase: str
    file: str | Path | None = None
    location: object = ANY
    case_id: object = ANY
    check: Callable[[Result], None] | None = None

    def matches(self, e: dict) -> bool:
        return (e["stage"] == self.stage and self.phrase in e["error"]
                and (self.file is None or e["file"] == str(self.file))
                and (self.location is ANY or e["location"] == self.location)
                and (self.case_id is ANY or e["case_id"] == self.case_id))


@dataclass
class Accepted:
    """A benign variant: no error row of its own; `check` says its rows were read."""

    check: Callable[[Result], None]


@dataclass
class Result:
    tables: dict[str, list[dict]]
    ctx: Ctx | FolderCtx

    @property
    def errors(self) -> list[dict]:
        return self.tables["ingest_errors"]

    def rows(self, table: str, case_id: str) -> list[dict]:
        return [r for r in self.tables[table] if r["case_id"] == case_id]

    def case(self, case_id: str) -> dict:
        [row] = self.rows("cases", case_id)
        return row


Outcome = Row | Accepted | list[Row]
INPUTS: dict[str, dict[str, Callable[[Ctx], Outcome]]] = {}


def hostile(group: str, name: str):
    def register(fn: Callable[[Ctx], Outcome]) -> Callable[[Ctx], Outcome]:
        assert name not in INPUTS.setdefault(group, {}), name
        INPUTS[group][name] = fn
        return fn
    return register


# -- the builds ----------------------------------------------------------------------------------
@dataclass
class Ctx:
    """One build's inputs while the corpus writes into them."""

    root: Path
    base: Base
    archive: dict[str, list[Member]] = field(default_factory=dict)  # case folder -> extra region members
    loose: list[Member] = field(default_factory=list)  # region members outside any good case
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    n: int = 5000

    @property
    def rg(self) -> Path:
        return self.root / "in/radgenome/dataset"

    @property
    def ct(self) -> Path:
        return self.root / "in/ct_rate/dataset"

    @property
    def files(self) -> Path:
        return self.rg / "radgenome_files"

    @property
    def meta(self) -> Path:
        return self.ct / "metadata/train_metadata.csv"

    def new_case(self) -> str:
        self.n += 1
        return f"train_{self.n}_a_1.nii.gz"

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.files / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def meta_row(self, case_id: str | None = None, like: str = C, **changes: str) -> tuple[str, int]:
        """A metadata row for a new case (a copy of `like`'s with `changes`); (case, line)."""
        case_id = case_id or self.new_case()
        values = dict(self.base.meta[like], VolumeName=case_id, **changes)
        return case_id, append_line(self.meta, csv_line(list(values.values())))

    def image(self, data: bytes, case_id: str | None = None, suffix: str = ".nii.gz") -> tuple[str, Path]:
        """A RadGenome preprocessed image for a new case."""
        case_id = case_id or self.new_case()
        vol = parse(case_id)
        path = self.rg / vol.radgenome_image_path()
        path = path.with_name(vol.stem + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return case_id, path

    def ct_rate_volume(self, meta: dict[str, str] | None) -> tuple[str, Path, int | None]:
        """A copy of R2's bare CT-RATE volume as a new case, with R2's metadata row changed (None: no row)."""
        case_id = self.new_case()
        path = self.ct / parse(case_id).ct_rate_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ct / parse(R2).ct_rate_path(), path)
        return case_id, path, None if meta is None else self.meta_row(case_id, like=R2, **meta)[1]

    def finish(self) -> None:
        """Write the region archive with the corpus's members: each case's right after its good ones."""
        if not self.archive and not self.loose:
            return
        path, by_folder = self.rg / "train_region_mask.tar.gz", {}
        for m in read_tar(path):
            by_folder.setdefault(m.name.rsplit("/", 1)[0], []).append(m)
        out = list(self.loose)
        for folder in [*by_folder, *(f for f in self.archive if f not in by_folder)]:
            out += by_folder.get(folder, []) + self.archive.get(folder, [])
        path.write_bytes(tar_gz(out))


@dataclass
class Base:
    """The clean miniature release, written once, and what its cases look like."""

    root: Path
    meta: dict[str, dict[str, str]]
    grid: dict[str, tuple[tuple[int, ...], np.ndarray]]
    hu: dict[str, np.ndarray]
    vqa_rows: int


def _tables(root: Path) -> dict[str, list[dict]]:
    snap = open_snapshot(root)
    return {t: pq.read_table(snap.table_path(t)).to_pylist() for t in TABLES}


def _cli(*args: str | Path) -> None:
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    assert done.value.code == 0


class Lab:
    """Builds each group once, when a test first asks for it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.results, self.baselines = tmp, {}, {}
        fx = write_release(tmp / "base/in", n=4, seed=1)
        with open(fx.ct_rate / "dataset/metadata/train_metadata.csv", newline="") as f:
            meta = {r["VolumeName"]: r for r in csv.DictReader(f)}
        grid, hu = {}, {}
        for case in (A, B, C):
            img = nib.load(fx.radgenome / "dataset" / parse(case).radgenome_image_path())
            grid[case], hu[case] = (img.shape, img.affine), np.asanyarray(img.dataobj)
        vqa = sum(n for rel, n in fx.rows.items() if "_vqa_" in rel or "case_disorders" in rel)
        self.base = Base(tmp / "base", meta, grid, hu, vqa)

    def result(self, group: str) -> Result:
        if group not in self.results:
            self.results[group] = GROUPS[group](self, self.tmp / group)
        return self.results[group]

    def baseline(self, mode: str) -> dict[str, list[dict]]:
        if mode not in self.baselines:
            root = self.tmp / f"baseline-{mode}"
            if mode.startswith("release"):
                build(RadGenomeSource(self.base.root / "in/radgenome", self.base.root / "in/ct_rate",
                                      text_stages=mode == "release-text", workers=1), root, runner="local",
                      progress=False)
            else:
                images, masks, reports = _folder_inputs(root / "in")
                build(FolderSource(images, reports, [f"import:{masks}"]), root / "wh", runner="local", progress=False)
                root = root / "wh"
            self.baselines[mode] = _tables(root)
        return self.baselines[mode]


def _release_group(group: str, *, cli: bool) -> Callable[[Lab, Path], Result]:
    def run(lab: Lab, root: Path) -> Result:
        ctx = Ctx(root, lab.base)
        copy_tree(lab.base.root / "in", root / "in")
        ctx.outcomes = {name: fn(ctx) for name, fn in INPUTS[group].items()}
        ctx.finish()
        if cli:
            _cli("ingest", "radgenome", "--release", ctx.rg.parent, "--ct-rate", ctx.ct.parent, "-w", root / "wh",
                 "--runner", "local", "--no-progress", "--workers", "1")
        else:
            build(RadGenomeSource(ctx.rg.parent, ctx.ct.parent, text_stages=False), root / "wh", runner="local",
                  progress=False)
        return Result(_tables(root / "wh"), ctx)
    return run


# -- CSVs of the release (the CLI, with the text stages) -------------------------------------------
def _vqa_answers(res: Result, case_id: str) -> list[str]:
    return [r["answer"] for r in res.rows("vqa", case_id)]


def _vqa_terms(res: Result, case_id: str) -> list[str]:
    return [r["term"] for r in res.rows("vqa", case_id)]


HEADERS = {"size": "Volumename,Anatomy,Abnormality,Size", "abnormality": "Volumename,Anatomy,Abnormality",
           "presence": "Volumename,Anatomy,Finding,Presence"}
WHOLE_FILES = {  # name: (bytes of a train_<name>_vqa_size.csv, stage phrase)
    "utf16 header lacking a column": ("Volumename,Anatomy,Gr\xf6\xdfe\nX,lung,x\n".encode("utf-16"), "UTF-16 text"),
    "utf16 without a BOM": ("Volumename,Anatomy,Abnormality,Size\n".encode("utf-16-le"), "holds NUL bytes"),
    "latin1 header": ("Volumename,Anatomy,Abnormality,Gr\xf6\xdfe\n".encode("latin-1"), "not UTF-8 text (Volumename"),
    "missing column": (b"Volumename,Anatomy,Abnormality\n", "missing column(s) 'Size'"),
    "empty file": (b"", "the file is empty"),
    "whitespace-only file": (b"   \n\n", "missing column(s) 'Volumename'"),
    "semicolons": (b"Volumename;Anatomy;Abnormality;Size\nX;lung;n;5 mm\n", "seems separated by ';'"),
    "tabs": (b"Volumename\tAnatomy\tAbnormality\tSize\n", "seems separated by '\\t'"),
    "a column twice": (b"Volumename,Anatomy,Abnormality,Size,Size\n", "appear more than once"),
    "huge header line": (b"x" * 2_000_000 + b"\n", "(1 columns)"),
    "binary garbage": (bytes(range(256)) * 8, "NUL bytes"),
}
for _name, (_data, _phrase) in WHOLE_FILES.items():
    def _whole(ctx: Ctx, data=_data, phrase=_phrase, name=_name) -> Row:
        path = ctx.file(f"train_{name.replace(' ', '')}_vqa_size.csv", data)
        return Row("read", phrase, path, "header", None,
                   check=lambda res: [len(e["error"]) < 400 for e in res.errors if e["file"] == str(path)] == [True])
    hostile("release_csv", _name)(_whole)

ACCEPTED_FILES = {  # name: a size file (header, term) -> bytes; its rows' term is made from the name
    "utf-8 BOM": lambda h, a: b"\xef\xbb\xbf" + f"{h}\n{A},lung,{a},5 mm\n".encode(),
    "CRLF line ends": lambda h, a: f"{h}\r\n{A},lung,{a},5 mm\r\n".encode(),
    "CR line ends": lambda h, a: f"{h}\r{A},lung,{a},5 mm\r".encode(),
    "blank lines": lambda h, a: f"{h}\n\n{A},lung,{a},5 mm\n\n\n".encode(),
    "spaces around header names": lambda h, a: f" {h.replace(',', ' , ')} \n{A},lung,{a},5 mm\n".encode(),
    "no final newline": lambda h, a: f"{h}\n{A},lung,{a},5 mm".encode(),
    "duplicate VQA rows (as released)": lambda h, a: f"{h}\n{A},lung,{a},5 mm\n{A},lung,{a},5 mm\n".encode(),
}
for _name, _body in ACCEPTED_FILES.items():
    def _accepted(ctx: Ctx, body=_body, name=_name) -> Accepted:
        term = "hostile " + name.replace("-", " ")
        ctx.n += 1
        ctx.file(f"train_ok{ctx.n}_vqa_size.csv", body(HEADERS["size"], term))

        def check(res: Result) -> None:
            want = 2 if name.startswith("duplicate") else 1
            assert _vqa_terms(res, A).count(term) == want, (name, term)
        return Accepted(check)
    hostile("release_csv", f"accepted: {_name}")(_accepted)

BAD_ROWS = {  # name: (file kind, line, stage phrase, case_id of the row)
    "bad UTF-8 in a row": ("abnormality", f"{A},lung,caf\xe9".encode("latin-1"), "not valid UTF-8", A),
    "too few fields": ("abnormality", f"{A},lung", "2 fields where the header has 3", A),
    "too many fields": ("abnormality", f"{A},lung,a,b", "4 fields where the header has 3", A),
    "unknown anatomy path": ("abnormality", f"{A},lung/lung/left lung middle lobe,nodule", "unknown anatomy", A),
    "empty Volumename": ("abnormality", ",lung,nodule", "an empty case name", None),
    "Volumename ../../etc/passwd": ("abnormality", "../../etc/passwd,lung,nodule", "is a path", None),
    "Volumename /abs/train_9_a_1.nii.gz": ("abnormality", "/abs/train_9_a_1.nii.gz,lung,x", "is a path", None),
    "Volumename a/b\\c;rm -rf.nii.gz": ("abnormality", "a/b\\c;rm -rf.nii.gz,lung,x", "is a path", None),
    "Volumename with ;": ("abnormality", "train_9;drop.nii.gz,lung,x", "holds ';'", None),
    "Volumename with a quote": ("abnormality", "train_9'.nii.gz,lung,x", "holds \"'\"", None),
    "Volumename with NUL": ("abnormality", f"{A}\x00,lung,x", "control characters", None),
    "empty Anatomy in VQA": ("abnormality", f"{A},,nodule", "empty Anatomy", A),
    "duplicate case disorders": ("disorders", f"{A},emphysema", "duplicate Volumename", A),
    "whitespace-only sentence": ("region_report", f'{A},lung,"   "', "empty Sentence", A),
    "a validation volume in a train file": ("abnormality", "valid_3_a_1.nii.gz,heart,x", "kept under its own", ANY),
    "Size -5 mm": ("size", f"{A},lung,nodule,-5 mm", "is negative", A),
    "Size of 400 digits": ("size", f"{A},lung,nodule,{'9' * 400} mm", "not a size above 0 and below 1000", A),
    "Size 0 mm": ("size", f"{A},lung,nodule,0 mm", "not a size above 0 and below 1000", A),
    "Size in words": ("size", f"{A},lung,nodule,large", "not a size in mm or cm", A),
}
_FILES = {"abnormality": "train_vqa_abnormality.csv", "disorders": "train_case_disorders.csv",
          "region_report": "train_region_report.csv", "size": "train_vqa_size.csv"}
for _name, (_kind, _line, _phrase, _case) in BAD_ROWS.items():
    def _bad_row(ctx: Ctx, kind=_kind, line=_line, phrase=_phrase, case=_case) -> Row:
        path = ctx.files / _FILES[kind]
        return Row("read", phrase, path, f"line {append_line(path, line)}", case)
    hostile("release_csv", _name)(_bad_row)


@hostile("release_csv", "NUL byte in a term")
def _nul_term(ctx: Ctx) -> Row:
    path = ctx.files / "train_vqa_presence.csv"
    line = append_line(path, f"{A},lung,hostile\x00term,Yes.")

    def check(res: Result) -> None:
        terms = [r["term"] for r in res.tables["vqa"]]
        assert "hostileterm" in terms and not any("\x00" in (t or "") for t in terms)
    return Row("read", "held control characters (\\x00); they were removed", path, f"line {line}", A, check)


@hostile("release_csv", "escape character in an answer")
def _esc_answer(ctx: Ctx) -> Row:
    path = ctx.files / "train_vqa_abnormality.csv"
    line = append_line(path, f"{A},lung,hostile\x1b[31mred")
    return Row("read", "(\\x1b)", path, f"line {line}", A,
               check=lambda res: "hostile[31mred" in _vqa_answers(res, A))


@hostile("release_csv", "unclosed quote mid-file")
def _unclosed(ctx: Ctx) -> Row:
    rows = [f"{A},lung,hostile q{i}" for i in range(1, 8)]
    rows[2] = f'{A},lung,"hostile q3'
    path = ctx.file("train_quote_vqa_abnormality.csv", "\n".join([HEADERS["abnormality"], *rows]) + "\n")

    def check(res: Result) -> None:
        got = sorted(a for a in _vqa_answers(res, A) if a.startswith("hostile q"))
        assert got == [f"hostile q{i}" for i in (1, 2, 4, 5, 6, 7)], got
    return Row("read", "an unclosed quote (\") runs on over line(s) 5..", path, "line 4", A, check)


@hostile("release_csv", "unclosed quote on the last line")
def _unclosed_end(ctx: Ctx) -> Row:
    path = ctx.file("train_quoteend_vqa_abnormality.csv", f'{HEADERS["abnormality"]}\n{A},lung,hostile end1\n'
                                                          f'{A},lung,"hostile end2\n')
    return Row("read", "runs to the end of the file", path, "line 3", A,
               check=lambda res: "hostile end1" in _vqa_answers(res, A))


@hostile("release_csv", "accepted: a quoted newline")
def _quoted_newline(ctx: Ctx) -> Accepted:
    ctx.file("train_newline_vqa_abnormality.csv", f'{HEADERS["abnormality"]}\n{A},lung,"hostile\nnewline"\n')
    return Accepted(lambda res: "hostile\nnewline" in _vqa_answers(res, A))


# CT-RATE metadata rows for new cases without a volume: (changes, phrase, the cases column left empty)
METADATA = {
    "PatientAge 40000Y": ({"PatientAge": "40000Y"}, "is over 130 years", "age"),
    "PatientAge abcY": ({"PatientAge": "abcY"}, "is not an age", "age"),
    "PatientAge -5Y": ({"PatientAge": "-5Y"}, "is not an age", "age"),
    "PatientAge 200Y": ({"PatientAge": "200Y"}, "is over 130 years", "age"),
    "PatientAge 99999999999Y": ({"PatientAge": "99999999999Y"}, "is over 130 years", "age"),
    "Rows 1e30": ({"Rows": "1e30"}, "Rows '1e30' is not a whole number", "shape_y"),
    "NumberofSlices -5": ({"NumberofSlices": "-5"}, "NumberofSlices '-5' is not a whole number", "shape_z"),
    "Columns 0": ({"Columns": "0"}, "Columns '0' is not a whole number", "shape_x"),
    "Columns 512.5": ({"Columns": "512.5"}, "Columns '512.5' is not a whole number", "shape_x"),
    "Rows abc": ({"Rows": "abc"}, "Rows 'abc' is not a whole number", "shape_y"),
    "NumberofSlices 99999": ({"NumberofSlices": "99999"}, "from 1 to 9,999", "shape_z"),
    "Rows nan": ({"Rows": "nan"}, "Rows 'nan' is not a whole number", "shape_y"),
    "XYSpacing [nan, nan]": ({"XYSpacing": "[nan, nan]"}, "not a positive number below 50 mm", "spacing_x"),
    "XYSpacing [inf, inf]": ({"XYSpacing": "[inf, inf]"}, "not a positive number below 50 mm", "spacing_x"),
    "ZSpacing -1": ({"ZSpacing": "-1"}, "not a positive number below 50 mm", "spacing_z"),
    "ZSpacing 100": ({"ZSpacing": "100"}, "not a positive number below 50 mm", "spacing_z"),
    "XYSpacing one value": ({"XYSpacing": "[0.7]"}, "not a positive number below 50 mm", "spacing_y"),
    "RescaleSlope 0": ({"RescaleSlope": "0"}, "RescaleSlope '0' is not a positive number", None),
    "RescaleSlope nan": ({"RescaleSlope": "nan"}, "RescaleSlope 'nan' is not a positive number", None),
    "RescaleIntercept abc": ({"RescaleIntercept": "abc"}, "RescaleIntercept 'abc' is not a number", None),
    "RescaleIntercept 1e9": ({"RescaleIntercept": "1e9"}, "RescaleIntercept '1e9' is not a number", None),
}
for _name, (_changes, _phrase, _column) in METADATA.items():
    def _meta(ctx: Ctx, changes=_changes, phrase=_phrase, column=_column) -> Row:
        case, line = ctx.meta_row(**changes)

        def check(res: Result) -> None:
            row = res.case(case)
            assert column is None or row[column] is None, row
            assert all(row[c] is None or 0 < row[c] < 10_000 for c in ("shape_x", "shape_y", "shape_z", "age"))
        return Row("metadata", phrase, ctx.meta, f"line {line}", case, check)
    hostile("release_csv", f"metadata {_name}")(_meta)


@hostile("release_csv", "accepted: metadata PatientAge 018M")
def _months(ctx: Ctx) -> Accepted:
    case, _ = ctx.meta_row(PatientAge="018M")
    return Accepted(lambda res: res.case(case)["age"] == 1)


@hostile("release_csv", "duplicate metadata VolumeName")
def _dup_meta(ctx: Ctx) -> Row:
    case, _ = ctx.meta_row(PatientAge="041Y")
    _, line = ctx.meta_row(case, PatientAge="042Y")
    return Row("metadata", "duplicate VolumeName", ctx.meta, f"line {line}", case,
               check=lambda res: res.case(case)["age"] == 41)


@hostile("release_csv", "metadata VolumeName that is a path")
def _meta_path(ctx: Ctx) -> Row:
    _, line = ctx.meta_row("../train_9_a_1.nii.gz")
    return Row("metadata", "is a path", ctx.meta, f"line {line}", None)


def _ct_rate_csv(ctx: Ctx, folder: str) -> Path:
    return next((ctx.ct / folder).glob("train_*.csv"))


@hostile("release_csv", "label value 2")
def _label_2(ctx: Ctx) -> Row:
    path, case = _ct_rate_csv(ctx, "multi_abnormality_labels"), ctx.new_case()
    line = append_line(path, ",".join([case, "2"] + ["0"] * 17))
    return Row("labels", "must be 0 or 1", path, f"line {line}", case)


@hostile("release_csv", "label value nan")
def _label_nan(ctx: Ctx) -> Row:
    path, case = _ct_rate_csv(ctx, "multi_abnormality_labels"), ctx.new_case()
    line = append_line(path, ",".join([case] + ["0"] * 17 + ["nan"]))
    return Row("labels", "must be 0 or 1", path, f"line {line}", case)


@hostile("release_csv", "duplicate labels row")
def _label_dup(ctx: Ctx) -> Row:
    path = _ct_rate_csv(ctx, "multi_abnormality_labels")
    line = append_line(path, ",".join([A] + ["1"] * 18))
    return Row("labels", "duplicate VolumeName", path, f"line {line}", A)


@hostile("release_csv", "report of whitespace only")
def _report_blank(ctx: Ctx) -> list[Row]:
    path, case = _ct_rate_csv(ctx, "radiology_text_reports"), ctx.new_case()
    line = append_line(path, csv_line([case, "Not given.", "Not given.", "   ", "\t"]))
    return [Row("report", "hold nothing but whitespace", path, f"line {line}", case,
                check=lambda res: res.rows("reports", case)[0]["findings"] is None),
            Row("structure", "empty findings", None, None, case)]  # the text stages then have nothing to read


@hostile("release_csv", "duplicate report")
def _report_dup(ctx: Ctx) -> Row:
    path = _ct_rate_csv(ctx, "radiology_text_reports")
    line = append_line(path, csv_line([A, "x", "x", "Another findings text.", "x"]))
    return Row("report", "duplicate VolumeName", path, f"line {line}", A)


@hostile("release_csv", "control characters in a report")
def _report_ctrl(ctx: Ctx) -> Row:
    path, case = _ct_rate_csv(ctx, "radiology_text_reports"), ctx.new_case()
    line = append_line(path, csv_line([case, "Not given.", "Not given.", "Heart\x00 size is normal.\x07", "x"]))
    return Row("report", "(\\x00, \\x07); they were removed", path, f"line {line}", case,
               check=lambda res: res.rows("reports", case)[0]["findings"] == "Heart size is normal.")


# -- images, volumes and masks of the release (`build`, no text stages) ------------------------------
def _half(data: bytes) -> bytes:
    return data[:len(data) // 2]


IMAGES = {  # name: (bytes of a RadGenome preprocessed image of a new case, phrase)
    "truncated gzip image": (lambda: _half(nifti(ct())), "cannot read NIfTI"),
    "empty image file": (lambda: b"", "cannot read NIfTI"),
    "text named .nii.gz": (lambda: b"not a nifti file at all\n" * 40, "cannot read NIfTI"),
    "2-D image": (lambda: nifti(ct()[:, :, 0]), "expected a 3-D volume, got 2-D"),
    "4-D image": (lambda: nifti(np.stack([ct(), ct()], axis=-1)), "expected a 3-D volume, got 4-D"),
    "NaN voxels": (lambda: nifti(np.where(ct() > 0, np.nan, ct()).astype(np.float32)), "NaN or infinite"),
    "+inf voxels": (lambda: nifti(np.where(ct() > 0, np.inf, ct()).astype(np.float32)), "NaN or infinite"),
    "-inf voxels": (lambda: nifti(np.where(ct() > 0, -np.inf, ct()).astype(np.float32)), "NaN or infinite"),
    "one value everywhere": (lambda: nifti(np.full((16, 12, 6), -500, np.int16)), "the same value (-500 HU)"),
    "values beyond HU": (lambda: nifti(ct().astype(np.float32) * 1000), "lie outside the possible"),
    "int32 values beyond int16": (lambda: nifti(ct().astype(np.int32) * 100), "lie outside the possible"),
    "raw values, no air": (lambda: nifti(ct() + 1024), "contain no air"),
    "padding only": (lambda: nifti(np.full((16, 12, 6), -2048, np.int16) + (np.arange(6) % 2).astype(np.int16)),
                     "every voxel is -1024 HU or below"),
    "singular sform": (lambda: nifti(ct(), sform=np.diag([1.0, 1.0, 0.0, 1.0])), "affine is singular"),
    "collinear sform axes": (lambda: nifti(ct(), sform=np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0],
                                                                 [0, 0, 0, 1]])), "affine is singular"),
    "NaN in the sform": (lambda: nifti(ct(), sform=np.diag([1.0, np.nan, 2.0, 1.0])), "NaN or infinite values"),
    "spacing of 100 mm": (lambda: nifti(ct(), np.diag([100.0, 1.0, 2.0, 1.0])), "outside 0..50 mm"),
    "an axis of 20,000 voxels": (lambda: nifti(np.full((20_000, 2, 2), -1000, np.int16)), "10,000+ voxels"),
    "header promises more voxels": (lambda: nifti(ct(), dims=(160, 120, 60)), "cannot read NIfTI"),
}
for _name, (_make, _phrase) in IMAGES.items():
    def _img(ctx: Ctx, make=_make, phrase=_phrase) -> Row:
        case, path = ctx.image(make())

        def check(res: Result) -> None:
            row = res.case(case)
            assert not row["has_image"] and row["shape_x"] is None, row
        return Row("image", phrase, path, None, case, check)
    hostile("release_arrays", _name)(_img)


@hostile("release_arrays", "truncated uncompressed .nii")
def _nii_cut(ctx: Ctx) -> Row:
    case, path = ctx.image(nifti(ct(), gz=False)[:600], suffix=".nii")
    return Row("image", "cannot read NIfTI", path, None, case)


@hostile("release_arrays", "singular sform of a case with masks")
def _singular_masked(ctx: Ctx) -> Row:
    path = ctx.rg / parse(B).radgenome_image_path()
    path.write_bytes(nifti(ctx.base.hu[B], sform=np.zeros((4, 4))))

    def check(res: Result) -> None:
        row = res.case(B)
        assert row["has_masks"] and not row["has_image"] and len(res.rows("region_stats", B)) > 10
        assert res.rows("vqa", B), "its VQA rows keep their case"
    return Row("image", "affine is singular", path, None, B, check)


@hostile("release_arrays", "a second file for a volume")
def _second(ctx: Ctx) -> Row:
    case, _ = ctx.image(nifti(ct()))
    path = ctx.rg / "train_preprocessed/zz_copy" / case
    path.parent.mkdir(parents=True)
    path.write_bytes(nifti(ct()))
    return Row("image", "a second file for the volume", path, None, case,
               check=lambda res: res.case(case)["has_image"])


@hostile("release_arrays", "image named almost like a volume")
def _misnamed(ctx: Ctx) -> Row:
    path = ctx.rg / "train_preprocessed/train_77/train_77a/train_77_a.nii.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(nifti(ct()))
    return Row("image", "not a CT-RATE volume name", path, None, None)


@hostile("release_arrays", "CT-RATE volume with RescaleSlope 0")
def _slope0(ctx: Ctx) -> list[Row]:
    case, path, line = ctx.ct_rate_volume({"RescaleSlope": "0"})
    return [Row("image", "RescaleSlope '0' / RescaleIntercept '-1024' is missing or not a usable number", path,
                None, case, check=lambda res: not res.case(case)["has_image"]),
            Row("metadata", "RescaleSlope '0' is not a positive number", ctx.meta, f"line {line}", case)]


@hostile("release_arrays", "CT-RATE volume with RescaleIntercept abc")
def _intercept_abc(ctx: Ctx) -> list[Row]:
    case, path, line = ctx.ct_rate_volume({"RescaleIntercept": "abc"})

    def check(res: Result) -> None:
        [row] = [e for e in res.errors if e["file"] == str(path)]
        assert "--ct-rate" not in row["error"] and "fix the volume's row in the metadata CSV" in row["error"]
    return [Row("image", "RescaleIntercept 'abc' is missing or not a usable number", path, None, case, check),
            Row("metadata", "RescaleIntercept 'abc' is not a number", ctx.meta, f"line {line}", case)]


@hostile("release_arrays", "CT-RATE volume with RescaleSlope 1000")
def _slope_big(ctx: Ctx) -> Row:
    case, path, _ = ctx.ct_rate_volume({"RescaleSlope": "1000"})
    return Row("image", "lie outside the possible", path, None, case)


@hostile("release_arrays", "CT-RATE volume without a metadata row")
def _no_meta(ctx: Ctx) -> Row:
    case, path, _ = ctx.ct_rate_volume(None)
    return Row("image", "has no metadata row", path, None, case)


@hostile("release_arrays", "CT-RATE volume named almost like a volume")
def _ct_misnamed(ctx: Ctx) -> Row:
    path = ctx.ct / "train/train_78/train_78_a/train_78_a_1 (copy).nii.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    return Row("image", "not a CT-RATE volume name", path, None, None)


def _seg(case: str) -> str:
    return f"train_region_mask/seg_{parse(case).stem}"


MASKS = {  # name: (structure, bytes maker on A's grid (shape, affine), phrase)
    "int64 mask of -2 and 5": ("spleen", lambda s, a: nifti(mask(s, np.int64, 5, -2), a), "it holds -2, 5 (int64)"),
    "float mask, NaN background": ("liver", lambda s, a: nifti(mask(s, np.float64, 1.0, np.nan), a), "holds nan"),
    "uint8 mask of 255": ("stomach", lambda s, a: nifti(mask(s, np.uint8, 255), a), "holds 255 (uint8)"),
    "probability mask": ("pancreas", lambda s, a: nifti(mask(s, np.float32, 0.5), a), "holds 0.5 (float32)"),
    "mask on another shape": ("aorta", lambda s, a: nifti(mask((10, 10, 10)), a), "does not match the image grid"),
    "mask on another affine": ("sternum", lambda s, a: nifti(mask(s), a * 2), "(same shape, different affine)"),
    "mask name not in the anatomy": ("notaregion", lambda s, a: nifti(mask(s), a), "unknown anatomy region"),
    "truncated mask": ("duodenum", lambda s, a: _half(nifti(mask(s), a)), "cannot read the mask"),
    "text member": ("colon", lambda s, a: b"hello" * 100, "cannot read the mask"),
    "empty member": ("trachea", lambda s, a: b"", "cannot read the mask"),
    "2-D mask": ("left kidney", lambda s, a: nifti(mask(s)[:, :, 0], a), "expected a 3-D mask"),
    "4-D mask": ("right kidney", lambda s, a: nifti(np.stack([mask(s)] * 2, -1), a), "expected a 3-D mask"),
    "mask with a singular affine": ("urinary bladder", lambda s, a: nifti(mask(s), a, sform=np.zeros((4, 4))),
                                    "affine is singular"),
    "a mask twice": ("heart", lambda s, a: nifti(mask(s), a), "a second mask named 'heart'"),
}
for _name, (_structure, _make, _phrase) in MASKS.items():
    def _mask(ctx: Ctx, structure=_structure, make=_make, phrase=_phrase) -> Row:
        name = f"{_seg(A)}/{structure}.nii.gz"
        ctx.archive.setdefault(_seg(A), []).append(Member(name, make(*ctx.base.grid[A])))
        return Row("masks", phrase, ctx.rg / "train_region_mask.tar.gz", name, A)
    hostile("release_arrays", _name)(_mask)


@hostile("release_arrays", "accepted: float 0.0/1.0 mask within tolerance")
def _float_ok(ctx: Ctx) -> Accepted:
    shape, affine = ctx.base.grid[A]
    ctx.archive.setdefault(_seg(A), []).append(
        Member(f"{_seg(A)}/gallbladder.nii.gz", nifti(mask(shape, np.float32, 0.9999, 1e-5), affine)))

    def check(res: Result) -> None:
        from warehouse.core.anatomy import anatomy

        rid = anatomy().resolve("gallbladder").region_id
        [row] = [r for r in res.rows("region_stats", A) if r["region_id"] == rid and r["mask_source"] ==
                 "radgenome-region"]
        assert row["voxels"] == int(mask(shape).sum())
    return Accepted(check)


MEMBERS = {  # name: (member, phrase)
    "member ../evil.nii.gz": (Member("../evil.nii.gz", b"x"), "leaves the archive"),
    "member /etc/evil.nii.gz": (Member("/etc/evil.nii.gz", b"x"), "leaves the archive"),
    "member escaping from a case folder": (Member(f"{_seg(A)}/../../../x.nii.gz", b"x"), "leaves the archive"),
    "symlink member": (Member(f"{_seg(A)}/liver2.nii.gz", kind=tarfile.SYMTYPE, target="/etc/passwd"),
                       "a link or device"),
    "hardlink member": (Member(f"{_seg(A)}/liver3.nii.gz", kind=tarfile.LNKTYPE, target="/etc/shadow"),
                        "a link or device"),
    "fifo member": (Member(f"{_seg(A)}/fifo.nii.gz", kind=tarfile.FIFOTYPE), "a link or device"),
    "member name not UTF-8": (Member(fsname(f"{_seg(A)}/bad\udcff.nii.gz"), b"x"), "not UTF-8 text"),
    "member name with a control character": (Member(f"{_seg(A)}/lu\x01ng.nii.gz", b"x"), "not UTF-8 text"),
    "member outside a seg_ folder": (Member("train_region_mask/lung.nii.gz", b"x"), "not a mask member"),
    "case folder that is no case name": (Member("train_region_mask/seg_bad;x/lung.nii.gz", b"x"), "holds ';'"),
}
for _name, (_member, _phrase) in MEMBERS.items():
    def _member_fn(ctx: Ctx, member=_member, phrase=_phrase) -> Row:
        ctx.loose.append(member)
        where = member.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return Row("masks", phrase, ctx.rg / "train_region_mask.tar.gz",
                   where.replace("\x01", "\\x01"), None)
    hostile("release_arrays", _name)(_member_fn)


@hostile("release_arrays", "a case's members not together")
def _apart(ctx: Ctx) -> Row:
    shape, affine = ctx.base.grid[B]
    ctx.archive.setdefault("zz-after-every-case", []).append(
        Member(f"{_seg(B)}/spleen.nii.gz", nifti(mask(shape), affine)))
    return Row("masks", "not together in the archive", ctx.rg / "train_region_mask.tar.gz",
               f"seg_{B}", B)


V = "valid_1_a_1.nii.gz"


def _valid_case(ctx: Ctx) -> Path:
    """A validation case (A's image) with an extracted anatomy mask folder holding one good mask."""
    folder = ctx.rg / "valid_anatomy_mask" / f"seg_{parse(V).stem}"
    if not folder.is_dir():
        image = ctx.rg / parse(V).radgenome_image_path()
        image.parent.mkdir(parents=True)
        shutil.copyfile(ctx.rg / parse(A).radgenome_image_path(), image)
        folder.mkdir(parents=True)
        (folder / "spleen.nii.gz").write_bytes(nifti(mask(ctx.base.grid[A][0]), ctx.base.grid[A][1]))
    return folder


FOLDER_FILES = {  # name: (path under the valid mask folder, bytes maker, phrase)
    "folder: int64 mask of -2 and 5": ("liver.nii.gz", lambda s, a: nifti(mask(s, np.int64, 5, -2), a), "-2, 5"),
    "folder: mask on another shape": ("aorta.nii.gz", lambda s, a: nifti(mask((9, 9, 9)), a), "does not match"),
    "folder: mask name not in the anatomy": ("xyz.nii.gz", lambda s, a: nifti(mask(s), a), "unknown anatomy"),
    "folder: file name not UTF-8": (fsname("bad\udcff.nii.gz"), lambda s, a: nifti(mask(s), a), "not UTF-8 text"),
    "folder: mask outside a seg_ folder": ("../lung.nii.gz", lambda s, a: nifti(mask(s), a), "outside a seg_"),
    "folder: case folder that is no case name": ("../seg_bad;x/lung.nii.gz", lambda s, a: nifti(mask(s), a),
                                                 "holds ';'"),
}
for _name, (_rel, _make, _phrase) in FOLDER_FILES.items():
    def _folder_fn(ctx: Ctx, rel=_rel, make=_make, phrase=_phrase) -> Row:
        path = Path(os.path.normpath(_valid_case(ctx) / rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make(*ctx.base.grid[A]))
        shown = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return Row("masks", phrase, shown, None, V if "seg_valid" in str(path) else None)
    hostile("release_arrays", _name)(_folder_fn)


@hostile("release_arrays", "folder: link to a mask that does not exist")
def _dangling(ctx: Ctx) -> Row:
    path = _valid_case(ctx) / "stomach.nii.gz"
    path.symlink_to(ctx.root / "nowhere.nii.gz")

    def check(res: Result) -> None:
        assert res.case(V)["has_masks"] and res.case(V)["has_image"], "the good mask of the case is kept"
    return Row("masks", "cannot read the mask", path, None, V, check)


# -- split archives: a missing part, an empty archive, garbage ---------------------------------------
@hostile("release_parts", "missing part _ac")
def _missing_part(ctx: Ctx) -> list[Row]:
    (ctx.rg / "train_anatomy_mask_ac").unlink()

    def check(res: Result) -> None:
        kinds = {(r["case_id"], r["mask_source"]) for r in res.tables["region_stats"]}
        assert {(c, "radgenome-region") for c in (A, B, C)} <= kinds, "the region archive is read whole"
        assert (A, "radgenome") in kinds, "cases in the parts before the gap are kept"
        assert len(res.tables["vqa"]) == res.ctx.base.vqa_rows
    return [Row("masks", "part _ac of train_anatomy_mask is missing (found _aa, _ab, _ad, _ae); only the parts "
                         "before it are read (_aa, _ab)", ctx.rg / "train_anatomy_mask_ac", None, None, check),
            Row("masks", "(part train_anatomy_mask_ac is missing)", ctx.rg / "train_anatomy_mask_aa", ANY, None)]


@hostile("release_parts", "zero-size archive")
def _zero(ctx: Ctx) -> Row:
    (ctx.rg / "valid_region_mask.tar.gz").write_bytes(b"")
    return Row("masks", "the archive file is empty (0 bytes)", ctx.rg / "valid_region_mask.tar.gz", None, None)


@hostile("release_parts", "archive of garbage")
def _garbage(ctx: Ctx) -> Row:
    (ctx.rg / "valid_anatomy_mask.tar.gz").write_bytes(os.urandom(3000))
    return Row("masks", "cannot read the archive", ctx.rg / "valid_anatomy_mask.tar.gz", None, None)


# -- a folder of CTs with import: masks and reports (the CLI) -----------------------------------------
REPORT_HEADER = "VolumeName,ClinicalInformation_EN,Technique_EN,Findings_EN,Impressions_EN"
GOOD_FOLDER_CASES = {"good.nii.gz", "other.nii.gz", "labelled.nii.gz", "nanlabels.nii.gz", "quoted.nii.gz",
                     "dicomage", "nul.nii.gz", "blank.nii.gz"}
GOOD_REPORT = "good.nii.gz,Not given.,Not given.,Bilateral pleural effusion. A 5 mm nodule in the right lung.,x"


def _folder_inputs(root: Path) -> tuple[Path, Path, Path]:
    """images/ with the control CT `good.nii.gz`, masks/good/ with its two masks, reports.csv with its row."""
    images, masks = root / "images", root / "masks"
    (masks / "good").mkdir(parents=True)
    images.mkdir(parents=True)
    (images / "good.nii.gz").write_bytes(nifti(ct()))
    (masks / "good" / "lung.nii.gz").write_bytes(nifti(mask()))
    (masks / "good" / "heart.nii.gz").write_bytes(nifti(mask(inside=1, outside=0)[::-1].copy()))
    (root / "reports.csv").write_text(f"{REPORT_HEADER}\n{GOOD_REPORT}\n")
    return images, masks, root / "reports.csv"


@dataclass
class FolderCtx:
    root: Path
    images: Path
    masks: Path
    reports: Path
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def image(self, name: str, data: bytes) -> tuple[str, Path]:
        path = self.images / name
        path.write_bytes(data)
        return name, path

    def report(self, line: str | bytes) -> int:
        return append_line(self.reports, line)


FOLDER_IMAGES = {  # name: (file name, bytes, phrase, whether the name is refused: no case id on the row)
    "image name not UTF-8": (fsname("bad\udcff.nii.gz"), lambda: nifti(ct()), "not valid UTF-8", True),
    "image name with ;": ("semi;colon.nii.gz", lambda: nifti(ct()), "holds ';'", True),
    "image name with a control character": ("ctrl\x01.nii.gz", lambda: nifti(ct()), "control characters", True),
    "image name starting with a dash": ("-rf.nii.gz", lambda: nifti(ct()), "starts with a dot, dash", True),
    "image name with a quote": ("it's.nii.gz", lambda: nifti(ct()), "holds \"'\"", True),
    "folder: truncated gzip": ("cut.nii.gz", lambda: _half(nifti(ct())), "cannot read NIfTI", False),
    "folder: empty file": ("empty.nii.gz", lambda: b"", "cannot read NIfTI", False),
    "folder: 2-D image": ("flat.nii.gz", lambda: nifti(ct()[:, :, 0]), "got 2-D", False),
    "folder: 4-D image": ("series.nii.gz", lambda: nifti(np.stack([ct(), ct()], -1)), "got 4-D", False),
    "folder: NaN voxels": ("nan.nii.gz", lambda: nifti(np.where(ct() > 0, np.nan, ct()).astype(np.float32)),
                           "NaN or infinite", False),
    "folder: inf voxels": ("inf.nii.gz", lambda: nifti(np.where(ct() > 0, np.inf, ct()).astype(np.float32)),
                           "NaN or infinite", False),
    "folder: singular sform": ("singular.nii.gz", lambda: nifti(ct(), sform=np.zeros((4, 4))), "affine is singular",
                               False),
    "folder: one value everywhere": ("flatvalue.nii.gz", lambda: nifti(np.zeros((16, 12, 6), np.int16)),
                                     "the same value (0 HU)", False),
    "folder: values beyond HU": ("hot.nii.gz", lambda: nifti(ct().astype(np.float64) * 1e4), "outside the possible",
                                 False),
    "folder: spacing of 1000 mm": ("huge.nii.gz", lambda: nifti(ct(), np.diag([1000.0, 1, 1, 1])), "outside 0..50",
                                   False),
    "folder: zero spacing": ("zero.nii.gz", lambda: nifti(ct(), sform=np.diag([0.0, 1, 1, 1])), "affine is singular",
                             False),
}


def _folder_group(lab: Lab, root: Path) -> Result:
    images, masks, reports = _folder_inputs(root / "in")
    ctx = FolderCtx(root, images, masks, reports)
    ctx.outcomes = {name: fn(ctx) for name, fn in INPUTS["folder"].items()}
    _cli("ingest", "folder", "--images", images, "--reports", reports, "-w", root / "wh", "--runner", "local",
         "--no-progress", "--segmenter", f"import:{masks}")
    return Result(_tables(root / "wh"), ctx)


for _name, (_file, _make, _phrase, _refused) in FOLDER_IMAGES.items():
    def _fimg(ctx: FolderCtx, file=_file, make=_make, phrase=_phrase, refused=_refused) -> Row:
        case, path = ctx.image(file, make())
        shown = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return Row("read", phrase, shown.replace("\x01", "\\x01"), None, None if refused else case,
                   check=lambda res: not [r for r in res.tables["cases"] if r["case_id"] not in GOOD_FOLDER_CASES])
    hostile("folder", _name)(_fimg)


@hostile("folder", "link to an image that does not exist")
def _flink(ctx: FolderCtx) -> Row:
    (ctx.images / "gone.nii.gz").symlink_to(ctx.root / "nowhere.nii.gz")
    return Row("read", "a symbolic link to a file that does not exist", ctx.images / "gone.nii.gz", None, None)


@hostile("folder", "DICOM series of one slice")
def _one_slice(ctx: FolderCtx) -> Row:
    folder = write_dicom_series(ct(), AFFINE, ctx.images / "oneslice", skip=(1, 2, 3, 4, 5))
    return Row("read", "a single slice", folder, None, "oneslice")


@hostile("folder", "DICOM RescaleSlope 0")
def _dicom_slope(ctx: FolderCtx) -> Row:
    folder = write_dicom_series(ct(), AFFINE, ctx.images / "dicomslope", RescaleSlope="0")
    return Row("read", "RescaleSlope '0' of IM0000.dcm is not a positive number", folder, None, "dicomslope")


@hostile("folder", "DICOM PatientAge abcY")
def _dicom_age(ctx: FolderCtx) -> Row:
    folder = write_dicom_series(ct(), AFFINE, ctx.images / "dicomage", PatientAge="abcY")
    return Row("read", "DICOM PatientAge 'abcY' is not an age", folder, None, "dicomage",
               check=lambda res: res.case("dicomage")["has_image"] and res.case("dicomage")["age"] is None)


IMPORT_MASKS = {  # name: (structure, bytes, phrase)
    "import: int64 mask of -2 and 5": ("spleen", lambda: nifti(mask(dtype=np.int64, inside=5, outside=-2)),
                                       "it holds -2, 5 (int64)"),
    "import: float mask, NaN background": ("liver", lambda: nifti(mask(dtype=np.float64, outside=np.nan)),
                                           "holds nan"),
    "import: mask name not in the anatomy": ("notaregion", lambda: nifti(mask()), "not a region of the anatomy"),
    "import: truncated mask": ("stomach", lambda: _half(nifti(mask())), "cannot read mask"),
}
for _name, (_structure, _make, _phrase) in IMPORT_MASKS.items():
    def _imask(ctx: FolderCtx, structure=_structure, make=_make, phrase=_phrase) -> Row:
        path = ctx.masks / "good" / f"{structure}.nii.gz"
        path.write_bytes(make())
        return Row("masks", phrase, path, None, "good.nii.gz")
    hostile("folder", _name)(_imask)


@hostile("folder", "import: masks on another grid")
def _igrid(ctx: FolderCtx) -> Row:
    ctx.image("other.nii.gz", nifti(ct()))
    (ctx.masks / "other").mkdir()
    (ctx.masks / "other" / "lung.nii.gz").write_bytes(nifti(mask((9, 9, 9))))
    return Row("masks", "does not match the image grid", ctx.masks / "other" / "lung.nii.gz", None, "other.nii.gz",
               check=lambda res: res.case("other.nii.gz")["has_image"])


@hostile("folder", "accepted: import label map with a class map")
def _ilabels(ctx: FolderCtx) -> Accepted:
    ctx.image("labelled.nii.gz", nifti(ct()))
    (ctx.masks / "labelled.nii.gz").write_bytes(nifti(mask(dtype=np.int16, inside=2)))
    (ctx.masks / "labelled.json").write_text(json.dumps({"1": "spleen", "2": "liver"}))
    return Accepted(lambda res: any(r["voxels"] == int(mask().sum()) for r in res.rows("region_stats",
                                                                                       "labelled.nii.gz")))


@hostile("folder", "import: label map with NaN")
def _ilabels_nan(ctx: FolderCtx) -> Row:
    ctx.image("nanlabels.nii.gz", nifti(ct()))
    (ctx.masks / "nanlabels.nii.gz").write_bytes(nifti(mask(dtype=np.float32, outside=np.nan)))
    return Row("masks", "non-integer values", ctx.masks / "nanlabels.nii.gz", None, "nanlabels.nii.gz")


REPORT_ROWS = {  # name: (line, phrase, case_id)
    "report: duplicate VolumeName": (GOOD_REPORT.replace("Bilateral", "Again"), "duplicate VolumeName", ANY),
    "report: VolumeName ../../etc/passwd": ("../../etc/passwd,x,x,x,x", "is a path", None),
    "report: VolumeName with a quote": ("it's.nii.gz,x,x,x,x", "holds \"'\"", None),
    "report: no image for it": ("ghost.nii.gz,x,x,Normal.,x", "has no image", "ghost.nii.gz"),
    "report: Latin-1 text": ("lat.nii.gz,x,x,Caf\xe9.,x".encode("latin-1"), "not valid UTF-8", "lat.nii.gz"),
    "report: too many fields": ("other.nii.gz,x,x,x,x,x", "6 fields where the header has 5", "other.nii.gz"),
}
for _name, (_line, _phrase, _case) in REPORT_ROWS.items():
    def _rrow(ctx: FolderCtx, line=_line, phrase=_phrase, case=_case) -> Row:
        n = ctx.report(line)
        return Row("report", phrase, ctx.reports, None if "no image" in phrase else f"line {n}", case)
    hostile("folder", _name)(_rrow)


@hostile("folder", "report: NUL in the findings")
def _rnul(ctx: FolderCtx) -> Row:
    ctx.image("nul.nii.gz", nifti(ct()))
    n = ctx.report("nul.nii.gz,x,x,Heart size is nor\x00mal.,x")
    return Row("report", "(\\x00); they were removed", ctx.reports, f"line {n}", "nul.nii.gz",
               check=lambda res: res.rows("reports", "nul.nii.gz")[0]["findings"] == "Heart size is normal.")


@hostile("folder", "report: findings of whitespace only")
def _rblank(ctx: FolderCtx) -> Row:
    ctx.image("blank.nii.gz", nifti(ct()))
    ctx.report("blank.nii.gz,x,x,   ,\t")
    return Row("structure", "empty findings", None, None, "blank.nii.gz")


@hostile("folder", "report: unclosed quote mid-file")
def _rquote(ctx: FolderCtx) -> list[Row]:
    ctx.image("quoted.nii.gz", nifti(ct()))
    n = ctx.report('quoted.nii.gz,x,x,"Lost findings,x')
    ctx.report("quoted2.nii.gz,x,x,Read again.,x")

    def check(res: Result) -> None:
        assert not res.rows("reports", "quoted.nii.gz") and res.case("quoted.nii.gz")["has_image"]
    return [Row("report", "an unclosed quote", ctx.reports, f"line {n}", "quoted.nii.gz", check),
            Row("report", "has no image", ctx.reports, None, "quoted2.nii.gz")]  # its line is read again


# -- whole reports files that cannot be read (`build`) -----------------------------------------------
REPORT_FILES = {
    "reports file in UTF-16": (f"{REPORT_HEADER}\n{GOOD_REPORT}\n".encode("utf-16"), "UTF-16 text"),
    "reports file with semicolons": (f"{REPORT_HEADER}\n{GOOD_REPORT}\n".replace(",", ";").encode(),
                                     "seems separated by ';'"),
    "empty reports file": (b"", "the file is empty"),
}


def _reports_group(name: str) -> Callable[[Lab, Path], Result]:
    def run(lab: Lab, root: Path) -> Result:
        images, masks, reports = _folder_inputs(root / "in")
        ctx = FolderCtx(root, images, masks, reports)
        ctx.outcomes = {n: fn(ctx) for n, fn in INPUTS[name].items()}
        build(FolderSource(images, reports, [f"import:{masks}"]), root / "wh", runner="local", progress=False)
        return Result(_tables(root / "wh"), ctx)
    return run


for _name, (_data, _phrase) in REPORT_FILES.items():
    def _rfile(ctx: FolderCtx, data=_data, phrase=_phrase) -> Row:
        ctx.reports.write_bytes(data)
        return Row("report", phrase, ctx.reports, "header", None,
                   check=lambda res: res.case("good.nii.gz")["has_masks"] and not res.tables["reports"])
    hostile(f"reports: {_name}", _name)(_rfile)


GROUPS: dict[str, Callable[[Lab, Path], Result]] = {
    "release_csv": _release_group("release_csv", cli=True),
    "release_arrays": _release_group("release_arrays", cli=False),
    "release_parts": _release_group("release_parts", cli=False),
    "folder": _folder_group,
    **{f"reports: {n}": _reports_group(f"reports: {n}") for n in REPORT_FILES},
}
DATA_TABLES = tuple(t for t in TABLES if t != "ingest_errors")
CONTROL = {  # group: (baseline, the untouched case, tables whose rows of the case must equal the baseline's)
    "release_csv": ("release-text", C, DATA_TABLES), "release_arrays": ("release", C, DATA_TABLES),
    "folder": ("folder", "good.nii.gz", DATA_TABLES),
    **{f"reports: {n}": ("folder", "good.nii.gz", ("cases", "region_stats")) for n in REPORT_FILES}}
CASES = [(g, n) for g in GROUPS for n in INPUTS[g]]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    return Lab(tmp_path_factory.mktemp("hostile"))


def _expected(outcome: Outcome) -> list[Row]:
    return [] if isinstance(outcome, Accepted) else outcome if isinstance(outcome, list) else [outcome]


def test_the_corpus_is_large():
    assert len(CASES) >= 80


@pytest.mark.parametrize("group, name", CASES, ids=[f"{g}/{n}" for g, n in CASES])
def test_a_bad_input_is_one_error_row_naming_it(lab, group, name):
    res = lab.result(group)
    outcome = res.ctx.outcomes[name]
    for want in _expected(outcome):
        found = [e for e in res.errors if want.matches(e)]
        assert len(found) == 1, (want, [e for e in res.errors if e["stage"] == want.stage])
        assert found[0]["source"] in ("radgenome", "folder")
    checks = [outcome.check] if isinstance(outcome, Accepted) else [w.check for w in _expected(outcome)]
    for check in filter(None, checks):
        check(res)


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_error_row_is_expected_and_the_control_case_is_complete(lab, group):
    res = lab.result(group)
    wanted = [w for o in res.ctx.outcomes.values() for w in _expected(o)]
    assert [e for e in res.errors if not any(w.matches(e) for w in wanted)] == []
    if group not in CONTROL:  # release_parts: its check says which cases keep what
        return
    mode, case, tables = CONTROL[group]
    base = lab.baseline(mode)
    for table in tables:
        def rows(tables, t=table):
            return sorted(repr({k: v for k, v in r.items() if k != "metadata_json"}) for r in tables[t]
                          if r.get("case_id") == case)
        assert rows(res.tables) == rows(base), table
    assert res.case(case)["has_image"] and res.case(case)["has_masks"]
