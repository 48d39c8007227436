"""One synthetic case: CT-RATE name, metadata, report with truth, CT volume and masks.

`generate_case(seed, index)` is a pure function of its arguments. Each index maps to a
fixed slot of a 10-case pattern (a patient with two reconstructions of one scan, one
with a follow-up scan, train and validation patients), so `generate_cases(n, seed)[i]`
equals `generate_case(seed, i)`. Random draws are keyed by patient, scan and
reconstruction: two reconstructions of a scan share anatomy, findings and report and
differ only in kernel and noise; the scans of a patient share the patient's build.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ingest.sources.demo_paint import draw_findings, finish, paint_tissues
from ingest.sources.demo_report import PlannedFinding, Truth, plan_findings, write_report
from ingest.sources.demo_volume import SHAPE, Body, Grid, anatomy_masks
from ingest.sources.volume_names import SPLITS, VolumeName

GENERATOR_VERSION = "demo-1"
METADATA_COLUMNS: tuple[str, ...] = (
    "VolumeName", "Manufacturer", "SeriesDescription", "ManufacturerModelName", "PatientSex", "PatientAge",
    "ReconstructionDiameter", "DistanceSourceToDetector", "DistanceSourceToPatient", "GantryDetectorTilt",
    "TableHeight", "RotationDirection", "ExposureTime", "XRayTubeCurrent", "Exposure", "FilterType",
    "GeneratorPower", "FocalSpots", "ConvolutionKernel", "PatientPosition", "RevolutionTime",
    "SingleCollimationWidth", "TotalCollimationWidth", "TableSpeed", "TableFeedPerRotation", "SpiralPitchFactor",
    "DataCollectionCenterPatient", "ReconstructionTargetCenterPatient", "ExposureModulationType", "CTDIvol",
    "ImagePositionPatient", "ImageOrientationPatient", "SliceLocation", "SamplesPerPixel",
    "PhotometricInterpretation", "Rows", "Columns", "XYSpacing", "RescaleIntercept", "RescaleSlope",
    "RescaleType", "NumberofSlices", "ZSpacing", "StudyDate")

# Scanner profiles as CT-RATE's metadata shows them: fixed columns, and per reconstruction
# (SeriesDescription, ConvolutionKernel, FilterType, noise sd in HU).
_COMMON = {"GantryDetectorTilt": "0", "PatientPosition": "HFS", "SamplesPerPixel": "1",
           "PhotometricInterpretation": "MONOCHROME2", "RescaleSlope": "1", "RotationDirection": "CW",
           "ImageOrientationPatient": "[1, 0, 0, 0, 1, 0]", "RescaleIntercept": "-1024"}
SCANNERS: tuple[tuple[dict[str, str | None], tuple[tuple[str | None, str, str | None, float], ...]], ...] = (
    ({"Manufacturer": "Philips", "ManufacturerModelName": "iCT 256", "ExposureTime": "622",
      "ExposureModulationType": "Z DOM"},
     (("HRCT", "YA", "YA", 22.0), (None, "B", "B", 12.0))),
    ({"Manufacturer": "Siemens Healthineers", "ManufacturerModelName": "SOMATOM go.All", "RescaleIntercept": "-8192",
      "DistanceSourceToDetector": "983", "DistanceSourceToPatient": "535", "ExposureTime": "507",
      "GeneratorPower": "15", "FocalSpots": "[1.2, 1.2]", "RevolutionTime": "0.33", "SingleCollimationWidth": "0.7",
      "TotalCollimationWidth": "22.4", "TableSpeed": "43.9", "TableFeedPerRotation": "14.56",
      "SpiralPitchFactor": "0.65", "ExposureModulationType": "OFF_OFF", "RescaleType": "HU"},
     (("Thorax 1,50 Br40 S3", "['Br40f', '3']", None, 12.0), ("Thorax 1,50 Br60 S3", "['Br60f', '3']", None, 24.0))),
    ({"Manufacturer": "Philips", "ManufacturerModelName": "Brilliance Big Bore", "RotationDirection": None,
      "DistanceSourceToDetector": "1183.447998", "DistanceSourceToPatient": "645", "ExposureTime": "471",
      "RevolutionTime": "0.5", "SingleCollimationWidth": "1.5", "TotalCollimationWidth": "24", "TableSpeed": "51",
      "TableFeedPerRotation": "25.5", "SpiralPitchFactor": "1.063", "ExposureModulationType": "3D MODULATION"},
     (("MEDIASTEN, iDose (4)", "B", "B", 12.0), ("PARANKIM, iDose (4)", "YB", "YB", 22.0))),
    ({"Manufacturer": "PNMS", "ManufacturerModelName": "MX 16", "DistanceSourceToDetector": "1040",
      "DistanceSourceToPatient": "570", "ExposureTime": "15203", "RevolutionTime": "0.75",
      "TableSpeed": "27.6192", "TableFeedPerRotation": "20.7144", "SpiralPitchFactor": "0.8631",
      "ImageOrientationPatient": "[1.000000, 0.000000, 0.000000, 0.000000, 1.000000, -0.000000]"},
     (("HRCT", "EA", "EA", 22.0), (None, "SB", "SB", 12.0))),
)
SCANNER_WEIGHTS = (0.5, 0.3, 0.12, 0.08)

# The 10-slot pattern: (split prefix, patient slot, scan letter, reconstruction, forced abnormal).
_PATTERN: tuple[tuple[str, int, str, int, bool | None], ...] = (
    ("train", 0, "a", 1, True), ("train", 0, "a", 2, True), ("train", 1, "a", 1, False),
    ("train", 2, "a", 1, None), ("train", 2, "b", 1, None), ("train", 3, "a", 1, None),
    ("valid", 0, "a", 1, True), ("valid", 0, "a", 2, True), ("valid", 1, "a", 1, False),
    ("train", 4, "a", 1, None))
_PER_BLOCK = {"train": 5, "valid": 2}


@dataclass(frozen=True)
class CaseName(VolumeName):
    """Where an index sits: the CT-RATE name parts and whether the scan is forced abnormal/normal."""

    abnormal: bool | None = None


def case_name(seed: int, index: int) -> CaseName:
    """The name of case `index` of seed `seed` (cheap: no volume is generated)."""
    block, slot = divmod(index, len(_PATTERN))
    prefix, patient, scan, rec, abnormal = _PATTERN[slot]
    base = np.random.default_rng([seed, 0xDE40]).integers(1, [20000, 1500])
    number = int(base[int(prefix == "valid")]) + _PER_BLOCK[prefix] * block + patient
    return CaseName(SPLITS[prefix], number, scan, rec, abnormal)


@dataclass
class SyntheticCase:
    """A generated case: what a source would read, and the truth it was written from."""

    case_id: str
    name: CaseName
    hu: np.ndarray                      # int16, (x, y, z)
    affine: np.ndarray                  # 4x4, LPS
    masks: dict[str, np.ndarray]        # DAG region name -> bool (x, y, z)
    report: dict[str, str]              # CT-RATE report columns
    metadata: dict[str, str | None]     # CT-RATE's 44 metadata columns, as its CSV holds them
    truth: Truth
    plan: list[PlannedFinding]
    contrast: bool
    body: Body                          # the patient's build the volume was drawn from


def _rngs(seed: int, name: CaseName) -> tuple[np.random.Generator, ...]:
    key = [seed, name.prefix == "valid", name.patient]
    scan = ord(name.scan)
    return (np.random.default_rng([*key, 0]), np.random.default_rng([*key, 1, scan]),
            np.random.default_rng([*key, 2, scan, name.reconstruction]))


def generate_case(seed: int, index: int, *, volume: bool = True) -> SyntheticCase:
    """Case `index` of the demo drawn with `seed`: deterministic, about 0.15 s.

    ``volume=False`` skips the CT and masks (empty) and keeps everything else identical.
    """
    name = case_name(seed, index)
    patient_rng, scan_rng, recon_rng = _rngs(seed, name)
    sex = "M" if patient_rng.random() < 0.58 else "F"
    age = int(patient_rng.integers(22, 86)) + (ord(name.scan) - ord("a"))
    body = Body.draw(patient_rng, sex)
    first_visit = dt.date(2019, 10, 1) + dt.timedelta(days=int(patient_rng.integers(0, 900)))

    plan = plan_findings(scan_rng, sex=sex, abnormal=name.abnormal)
    fixed, recons = SCANNERS[int(scan_rng.choice(len(SCANNERS), p=SCANNER_WEIGHTS))]
    series, kernel, filt, noise_sd = recons[(name.reconstruction - 1) % len(recons)]
    contrast = bool(scan_rng.random() < 0.35)
    diameter = round(float(scan_rng.uniform(365, 405)), 1)
    grid = Grid(SHAPE, (diameter / SHAPE[0], diameter / SHAPE[1], 5.0))
    affine = grid.affine(round(float(scan_rng.uniform(-400, 100)), 1))
    date = first_visit + dt.timedelta(days=120 * (ord(name.scan) - ord("a")))
    report, truth = write_report(scan_rng, plan, volume_name=name.case_id, contrast=contrast,
                                 slice_mm=float(grid.spacing[2]))
    meta = _metadata(name, fixed, (series, kernel, filt), sex, age, tuple(grid.spacing), affine, date,
                     scan_rng, recon_rng)
    hu, masks = np.empty((0, 0, 0), np.int16), {}
    if volume:
        masks, shapes = anatomy_masks(grid, body, cardiomegaly=any(p.key == "cardiomegaly" for p in plan))
        raw = paint_tissues(grid, masks, shapes, scan_rng, contrast=contrast, female=sex == "F",
                            steatosis=any(p.key == "hepatosteatosis" for p in plan))
        draw_findings(grid, masks, raw, plan, body, scan_rng)
        hu = finish(raw, recon_rng, noise_sd)
    return SyntheticCase(name.case_id, name, hu, affine, masks, report, meta, truth, plan, contrast, body)


def generate_cases(n: int = 20, seed: int = 0) -> list[SyntheticCase]:
    """The first `n` cases of `seed`."""
    return [generate_case(seed, i) for i in range(n)]


def _metadata(name: CaseName, fixed: dict, recon: tuple, sex: str, age: int, spacing: tuple, affine: np.ndarray,
              date: dt.date, scan_rng: np.random.Generator, recon_rng: np.random.Generator) -> dict[str, str | None]:
    """CT-RATE's 44 metadata columns, consistent with the synthetic grid (spacing, rows, position)."""
    current = int(scan_rng.integers(90, 480))
    position = (-affine[0, 3], -affine[1, 3], affine[2, 3])  # DICOM LPS of the first voxel
    centre = f"[0.0, {-float(scan_rng.uniform(100, 200)):.1f}, {affine[2, 3]:g}]"
    meta: dict[str, str | None] = dict.fromkeys(METADATA_COLUMNS)
    meta.update(_COMMON)
    meta.update(fixed)
    meta.update({
        "VolumeName": name.case_id, "SeriesDescription": recon[0], "ConvolutionKernel": recon[1],
        "FilterType": recon[2], "PatientSex": sex, "PatientAge": f"{age:03d}Y",
        "ReconstructionDiameter": f"{spacing[0] * SHAPE[0]:g}", "TableHeight": f"{scan_rng.uniform(80, 200):.1f}",
        "XRayTubeCurrent": str(current), "Exposure": str(int(current * 0.6)),
        "CTDIvol": f"{current / 38 + float(recon_rng.uniform(0, 0.01)):.6f}",
        "ImagePositionPatient": "[{:g}, {:g}, {:g}]".format(*(round(float(v), 4) for v in position)),
        "SliceLocation": f"{affine[2, 3]:g}", "Rows": str(SHAPE[1]), "Columns": str(SHAPE[0]),
        "XYSpacing": f"[{spacing[0]:g}, {spacing[1]:g}]", "NumberofSlices": str(SHAPE[2]),
        "ZSpacing": f"{spacing[2]:g}", "StudyDate": date.strftime("%Y%m%d"),
    })
    if fixed.get("Manufacturer") == "Siemens Healthineers":
        meta["DataCollectionCenterPatient"] = meta["ReconstructionTargetCenterPatient"] = centre
    return meta
