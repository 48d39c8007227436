"""The synthetic demo source: determinism, CT-RATE formats, plausible CT, masks, and a consistent truth."""

from __future__ import annotations

import csv
import pickle
import re
import time

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from ingest.sources.demo import DemoCaseJob, DemoSource, case_row, region_report_rows, report_row, truth_rows
from ingest.sources.demo_case import METADATA_COLUMNS, generate_case, generate_cases
from ingest.sources.demo_volume import SHAPE, Grid, anatomy_masks
from warehouse.core import schema
from warehouse.core.anatomy import TOP_LEVEL, anatomy

REPORT_COLUMNS = ["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"]
NAME = re.compile(r"^(train|valid)_(\d+)_([a-z])_(\d+)\.nii\.gz$")
LOBES = ("right lung upper lobe", "right lung middle lobe", "right lung lower lobe", "left lung upper lobe",
         "left lung lower lobe")
# Written independently of the generator's catalogue: which CT-RATE class a present term implies.
TERM_LABELS = {
    "pulmonary nodule": {"Lung nodule"}, "ground glass opacity": {"Lung opacity"},
    "consolidation": {"Consolidation"}, "emphysema": {"Emphysema"}, "atelectasis": {"Atelectasis"},
    "fibrotic sequelae": {"Pulmonary fibrotic sequela"}, "bronchiectasis": {"Bronchiectasis"},
    "peribronchial thickening": {"Peribronchial thickening"},
    "mosaic attenuation pattern": {"Mosaic attenuation pattern"},
    "interlobular septal thickening": {"Interlobular septal thickening"}, "pleural effusion": {"Pleural effusion"},
    "pericardial effusion": {"Pericardial effusion"}, "cardiomegaly": {"Cardiomegaly"},
    "arterial wall calcification": {"Arterial wall calcification"},
    "coronary artery calcification": {"Coronary artery wall calcification"}, "hiatal hernia": {"Hiatal hernia"},
    "lymphadenopathy": {"Lymphadenopathy"}, "catheter": {"Medical material"},
}


@pytest.fixture(scope="module")
def cases():
    t0 = time.process_time()  # CPU time: robust to other processes sharing the cores
    out = generate_cases(20, seed=0)
    assert time.process_time() - t0 < 6, "generating the 20 demo cases must take only a few seconds"
    return out


@pytest.fixture(scope="module")
def truths():
    return [generate_case(0, i, volume=False) for i in range(60)]


def test_deterministic_and_seeded(cases):
    again = generate_case(0, 4)
    assert np.array_equal(again.hu, cases[4].hu) and again.report == cases[4].report
    assert again.metadata == cases[4].metadata and again.truth == cases[4].truth
    assert all(np.array_equal(m, cases[4].masks[k]) for k, m in again.masks.items())
    assert generate_case(0, 4, volume=False).truth == cases[4].truth  # the truth does not need the volume
    other = generate_case(1, 4)
    assert other.case_id != cases[4].case_id and not np.array_equal(other.hu, cases[4].hu)
    assert other.report["Findings_EN"] != cases[4].report["Findings_EN"]


def test_ct_rate_naming_mixes_splits_scans_and_reconstructions(cases):
    parts = [NAME.match(c.case_id).groups() for c in cases]
    assert len({c.case_id for c in cases}) == 20
    assert {p[0] for p in parts} == {"train", "valid"}
    scans = {(p[0], p[1], p[2]) for p in parts}
    assert len(scans) < 20  # some scan has two reconstructions
    assert any(len({s for sp, pt, s in scans if (sp, pt) == key}) > 1 for key in {(p[0], p[1]) for p in parts})
    row = case_row(cases[0])
    assert (row["patient_id"], row["scan"], row["reconstruction"]) == (f"{parts[0][0]}_{parts[0][1]}", "a", 1)
    assert {case_row(c)["split"] for c in cases} == {"train", "validation"}


def test_reconstructions_share_the_scan_but_not_the_noise(cases):
    a1, a2 = cases[0], cases[1]
    assert a1.case_id.replace("_1.nii.gz", "") == a2.case_id.replace("_2.nii.gz", "")
    assert a1.truth == a2.truth and a1.report["Findings_EN"] == a2.report["Findings_EN"]
    assert all(np.array_equal(a1.masks[k], a2.masks[k]) for k in a1.masks)
    assert not np.array_equal(a1.hu, a2.hu)
    assert a1.metadata["ConvolutionKernel"] != a2.metadata["ConvolutionKernel"]


def test_report_and_metadata_columns(cases):
    for c in cases:
        assert list(c.report) == REPORT_COLUMNS and c.report["VolumeName"] == c.case_id
        assert list(c.metadata) == list(METADATA_COLUMNS) and len(METADATA_COLUMNS) == 44
        assert all(v is None or isinstance(v, str) for v in c.metadata.values())
        m = c.metadata
        assert m["VolumeName"] == c.case_id and re.fullmatch(r"\d{3}Y", m["PatientAge"]) and m["PatientSex"] in "MF"
        xy = [float(v) for v in m["XYSpacing"].strip("[]").split(",")]
        assert np.allclose([*xy, float(m["ZSpacing"])], np.linalg.norm(c.affine[:3, :3], axis=0), atol=1e-4)
        assert (int(m["Columns"]), int(m["Rows"]), int(m["NumberofSlices"])) == c.hu.shape
        pos = [float(v) for v in m["ImagePositionPatient"].strip("[]").split(",")]
        assert np.allclose(pos, [-c.affine[0, 3], -c.affine[1, 3], c.affine[2, 3]], atol=1e-3)  # LPS of voxel 0
        assert m["RescaleIntercept"] == ("-8192" if m["Manufacturer"] == "Siemens Healthineers" else "-1024")
        assert re.fullmatch(r"20\d{6}", m["StudyDate"])
    assert {c.metadata["RescaleIntercept"] for c in cases} == {"-1024", "-8192"}


def test_metadata_columns_are_ct_rates(shared_data):
    with open(shared_data / "ct_rate/validation_metadata.csv", newline="") as f:
        reader = csv.DictReader(f)
        real = next(reader)
    assert list(real) == list(METADATA_COLUMNS)
    ours = generate_case(0, 0, volume=False).metadata
    for col in ("PatientAge", "XYSpacing", "ImageOrientationPatient", "StudyDate"):  # same written forms
        assert re.sub(r"[\d.]+", "9", real[col]) == re.sub(r"[\d.]+", "9", ours[col]), col


def test_volume_grid_and_orientation(cases):
    for c in cases:
        assert c.hu.dtype == np.int16 and c.hu.shape == SHAPE
        assert "".join(nib.aff2axcodes(c.affine)) == "LPS"
        assert np.allclose(np.linalg.norm(c.affine[:3, :3], axis=0)[:2], 4.0, atol=0.25)
        assert -1024 <= c.hu.min() and c.hu.max() <= 3071


def test_hu_per_tissue(cases):
    assert {c.contrast for c in cases[:4]} == {True, False}
    for c in cases[:4]:
        hu, m = c.hu, c.masks
        assert np.median(hu[0, 0, :]) < -950  # air outside the body
        lung = m["lung"] & (hu < -500)  # aerated lung, lesions aside
        assert -900 < np.median(hu[lung]) < -800 and np.percentile(hu[m["lung"]], 99) > -300  # with vessels
        assert 0 < np.median(hu[m["esophagus"]]) < 80
        blood = np.median(hu[m["aorta"]]), np.median(hu[m["heart"]])
        assert all((180 < v < 330) if c.contrast else (20 < v < 70) for v in blood), (c.case_id, blood)
        vertebrae = np.concatenate([hu[v] for k, v in m.items() if k.startswith("thoracic vertebrae")])
        assert 400 < vertebrae.mean() < 1200 and np.median(hu[m["left rib 5"]]) > 400
        g = Grid(SHAPE, tuple(np.linalg.norm(c.affine[:3, :3], axis=0)))
        _, shapes = anatomy_masks(g, c.body)
        fat = ndimage.binary_erosion(shapes["body"] & ~shapes["muscle_wall"] & ~m["breast"])
        assert -130 < np.median(hu[fat]) < -70


def test_masks_follow_the_dag(cases):
    dag = anatomy()
    required = {*LOBES, "lung", "left lung", "right lung", "trachea", "bronchie", "heart", "aorta", "esophagus",
                "sternum", "liver", "spleen", "thyroid gland", "thoracic vertebrae 6 (t6)", "left rib 5",
                "right rib 5", "pleura", "mediastinum", "bone", "abdomen"}
    for c in cases[:4]:
        assert required <= set(c.masks)
        for name, mask in c.masks.items():
            assert dag.get(name).name == name and mask.dtype == bool and mask.shape == c.hu.shape
            assert mask.any() or name in ("lung nodule", "lung effusion"), name
            assert not (mask[[0, -1]].any() or mask[:, [0, -1]].any()), f"{name} touches the grid's side"
        m = c.masks
        assert np.array_equal(m["lung"], np.logical_or.reduce([m[k] for k in LOBES]))
        assert sum(int(m[k].sum()) for k in LOBES) == int(m["lung"].sum())  # lobes do not overlap
        assert not (m["right lung"] & m["left lung"]).any() and not (m["right lung"] & ~m["lung"]).any()
        assert np.array_equal(m["trachea and bronchie"], m["trachea"] | m["bronchie"])
        centroid = ("right lung", "left lung", "thyroid gland", "heart", "liver", "sternum",
                    "thoracic vertebrae 1 (t1)", "thoracic vertebrae 6 (t6)", "thoracic vertebrae 12 (t12)")
        world = {k: nib.affines.apply_affine(c.affine, np.argwhere(m[k]).mean(axis=0)) for k in centroid}
        assert world["right lung"][0] > 0 > world["left lung"][0]  # RAS: right is +x
        assert world["thyroid gland"][2] > world["heart"][2] > world["liver"][2]
        assert world["sternum"][1] > world["thoracic vertebrae 6 (t6)"][1]  # anterior
        assert world["thoracic vertebrae 1 (t1)"][2] > world["thoracic vertebrae 12 (t12)"][2]


def test_truth_is_consistent(truths):
    dag = anatomy()
    for c in truths:
        t = c.truth
        assert list(t.labels) == list(schema.CT_RATE_LABELS) and set(t.labels.values()) <= {0, 1}
        present = {f.term for _, f in t.findings if f.status == "present"}
        implied = set().union(*(TERM_LABELS.get(term, set()) for term in present))
        assert {k for k, v in t.labels.items() if v} == implied, c.case_id
        assert (t.disorders == ("no findings",)) == (not present) == t.is_normal
        for s in t.sentences:
            assert all(dag.get(r).name == r for r in s.regions) and set(s.top_levels) <= set(TOP_LEVEL)
            assert s.is_abnormal == any(f.status == "present" for f in s.findings)
            for f in s.findings:
                assert f.region in s.regions and f.status in schema.FINDING_STATUSES
                assert f.raw_text.lower() in s.text.lower(), (f.raw_text, s.text)
                if f.size_text:
                    assert f.size_text in s.text and f.size_mm == _parse_mm(f.size_text)
        for section, column in (("findings", "Findings_EN"), ("impressions", "Impressions_EN")):
            assert c.report[column] == " ".join(s.text for s in t.sentences if s.section == section)
        lung = [s for s in t.sentences if s.section == "findings" and "lung" in s.top_levels]
        assert lung and lung[0].text.split(";")[0] in ("When examined in the lung parenchyma window",
                                                       "In the evaluation of both lung parenchyma")


def _parse_mm(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(?:x([\d.]+))? (mm|cm)", text)
    value = max(float(m[1]), float(m[2] or 0))
    return round(value * (10 if m[3] == "cm" else 1), 6)


def test_reports_cover_normal_abnormal_sizes_negations_and_hedges(truths):
    assert any(c.truth.is_normal for c in truths[:10]) and any(not c.truth.is_normal for c in truths[:10])
    text = " ".join(c.report["Findings_EN"] for c in truths[:20])
    assert re.search(r"\b\d+(\.\d+)? (mm|cm)\b", text)
    assert re.search(r"was not (observed|detected)|\bNo \w+", text)
    statuses = {f.status for c in truths[:20] for _, f in c.truth.findings}
    assert statuses == {"present", "absent", "uncertain"} and "cannot be excluded" in text
    normal = next(c for c in truths if c.truth.is_normal)
    assert normal.report["Impressions_EN"] == "Thoracic CT examination within normal limits."


def test_findings_are_drawn_where_the_report_puts_them(truths):
    sized = next(c for c in truths if any(p.key == "nodule" and p.size_mm and p.size_mm >= 8 for p in c.plan))
    case = generate_case(0, truths.index(sized))
    p = next(p for p in case.plan if p.key == "nodule")
    nodule = case.masks["lung nodule"]
    assert nodule.any() and (nodule & ~case.masks[p.region]).sum() == 0  # in the named lobe
    voxel_ml = np.prod(np.linalg.norm(case.affine[:3, :3], axis=0)) / 1000
    expected_ml = np.pi / 6 * p.size_mm ** 3 / 1000
    assert 0.3 < nodule.sum() * voxel_ml / expected_ml < 3
    assert np.median(case.hu[nodule]) > -300  # solid, in aerated lung
    normal = generate_case(0, 2)
    assert normal.truth.is_normal and not normal.masks["lung nodule"].any()


def test_job_pickles_and_returns_schema_rows(tmp_path):
    pytest.importorskip("warehouse.store.arrays")
    job = DemoSource(n=3, seed=0, structure=False).jobs()[1]
    job = pickle.loads(pickle.dumps(job))
    assert isinstance(job, DemoCaseJob) and job.case_id == generate_case(0, 1, volume=False).case_id
    from ingest.job import JobContext

    out = job.run(JobContext(arrays_path=tmp_path / "arrays.zarr", source="demo")).tables()
    assert set(out) == {"cases", "reports", "region_stats", "sentences", "findings", "case_labels", "vqa"}
    for name, rows in out.items():
        schema.to_table(name, rows)  # every column known and typed
    row = out["cases"][0]
    assert row["source"] == "demo" and row["orientation"] == "LPS" and (row["shape_x"], row["shape_z"]) == (96, 64)
    assert {r["region_id"] for r in out["region_stats"]} >= {anatomy().get(k).region_id for k in LOBES}
    assert {r["extractor"] for r in out["sentences"]} == {"demo-truth"}


def test_truth_tables_rows(cases):
    tables = DemoSource(n=6, seed=0).truth_tables()
    sentences = schema.to_table("sentences", tables["sentences"])
    assert sentences.num_rows == len(set(sentences["sentence_id"].to_pylist()))
    ids = set(sentences["sentence_id"].to_pylist())
    assert all(f["sentence_id"] in ids for f in tables["findings"])
    schema.to_table("findings", tables["findings"])
    labels = schema.to_table("case_labels", tables["case_labels"])
    assert labels.num_rows >= 6 * 18
    rows = truth_rows(cases[2])
    aorta = [r for r in rows["sentences"] if r["region_id"] == anatomy().get("aorta").region_id]
    assert all(r["anatomy_path"] == "mediastinum/aorta" for r in aorta)
    assert report_row(cases[2])["case_id"] == cases[2].case_id
    tops = {r["Anatomy"] for r in region_report_rows(cases[2])}
    assert {"lung", "heart", "trachea and bronchie", "pleura"} <= tops <= set(TOP_LEVEL)
