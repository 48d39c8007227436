"""A small source with arrays for export and loader tests: CTs, overlapping masks, reports, sentences.

Cases differ (seeded), grids are small and oblique-free but not axis-trivial (spacing
0.8 x 0.9 x 2.5 mm, an origin away from zero), one case has no CT and one an empty heart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.job import CaseJob, CaseOutput, JobContext, Source
from warehouse.core.anatomy import anatomy
from warehouse.store.arrays import ArrayStore

SHAPE = (40, 36, 20)
SPACING = (0.8, 0.9, 2.5)
SENTENCES = (
    ("lung", "Both lungs are aerated. A {n} mm nodule is seen in the left lower lobe."),
    ("left lung lower lobe", "A {n} mm nodule is seen in the left lower lobe."),
    ("heart", "Heart size is normal."),
    ("trachea and bronchie", "Trachea and both main bronchi are open."),
)


def affine_of(i: int) -> np.ndarray:
    """LPS-ordered grid: x to the left, y posterior, z superior (nibabel RAS world)."""
    a = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
    a[:3, 3] = (14.0 + i, 20.5, -100.0 - 2.5 * i)
    return a


def volumes(i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A CT in HU and binary masks (lobes overlap nothing; parents are unions through the DAG)."""
    rng = np.random.default_rng(i)
    x, y, z = np.indices(SHAPE)
    hu = np.full(SHAPE, 40, np.int16) + rng.integers(-20, 20, SHAPE).astype(np.int16)
    hu[(x < 2) | (x > 37)] = -1000
    right = (x >= 4 + i % 3) & (x < 17) & (y >= 5) & (y < 31) & (z >= 2) & (z < 18)
    left = (x >= 22) & (x < 35 - i % 2) & (y >= 5) & (y < 31) & (z >= 2) & (z < 18)
    hu[right | left] = -850
    heart = (x >= 16) & (x < 26) & (y >= 8 + i % 4) & (y < 20) & (z >= 3) & (z < 10)
    masks = {"right lung": right, "left lung upper lobe": left & (z >= 10), "left lung lower lobe": left & (z < 10),
             "heart": heart if i % 5 != 4 else np.zeros(SHAPE, bool),
             "trachea and bronchie": (x >= 19) & (x < 21) & (y >= 14) & (y < 17) & (z >= 12)}
    return hu, masks


@dataclass
class CohortJob(CaseJob):
    case_id: str
    index: int
    with_image: bool = True

    def run(self, ctx: JobContext) -> CaseOutput:
        dag, i = anatomy(), self.index
        hu, masks = volumes(i)
        store = ArrayStore(ctx.arrays_path, mode="a")
        if self.with_image:
            store.write_image(self.case_id, hu, affine_of(i))
        stats = store.write_masks(self.case_id, masks, affine_of(i), mask_source="demo")
        out = CaseOutput()
        split = "validation" if i % 2 else "train"
        out.add("cases", {"case_id": self.case_id, "split": split, "source": ctx.source, "has_image": self.with_image,
                          "shape_x": SHAPE[0], "shape_y": SHAPE[1], "shape_z": SHAPE[2], "has_masks": True})
        texts = [(r, t.format(n=3 + i)) for r, t in SENTENCES]
        findings = " ".join(t for r, t in texts if r != "left lung lower lobe")
        out.add("reports", {"case_id": self.case_id, "findings": findings,
                            "impressions": f"Nodule of {3 + i} mm." if i % 3 else None, "source": ctx.source})
        for k, (region, text) in enumerate(texts):
            out.add("sentences", {"sentence_id": f"{self.case_id}-{k}", "case_id": self.case_id,
                                  "region_id": dag.get(region).region_id, "anatomy_path": dag.path(region),
                                  "ordinal": k, "text": text, "is_abnormal": "nodule" in text, "extractor": "test"})
        out.add("region_stats", stats)
        return out


@dataclass
class CohortSource(Source):
    n: int = 6
    name: str = "cohort-test"
    without_image: tuple[int, ...] = (5,)

    def jobs(self):
        for i in range(self.n):
            split = "valid" if i % 2 else "train"
            yield CohortJob(f"{split}_{i + 1}_a_1.nii.gz", i, with_image=i not in self.without_image)
