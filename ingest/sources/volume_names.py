"""CT-RATE / RadGenome volume names and the folder layouts built from them.

A volume name is ``<split>_<patient>_<scan>_<reconstruction>.nii.gz``, e.g.
``train_1_a_1.nii.gz``: patient ``train_1``, scan ``a``, reconstruction 1. The releases
file a volume under folders derived from its name, and the two differ:

=============  =====================================================================
CT-RATE        ``dataset/{train,valid}/train_1/train_1_a/train_1_a_1.nii.gz``
RadGenome      ``dataset/{train,valid}_preprocessed/train_1002/train_1002b/train_1002_b_1.nii.gz``
               (the scan folder drops the underscore)
RadGenome mask ``<split>_{region,anatomy}_mask/seg_train_1_a_1/<structure>.nii.gz``
=============  =====================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from warehouse.core.errors import IngestError

# Split prefix in a volume name -> the split name the warehouse (and RadGenome's CSVs) use.
SPLITS: dict[str, str] = {"train": "train", "valid": "validation"}
# The same split as the folder names of each release spell it.
FOLDER_SPLIT: dict[str, str] = {"train": "train", "validation": "valid"}

# A case id that is safe as a file name, a Zarr key and an SQL literal's content: letters (any script),
# digits, space and ``. _ - + ( )``, not starting with a dot, dash or space.
_SAFE_NAME = re.compile(r"^(?![.\- ])[\w .+()-]{1,200}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME = re.compile(r"^(?P<split>train|valid)_(?P<patient>\d+)_(?P<scan>[a-z]+)_(?P<rec>\d+)(?P<ext>\.nii(?:\.gz)?)?$")
_MASK_MEMBER = re.compile(r"(?:^|/)seg_(?P<stem>[^/]+)/(?P<structure>[^/]+?)\.nii(?:\.gz)?$")


@dataclass(frozen=True)
class VolumeName:
    """The parts of a volume name."""

    split: str  # train or validation
    patient: int
    scan: str
    reconstruction: int

    @property
    def prefix(self) -> str:
        return {v: k for k, v in SPLITS.items()}[self.split]

    @property
    def patient_id(self) -> str:
        return f"{self.prefix}_{self.patient}"

    @property
    def scan_id(self) -> str:
        """The scan across patients (``train_1_a``): the letter alone repeats in every patient."""
        return f"{self.patient_id}_{self.scan}"

    @property
    def stem(self) -> str:
        return f"{self.patient_id}_{self.scan}_{self.reconstruction}"

    @property
    def case_id(self) -> str:
        return f"{self.stem}.nii.gz"

    def ct_rate_path(self) -> PurePosixPath:
        """Where CT-RATE files the volume, relative to ``dataset/``."""
        return PurePosixPath(self.prefix, self.patient_id, f"{self.patient_id}_{self.scan}", self.case_id)

    def radgenome_image_path(self) -> PurePosixPath:
        """Where RadGenome files the preprocessed volume, relative to ``dataset/`` (no '_' before the scan)."""
        return PurePosixPath(f"{self.prefix}_preprocessed", self.patient_id, f"{self.patient_id}{self.scan}",
                             self.case_id)

    def mask_folder(self, kind: str) -> PurePosixPath:
        """``<prefix>_<kind>_mask/seg_<stem>`` for kind ``region`` or ``anatomy``."""
        return PurePosixPath(f"{self.prefix}_{kind}_mask", f"seg_{self.stem}")

    def as_row(self) -> dict:
        """The `cases` columns a volume name decides."""
        return {"patient_id": self.patient_id, "scan": self.scan, "scan_id": self.scan_id,
                "reconstruction": self.reconstruction, "split": self.split}


def parse(name: str) -> VolumeName:
    """Parse ``train_1_a_1.nii.gz`` (or its stem); raises `IngestError` for anything else."""
    m = _NAME.match(name.strip())
    if not m:
        raise IngestError(f"not a CT-RATE volume name: {name!r}", stage="read",
                          hint="expected <train|valid>_<patient>_<scan letter>_<reconstruction>.nii.gz, "
                               "e.g. train_1_a_1.nii.gz")
    return VolumeName(split=SPLITS[m["split"]], patient=int(m["patient"]), scan=m["scan"],
                      reconstruction=int(m["rec"]))


def case_name_problem(name: str) -> str | None:
    """Why `name` cannot be a case id (a path, a separator, a control character, bytes that are not
    UTF-8, shell or quote characters), or None for a good one. CT-RATE volume names are good; so are
    other file names of letters, digits, space and ``. _ - + ( )`` (a hospital's ``scan_0042.nii.gz``)."""
    if not name.strip():
        return "an empty case name"
    if re.search("[\udc80-\udcff]", name):
        return "the case name is not valid UTF-8"
    if _CONTROL.search(name):
        return "the case name holds control characters"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "the case name is a path (it holds / or \\); give the volume's file name, e.g. train_1_a_1.nii.gz"
    if not _SAFE_NAME.match(name):
        bad = "".join(sorted({c for c in name if not re.match(r"[\w .+()-]", c)}))
        why = (f"holds {bad!r}" if bad else f"is {len(name)} characters long" if len(name) > 200
               else "starts with a dot, dash or space")
        return f"the case name {why}; a case name is letters, digits, space and . _ - + ( ), e.g. train_1_a_1.nii.gz"
    return None


def try_parse(name: str) -> VolumeName | None:
    """`parse`, or None."""
    try:
        return parse(name)
    except IngestError:
        return None


def split_of_file(name: str) -> str | None:
    """The split a released file's name starts with: ``validation_vqa_size.csv`` -> validation."""
    low = PurePosixPath(name).name.lower()
    for prefix in ("validation", "valid", "train"):
        if low.startswith(prefix + "_") or low == prefix:
            return SPLITS.get(prefix, prefix)
    return None


def mask_member(path: str) -> tuple[str, str] | None:
    """``(case_id, structure)`` for a mask file path ``.../seg_<stem>/<structure>.nii.gz``, else None."""
    m = _MASK_MEMBER.search(path)
    if not m:
        return None
    vol = try_parse(m["stem"])
    case_id = vol.case_id if vol else f"{m['stem']}.nii.gz"
    return case_id, m["structure"]


def image_case_id(path: str) -> str | None:
    """The case id of an image file named like a volume (``.../train_1_a_1.nii.gz``), else None."""
    vol = try_parse(PurePosixPath(path).name)
    return vol.case_id if vol else None
