"""A tiny in-test source: rows only, deterministic, with an optional failing case."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.job import CaseJob, CaseOutput, JobContext, Source
from warehouse.core.anatomy import anatomy


@dataclass
class TinyJob(CaseJob):
    case_id: str
    fail: bool = False

    def run(self, ctx: JobContext) -> CaseOutput:
        if self.fail:
            raise ValueError("this case is broken on purpose")
        a = anatomy()
        out = CaseOutput()
        out.add("cases", {"case_id": self.case_id, "split": "train", "source": ctx.source})
        for i, region in enumerate(("left lung lower lobe", "heart", "right lung upper lobe")):
            r = a.get(region)
            out.add("sentences", {"sentence_id": f"{self.case_id}-{i}", "case_id": self.case_id,
                                  "region_id": r.region_id, "anatomy_path": a.path(region), "ordinal": i,
                                  "text": f"A {4 + i} mm nodule in the {region}.", "is_abnormal": i != 1,
                                  "extractor": "tiny"})
        return out


@dataclass
class TinySource(Source):
    n: int = 3
    failing: tuple[str, ...] = ()
    name: str = "tiny"

    def jobs(self):
        for i in range(self.n):
            cid = f"train_{i + 1}_a_1.nii.gz"
            yield TinyJob(cid, fail=cid in self.failing)
