"""The released RadGenome-ChestCT and CT-RATE file formats, as tables (STYLE.md #4).

`RADGENOME_FILES` and `CT_RATE_FILES` map each released column onto a warehouse column.
The ingest readers (`ingest.sources.radgenome_csv`, `ingest.sources.ct_rate`) read with
them and `warehouse.exports.radgenome_csv` writes with them, so the round trip is one
table read in two directions. It sits below both in the flow: sources and exports import
it, it imports only the schema.

`NOT_GIVEN` (CT-RATE's empty report field) and `LICENCES` (the released datasets' terms,
which every export carries) are written here once, for the same readers and writers.
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.core.schema import CT_RATE_LABELS

NOT_GIVEN = "Not given."  # CT-RATE's empty report field; stored as null
RELEASE_EXTRACTOR = "radgenome-release"
REGION_FILES_EXTRACTOR = "radgenome-validation-regions"  # one file per top-level region (Reg2RG layout)
CT_RATE_LABEL_SOURCE = "ct_rate_predicted"  # case_labels.source of CT-RATE's predicted-label files
RELEASED_SOURCES = frozenset({RELEASE_EXTRACTOR, REGION_FILES_EXTRACTOR, CT_RATE_LABEL_SOURCE})
# The datasets the warehouse's data derive from, and their terms (exports cite them).
LICENCES: tuple[dict, ...] = (
    {"dataset": "RadGenome-ChestCT", "licence": "CC-BY-4.0",
     "url": "https://huggingface.co/datasets/RadGenome/RadGenome-ChestCT"},
    {"dataset": "CT-RATE", "licence": "CC-BY-NC-SA-4.0",
     "url": "https://huggingface.co/datasets/ibrahimhamamci/CT-RATE"},
)


@dataclass(frozen=True)
class ReleasedFile:
    """One released CSV kind: file name, columns, and the warehouse column each maps onto."""

    kind: str  # the part after the split: vqa_size -> train_vqa_size.csv
    table: str  # warehouse table the rows live in
    columns: tuple[tuple[str, str], ...]  # (released column, warehouse column), in file order
    folder: str  # folder inside the release's dataset/
    vqa_type: str | None = None
    split_names: tuple[str, str] = ("train", "validation")  # file prefixes for train, validation

    @property
    def header(self) -> list[str]:
        return [c for c, _ in self.columns]

    def file_name(self, split: str) -> str:
        return f"{self.split_names[split != 'train']}_{self.kind}.csv"


_V, _A = ("Volumename", "case_id"), ("Anatomy", "anatomy_path")
RADGENOME_FILES: dict[str, ReleasedFile] = {f.kind: f for f in (
    ReleasedFile("region_report", "sentences", (_V, _A, ("Sentence", "text")), "radgenome_files"),
    ReleasedFile("vqa_abnormality", "vqa", (_V, _A, ("Abnormality", "answer")), "radgenome_files", "abnormality"),
    # The location answer is the path itself: `answer` = `anatomy_path`, `term` = the abnormality.
    ReleasedFile("vqa_location", "vqa", (_V, _A, ("Abnormality", "term")), "radgenome_files", "location"),
    ReleasedFile("vqa_presence", "vqa", (_V, _A, ("Finding", "term"), ("Presence", "answer")), "radgenome_files",
                 "presence"),
    ReleasedFile("vqa_size", "vqa", (_V, _A, ("Abnormality", "term"), ("Size", "answer")), "radgenome_files",
                 "size"),
    ReleasedFile("case_disorders", "vqa", (_V, ("Disorders", "answer")), "radgenome_files", "disorders"),
)}
# Validation region files: the columns of a region report, one file per top-level region.
REGION_FILE = ReleasedFile("regions", "sentences", (_V, _A, ("Sentence", "text")), "radgenome_validation_regions")

CT_RATE_FILES: dict[str, ReleasedFile] = {f.kind: f for f in (
    ReleasedFile("reports", "reports", (("VolumeName", "case_id"), ("ClinicalInformation_EN", "clinical_information"),
                                        ("Technique_EN", "technique"), ("Findings_EN", "findings"),
                                        ("Impressions_EN", "impressions")), "radiology_text_reports"),
    ReleasedFile("metadata", "cases", (("VolumeName", "case_id"),), "metadata"),  # + every column, as released
    ReleasedFile("predicted_labels", "case_labels", (("VolumeName", "case_id"),)
                 + tuple((name, "value") for name in CT_RATE_LABELS), "multi_abnormality_labels",
                 split_names=("train", "valid")),
)}
