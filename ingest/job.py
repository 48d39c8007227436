"""The contract between sources and the runner: one job per case, a dict of rows out.

A `CaseJob` is a picklable description of one case's inputs. Its `run` reads them,
writes the case's arrays into the staging array store it is given, and returns the
case's rows per table. It never writes rows itself: the build saves them, so the same
job runs on any runner (`ingest.runner.RUNNERS`: in process, in a process pool, or on Ray).
"""

from __future__ import annotations

import abc
import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.core.errors import WarehouseError
from warehouse.core.ids import content_id

Rows = dict[str, list[dict]]


def printable(text: object) -> str | None:
    """`text` with bytes that are not UTF-8 as ``\\xff`` and control characters escaped (None stays None)."""
    if text is None:
        return None
    s = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return re.sub("[\x00-\x1f\x7f-\x9f]", lambda m: m[0].encode("unicode_escape").decode(), s)


@dataclass
class JobContext:
    """What a job may touch: the staging array store of the build (a folder, or a URL in the bucket
    of a bucket root: workers on other machines write there directly)."""

    arrays_path: Path | str
    source: str


@dataclass
class CaseOutput:
    """A case's rows by table name, and its `ingest_errors` rows (partial failures)."""

    rows: Rows = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)

    def add(self, table: str, rows: Iterable[Mapping] | Mapping) -> None:
        """Add one row (a mapping) or several to `table`."""
        bucket = self.rows.setdefault(table, [])
        if isinstance(rows, Mapping):
            bucket.append(dict(rows))
        else:
            bucket.extend(dict(r) for r in rows)

    def error(self, source: str, message: str, *, case_id: str | None = None, stage: str | None = None,
              file: str | None = None, location: str | None = None) -> None:
        """Add an `ingest_errors` row, its texts made `printable`."""
        self.errors.append({"source": source, "case_id": printable(case_id), "stage": stage, "file": printable(file),
                            "location": printable(location), "error": printable(message)})

    def tables(self) -> Rows:
        """The rows by table, the errors as `ingest_errors` rows."""
        out = dict(self.rows)
        if self.errors:
            out["ingest_errors"] = out.get("ingest_errors", []) + self.errors
        return out


class CaseJob(abc.ABC):
    """One case's work. Subclasses are dataclasses of plain, picklable fields."""

    case_id: str
    stage: str = "ingest"

    @abc.abstractmethod
    def run(self, ctx: JobContext) -> CaseOutput:
        """Read the inputs, write arrays under `ctx.arrays_path`, return the rows."""


class Source(abc.ABC):
    """A source of cases: RadGenome release, CT-RATE, a folder of CTs, the demo.

    A build calls `bulk` then `jobs`, but each must work alone and in either order: what both need
    is read once, cached, by whichever comes first, never left as state one sets for the other.
    """

    name: str

    @abc.abstractmethod
    def jobs(self) -> Iterable[CaseJob]:
        """One job per case."""

    def bulk(self) -> Iterable[tuple[str, Rows]]:
        """Rows not produced per case (e.g. large CSVs read once): (part id, rows) chunks."""
        return ()

    def inputs(self) -> list[Path]:
        """Files and folders the build reads, for the manifest."""
        return []

    def build_key(self) -> str:
        """Identifies this build's inputs, so a re-run resumes the same staging folder."""
        return f"{self.name}-{content_id(self.name, *sorted(map(str, self.inputs())), size=12)}"


def run_job(job: CaseJob, ctx: JobContext) -> tuple[str, Rows]:
    """Run one job; any failure becomes an `ingest_errors` row instead of an exception."""
    try:
        return job.case_id, job.run(ctx).tables()
    except WarehouseError as e:
        msg, file, stage = e.message + (f" — {e.hint}" if e.hint else ""), e.file, e.stage or job.stage
    except Exception as e:  # a bad case never stops a build; the row says what happened
        tb = traceback.extract_tb(e.__traceback__)[-1]
        msg = f"{type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})"
        file, stage = None, job.stage
    return job.case_id, {"ingest_errors": [{"source": ctx.source, "case_id": job.case_id, "stage": stage,
                                            "file": file, "location": None, "error": msg}]}

