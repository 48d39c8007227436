"""DICOM Segmentations of a cohort (`radgenome export --format dicom-seg`), each case with its CT as a DICOM series.

Layout (beside the ``manifest.json`` that `export_cohort` writes)::

    OUT/<case>/ct/<nnnn>.dcm        the CT as a generated series: one CT Image Storage file per slice, nnnn =
                                    0001, ... along the third array axis (feet to head); int16 HU (slope 1,
                                    intercept 0), JPEG-LS lossless, or uncompressed where that is smaller
    OUT/<case>/seg-<source>.dcm     one DICOM Segmentation (BINARY, bit-packed) per mask source holding a
                                    selected region: a segment per region (in --masks order), a frame per
                                    slice and segment with a voxel, each frame referencing its CT slice

``<case>`` is the array store's case key (as in the bundle). The manifest gains ``dicom_seg``: per case
its key, the CT series (UIDs, slices, the voxel box of the warehouse grid, what it was generated from)
and its SEGs (file, mask source, algorithm type, UIDs, each segment's region, codes and frames).

**Why a generated CT series.** A SEG references the images it segments by SOP Instance UID. The
warehouse keeps voxels and an affine, not the instances a case was read from: a case read from NIfTI
has none, and one read from DICOM keeps only its SeriesInstanceUID (in ``cases.metadata_json``), not
its study or instance UIDs, and may have been flipped to the stored L, P, S order. So every case gets
its CT as a new series in a new study, and the manifest says so (naming the original series of a case
read from DICOM).

**Geometry.** Stored voxel (i, j, k) of a nibabel (RAS+) affine is pixel [row j, column i] of slice k:
ImageOrientationPatient is the LPS direction of i then of j, PixelSpacing (between rows, between columns)
their spacings, ImagePositionPatient the LPS position of voxel (0, 0, k); highdicom's `VolumeGeometry`
computes them from the affine with its axes permuted to (k, j, i), its (slice, row, column). This is the
mapping `ingest.images.read_dicom_series` inverts, so the series ingests back to the same voxels and
affine. An oblique (rotated) grid is kept; a sheared one (slices not perpendicular to their planes, a
gantry tilt) is refused by `check`: a series of parallel planes on an orthogonal grid cannot carry it.

**Identifiers.** UIDs are `pydicom.uid.generate_uid` of the snapshot id, the case id and what the object
is (and the box, for a crop; the regions and mask source, for a SEG), so a re-export of a snapshot
gives the same UIDs. Content dates are the snapshot's; instance creation and highdicom's contribution
are dated when written, so a re-export's files differ in those dates only. The warehouse holds no PHI:
PatientID and PatientName are the case key, sex and age come from ``cases``; there are no dates of birth,
study or accession numbers.

**Segments.** The label is the region's name. The type is the SNOMED CT concept of pydicom's code
dictionary that means exactly that name (CID 7151, Segmentation Property Types), or one for the name
without its ``left``/``right`` with a laterality modifier; else SCT "Anatomical Structure" (the project has
no code of its own). The category is "Anatomical Structure"; the colour the region's colour in OME-Zarr.

`--crop` is supported: the CT series and the SEGs cover the box the NIfTI export plans (the region's box
grown by the margin).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import Box
from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.grid import shift_affine, spacing
from warehouse.exports.bundle_tables import safe_name
from warehouse.exports.cohort import Cohort, ExportError
from warehouse.exports.nifti import paste, voxel_offset
from warehouse.store.arrays.ome import region_rgba

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.sr.coding import Code

NEEDS_IMAGES = True
MANUFACTURER = "radgenome-warehouse"
ORTHOGONAL_TOL = 1e-4  # highdicom's own tolerance for an orthogonal affine (normalised dot products)
# Bytes of a file besides its pixels, bounds for a dry run: a CT slice's header measured 1.3 KB (every
# string in it is bounded: UIDs, the case key, fixed texts); a SEG's 11-41 KB on the test cohorts, about
# 0.45 KB a frame, the rest per segment and referenced CT slice: the bounds are over twice that.
CT_HEADER_BOUND = 4096
SEG_BOUND, SEG_SEGMENT_BOUND, SEG_FRAME_BOUND, SEG_REFERENCE_BOUND = 16384, 2048, 1024, 512
# mask_source -> (SegmentAlgorithmType, CID 7162 family): what the project knows of how each source made
# its masks. TotalSegmentator, MONAI models and RadGenome-ChestCT's released masks (made with the SAT
# model, its paper says) are models; `builtin` is HU thresholds and morphology; `demo` draws synthetic
# shapes. Any other source (`imported`: masks made elsewhere, by a tool or a person the warehouse does not
# know) is MANUAL, the one type that claims no algorithm; its name is in the SEG's series description.
ALGORITHMS = {"totalsegmentator": ("AUTOMATIC", "ArtificialIntelligence"),
              "monai": ("AUTOMATIC", "ArtificialIntelligence"),
              "radgenome": ("AUTOMATIC", "ArtificialIntelligence"),
              "radgenome-region": ("AUTOMATIC", "ArtificialIntelligence"),
              "builtin": ("AUTOMATIC", "MorphologicalOperations"),
              "demo": ("AUTOMATIC", "MorphologicalOperations")}
OWN_ALGORITHMS = ("builtin", "demo")  # versioned as this package; the others' versions are not recorded


@dataclass(frozen=True)
class SegPlan:
    """One SEG file: a mask source and the selected regions it has, and a bound of its frames."""

    rel: str
    source: str
    regions: tuple[str, ...]
    z_range: tuple[int, int]  # slices (of the box) holding a voxel of any region; (0, 1) when all are empty
    frames_bound: int


@dataclass(frozen=True)
class CasePlan:
    """What one case contributes: its CT series over `box` and its SEGs."""

    case_id: str
    key: str
    box: Box
    segs: tuple[SegPlan, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(hi - lo for lo, hi in zip(*self.box, strict=True))  # type: ignore[return-value]


# -- the writer interface (`warehouse.exports.bundle.FORMATS`) ----------------------------------------------
def check(c: Cohort) -> None:
    """Refuse, before anything is written, what cannot become a SEG: no regions, a region no case has a
    mask of, a sheared grid, highdicom missing."""
    _highdicom()
    if not c.masks:
        raise ExportError("--format dicom-seg needs --masks: a DICOM Segmentation holds at least one segment",
                          hint='name the regions, e.g. --masks "lung, heart"')
    have = {f.region for files in c.plans.values() for f in files if f.kind == "mask"}
    for region in c.masks:
        if region not in have:
            raise ExportError(f"no case of the cohort has a mask for region {region!r}",
                              hint="leave it out of --masks, or choose cases that have it (region_stats)")
    for case_id, files in c.plans.items():
        if files:
            orientation(c.wh.arrays.grid(case_id).affine, case_id)


def dry_run(c: Cohort) -> tuple[int, int]:
    """Files and an upper bound of their bytes (not counting manifest.json)."""
    files = size = 0
    for p in plan(c).values():
        ni, nj, nk = p.shape
        files += nk + len(p.segs)
        size += nk * (CT_HEADER_BOUND + ni * nj * 2)  # a slice is uncompressed where JPEG-LS would be larger
        for s in p.segs:
            size += (SEG_BOUND + SEG_SEGMENT_BOUND * len(s.regions) + SEG_REFERENCE_BOUND * nk
                     + s.frames_bound * (SEG_FRAME_BOUND + math.ceil(ni * nj / 8)) + 2)
    return files, size


def write(c: Cohort, stage: Path) -> dict:
    """Write every case's CT series and SEGs into `stage`; returns the manifest's ``dicom_seg`` entry."""
    plans = plan(c)
    cases = {r["case_id"]: r for r in c.wh.sql(
        "SELECT case_id, sex, age, metadata_json FROM cases WHERE case_id IN (SELECT unnest($ids))",
        {"ids": list(plans)}).to_dicts()}
    when = _snapshot_time(c.wh.manifest.get("created"))
    with ThreadPoolExecutor(max(1, min(c.workers, len(plans)))) as pool:  # one task per case
        done = list(pool.map(lambda p: write_case(c, p, cases.get(p.case_id, {}), stage, when), plans.values()))
    return {"dicom_seg": dict(zip(plans, done, strict=True))}


# -- planning -----------------------------------------------------------------------------------------------
def plan(c: Cohort) -> dict[str, CasePlan]:
    """The CT box and SEGs of every case with arrays planned (metadata only: no voxel is read)."""
    store = c.wh.arrays
    out = {}
    for case_id in c.case_ids:
        files = c.plans.get(case_id) or []
        if not files:  # no arrays, or no voxel of the crop region: the notes say so
            continue
        box = files[0].box
        regions = [f.region for f in files if f.kind == "mask"]
        sources = sorted({s["mask_source"] for s in store.structures(case_id)})
        segs = []
        for src in sources:
            boxes = {}
            for region in regions:
                try:
                    boxes[region] = store.region_bbox(case_id, region, mask_source=src)
                except ArrayNotFoundError:  # this source has no mask of the region
                    continue
            if boxes:
                segs.append(_seg_plan(c.keys[case_id], src, boxes, box))
        out[case_id] = CasePlan(case_id, c.keys[case_id], box, tuple(segs))
    return out


def _seg_plan(key: str, source: str, boxes: dict[str, Box | None], box: Box) -> SegPlan:
    lo, hi = box[0][2], box[1][2]
    spans = [(max(b[0][2], lo) - lo, min(b[1][2], hi) - lo) for b in boxes.values() if b is not None]
    spans = [s for s in spans if s[1] > s[0]]
    z_range = (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else (0, 1)
    frames = max(sum(b - a for a, b in spans), len(boxes))  # all empty: highdicom writes one empty frame each
    return SegPlan(f"{key}/seg-{safe_name(source)}.dcm", source, tuple(boxes), z_range, frames)


# -- geometry -------------------------------------------------------------------------------------------------
def orientation(affine: np.ndarray, case_id: str = "") -> None:
    """Refuse a sheared grid (one line): DICOM slices are parallel planes on an orthogonal grid."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    d = a / spacing(a)
    if not np.allclose(d.T @ d, np.eye(3), atol=ORTHOGONAL_TOL):
        angle = float(np.degrees(np.arcsin(min(1.0, np.abs(d.T @ d - np.eye(3)).max()))))
        raise ExportError(f"case {case_id} has a sheared grid (axes {angle:.2f} degrees off square, a gantry "
                          "tilt): a DICOM series cannot carry it",
                          hint="leave the case out, or export it as NIfTI (--format bundle keeps any affine)")


def plane_geometry(affine: np.ndarray, shape: Sequence[int]) -> tuple[Any, Any, list]:
    """(PlaneOrientationSequence, PixelMeasuresSequence, a PlanePositionSequence per slice) of a stored
    grid, slice k = third axis: highdicom's geometry of the axes permuted to its (slice, row, column)."""
    hd = _highdicom()
    geometry = hd.VolumeGeometry(np.asarray(affine, np.float64), tuple(int(n) for n in shape), "PATIENT",
                                 from_reference_convention="RAS").permute_spatial_axes([2, 1, 0])
    return geometry.get_plane_orientation(), geometry.get_pixel_measures(), geometry.get_plane_positions()


# -- the CT series ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ids:
    """Deterministic UIDs of one case's objects in one snapshot (see the module docstring)."""

    snapshot_id: str
    case_id: str
    box: Box

    def uid(self, *parts: object) -> str:
        from pydicom.uid import generate_uid

        return generate_uid(entropy_srcs=[self.snapshot_id, self.case_id, *map(str, parts)])

    @property
    def study(self) -> str:
        return self.uid("study")

    @property
    def frame_of_reference(self) -> str:  # crops share it: the same world coordinates
        return self.uid("frame of reference")

    @property
    def ct_series(self) -> str:
        return self.uid("ct series", self.box)


def ct_series(hu: np.ndarray, affine: np.ndarray, ids: Ids, patient: dict, when: tuple[str, str] | None,
              description: str = "CT") -> Iterator[Dataset]:
    """The CT Image Storage datasets of a stored int16 HU volume, one per slice along its third axis
    (made one at a time: a caller writes each and keeps its header only)."""
    hd = _highdicom()
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    plane, measures, positions = plane_geometry(affine, hu.shape)
    for k in range(hu.shape[2]):
        # highdicom writes the file meta and the Patient, General Study, General Series, General Equipment and
        # SOP Common modules; pydicom `set_pixel_data` the Image Pixel module; `plane_geometry` the values of
        # Image Plane. No library writes the Frame of Reference and CT Image modules of a CT: they are here.
        ds = hd.SOPClass(
            study_instance_uid=ids.study, series_instance_uid=ids.ct_series, series_number=1,
            sop_instance_uid=ids.uid("ct", ids.box, k), sop_class_uid=CTImageStorage, instance_number=k + 1,
            modality="CT", manufacturer=MANUFACTURER, transfer_syntax_uid=ExplicitVRLittleEndian,
            patient_id=patient["id"], patient_name=f"{patient['id']}^", patient_sex=patient.get("sex"),
            series_description=description[:64], manufacturer_model_name=MANUFACTURER, software_versions=VERSION,
            content_date=when[0] if when else None, content_time=when[1] if when else None,
            specific_character_set="ISO_IR 192")
        if patient.get("age"):
            ds.PatientAge = patient["age"]
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]  # voxels of the warehouse volume, not a scanner's
        ds.DerivationDescription = "the radgenome-warehouse volume (int16 HU on its stored grid), unchanged"
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = ids.frame_of_reference, None
        ds.ImageOrientationPatient = plane[0].ImageOrientationPatient
        ds.ImagePositionPatient = positions[k][0].ImagePositionPatient
        ds.PixelSpacing, ds.SliceThickness = measures[0].PixelSpacing, measures[0].SliceThickness
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        ds.KVP = ds.AcquisitionNumber = ds.PatientPosition = None  # type 2: unknown
        set_pixels(ds, np.ascontiguousarray(hu[:, :, k].T))  # [row j, column i]
        yield ds


def set_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Store a slice JPEG-LS lossless (pyjpegls, which highdicom requires), or uncompressed where that is
    smaller, so a slice is never larger than its raw bytes (the dry run's bound)."""
    from pydicom.uid import JPEGLSLossless

    ds.set_pixel_data(pixels, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.compress(JPEGLSLossless, pixels, encoding_plugin="pyjpegls", generate_instance_uid=False)
    if len(ds.PixelData) >= pixels.nbytes:  # noise: back to Explicit VR Little Endian
        ds.set_pixel_data(pixels, "MONOCHROME2", 16, generate_instance_uid=False)


# -- the SEGs -----------------------------------------------------------------------------------------------
def write_case(c: Cohort, p: CasePlan, row: dict, stage: Path, when: tuple[str, str] | None) -> dict:
    """Write one case's CT series and SEGs; returns its manifest entry."""
    store = c.wh.arrays
    full_affine = store.grid(p.case_id).affine
    affine = shift_affine(full_affine, p.box[0])
    hu = store.image_box(p.case_id, p.box)  # the planned box: the whole grid, or the crop
    ids = Ids(c.wh.snapshot_id, p.case_id, p.box)
    patient = {"id": _patient_id(p.key, p.case_id), "sex": row.get("sex") if row.get("sex") in ("M", "F") else None,
               "age": f"{int(row['age']):03d}Y" if row.get("age") is not None and 0 <= row["age"] < 1000 else None}
    what = f"CT of {p.case_id}" + (f", cropped to {c.crop}" if c.crop else "")
    folder = stage / p.key / "ct"
    folder.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(p.shape[2])))
    cts, syntaxes = [], {}
    for k, ds in enumerate(ct_series(hu, affine, ids, patient, when, what)):
        ds.save_as(folder / f"{k + 1:0{width}d}.dcm", enforce_file_format=True)
        name = ds.file_meta.TransferSyntaxUID.name
        syntaxes[name] = syntaxes.get(name, 0) + 1
        del ds.PixelData  # the SEG needs the headers only
        cts.append(ds)
    del hu
    segs = [write_seg(c, p, s, n, cts, ids, full_affine, stage, when) for n, s in enumerate(p.segs)]
    meta = _json(row.get("metadata_json"))
    read_from = (f"DICOM series {meta['SeriesInstanceUID']}, whose study and instance UIDs the warehouse does "
                 "not keep" if meta.get("format") == "dicom" and meta.get("SeriesInstanceUID") else
                 "NIfTI" if meta.get("format") == "nifti" else "its source's files")
    return {
        "key": p.key,
        "ct_series": {
            "generated": f"from the warehouse volume (the case was read from {read_from}), as a new study",
            "folder": f"{p.key}/ct", "instances": len(cts), "transfer_syntaxes": syntaxes,
            "study_instance_uid": ids.study, "series_instance_uid": ids.ct_series,
            "frame_of_reference_uid": ids.frame_of_reference,
            "box": [list(p.box[0]), list(p.box[1])], "crop": c.crop},
        "seg": segs,
    }


def write_seg(c: Cohort, p: CasePlan, s: SegPlan, n: int, cts: list[Dataset], ids: Ids, full_affine: np.ndarray,
              stage: Path, when: tuple[str, str] | None) -> dict:
    """Write one SEG (a mask source's regions); returns its manifest entry."""
    hd = _highdicom()
    store = c.wh.arrays
    z0, z1 = s.z_range
    sub = (p.box[0][:2] + (p.box[0][2] + z0,), p.box[1][:2] + (p.box[0][2] + z1,))  # the slices with voxels
    ni, nj, _ = p.shape
    pixels = np.zeros((z1 - z0, nj, ni, len(s.regions)), np.uint8)  # (frame, row, column, segment)
    for m, region in enumerate(s.regions):
        part, part_affine = store.region_mask(p.case_id, region, crop=True, mask_source=s.source)
        if part.size:
            pixels[..., m] = paste(part, voxel_offset(full_affine, part_affine), sub, fill=False).T
    descriptions = [segment_description(m + 1, region, s.source) for m, region in enumerate(s.regions)]
    series = ids.uid("seg series", ids.box, s.source, *s.regions)
    sop = ids.uid("seg", ids.box, s.source, *s.regions)
    seg = hd.seg.Segmentation(
        source_images=cts[z0:z1], pixel_array=pixels, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=series, series_number=n + 2,
        sop_instance_uid=sop, instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=MANUFACTURER,
        software_versions=VERSION, device_serial_number=c.wh.snapshot_id,  # no device: the snapshot made it
        content_label=_content_label(s.source), content_description=f"{s.source} masks"[:64],
        series_description=f"{s.source} masks of {p.case_id}"[:64],
        content_date=when[0] if when else None, content_time=when[1] if when else None)
    _fixed_dimension_uid(seg, ids.uid("dimension organization", ids.box, s.source, *s.regions))
    seg.save_as(stage / s.rel, enforce_file_format=True)
    frames = [0] * len(s.regions)
    for item in seg.PerFrameFunctionalGroupsSequence:
        frames[int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber) - 1] += 1
    return {"file": s.rel, "mask_source": s.source, "algorithm_type": ALGORITHMS.get(s.source, ("MANUAL",))[0],
            "series_instance_uid": series, "sop_instance_uid": sop,
            "segments": [{"number": m + 1, "region": r, **_code_entry(d), "frames": frames[m]}
                         for m, (r, d) in enumerate(zip(s.regions, descriptions, strict=True))]}


def segment_description(number: int, region: str, source: str) -> Any:
    """A segment: the region's name as label, its SNOMED CT code where known (see the module docstring)."""
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    kind, modifier = region_code(region)
    algorithm_type, family = ALGORITHMS.get(source, ("MANUAL", None))
    algorithm = None if family is None else hd.AlgorithmIdentificationSequence(
        name=source[:64], family=getattr(codes.cid7162, family),
        version=VERSION if source in OWN_ALGORITHMS else "not recorded")
    r, g, b, _ = region_rgba(anatomy().get(region).region_id)
    desc = hd.seg.SegmentDescription(number, region[:64], codes.SCT.AnatomicalStructure, kind, algorithm_type,
                                     algorithm, display_color=hd.color.CIELabColor.from_rgb(r, g, b))
    if modifier is not None:  # highdicom takes no modifier: set on its type item (PS3.3 C.8.20.2)
        item = desc.SegmentedPropertyTypeCodeSequence[0]
        item.SegmentedPropertyTypeModifierCodeSequence = [hd.sr.CodedConcept(
            modifier.value, modifier.scheme_designator, modifier.meaning)]
    return desc


def region_code(name: str) -> tuple[Code, Code | None]:
    """The segmented property type of a region and its laterality modifier (or None)."""
    from pydicom.sr.codedict import codes

    own = _sct(name)
    if own is not None:
        return own, None
    side, _, rest = name.partition(" ")
    if side in ("left", "right") and (base := _sct(rest)) is not None:
        return base, codes.SCT.Left if side == "left" else codes.SCT.Right
    return codes.SCT.AnatomicalStructure, None


def _sct(name: str) -> Code | None:
    """pydicom's SNOMED CT concept meaning exactly `name`, if it is a Segmentation Property Type."""
    from pydicom.sr.codedict import codes

    keyword = "".join(w[:1].upper() + w[1:] for w in name.split())
    if not keyword.isidentifier():
        return None
    try:
        code = getattr(codes.SCT, keyword)
    except AttributeError:
        return None
    return code if code.meaning.lower() == name.lower() and code in codes.cid7151 else None


def _code_entry(desc: Any) -> dict:
    item = desc.SegmentedPropertyTypeCodeSequence[0]
    entry = {"type": f"{item.CodingSchemeDesignator} {item.CodeValue} {item.CodeMeaning}"}
    if "SegmentedPropertyTypeModifierCodeSequence" in item:
        mod = item.SegmentedPropertyTypeModifierCodeSequence[0]
        entry["modifier"] = f"{mod.CodingSchemeDesignator} {mod.CodeValue} {mod.CodeMeaning}"
    return entry


# -- small helpers ------------------------------------------------------------------------------------------
def _highdicom() -> Any:
    try:
        import highdicom
    except ImportError as e:
        raise ExportError(f"--format dicom-seg needs highdicom and pydicom ({e})",
                          hint="pip install 'radgenome-warehouse[dicom]'") from None
    return highdicom


def _version() -> str:
    try:
        return importlib.metadata.version("radgenome-warehouse")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version()


def _patient_id(key: str, case_id: str) -> str:
    """The case key as a DICOM LO (64 characters at most; a longer key keeps its own hash suffix)."""
    return key if len(key) <= 64 else f"{key[:55]}-{key.rsplit('-', 1)[-1][:8]}"


def _content_label(source: str) -> str:
    """A DICOM CS: 16 characters of upper case letters, digits, space and underscore."""
    label = "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in source.upper())[:16]
    return label or "MASKS"


def _snapshot_time(created: str | None) -> tuple[str, str] | None:
    """The snapshot's creation time (``2025-01-31T12:00:00Z``) as a DICOM date and time."""
    digits = "".join(ch for ch in str(created or "") if ch.isdigit())
    return (digits[:8], digits[8:14]) if len(digits) >= 14 else None


def _fixed_dimension_uid(seg: Dataset, uid: str) -> None:
    """Replace highdicom's random DimensionOrganizationUID with a deterministic one (every UID repeats)."""
    for item in (*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence):
        item.DimensionOrganizationUID = uid


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
