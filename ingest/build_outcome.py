"""How a build ends when it publishes nothing: the errors it raises and the staging it leaves.

A build whose inputs yield no case, or whose every case failed, raises `BuildFailedError`
(publishing nothing, its staging removed so a re-run starts afresh, the first errors in the
message since there is no snapshot to query them in); Ctrl-C raises `BuildInterrupted`, the
finished cases staying staged so the same command resumes.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.ipc as ipc

from ingest.job import Source
from warehouse.core.errors import WarehouseError
from warehouse.store.snapshot import SnapshotWriter

ERRORS_SHOWN = 5  # ingest errors a failed build names


class BuildFailedError(WarehouseError):
    """A build that published nothing: its inputs yield no cases, or every case failed.

    `errors` holds the first few `ingest_errors` rows (there is no snapshot to query them in).
    """

    exit_code = 1

    def __init__(self, message: str, *, errors: list[dict] | None = None, error_count: int = 0,
                 **context: str | None) -> None:
        super().__init__(message, **context)
        self.errors = list(errors or [])
        self.error_count = error_count

    @property
    def details(self) -> list[str]:
        """One line per error shown, then how many more there were."""
        lines = [f"  {_error_line(e)}" for e in self.errors[:ERRORS_SHOWN]]
        if self.error_count > len(lines):
            lines.append(f"  ... and {self.error_count - len(lines)} more")
        return lines


class BuildInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a kill) during a build: the finished cases are saved and a re-run resumes."""

    exit_code = 130

    def __init__(self, saved: int, staging: Path) -> None:
        super().__init__(saved, staging)
        self.saved, self.staging = saved, staging

    def __str__(self) -> str:
        return f"interrupted; run the same command again to resume ({self.saved} cases saved in {self.staging})"


def staged_rows(writer: SnapshotWriter) -> bool:
    """Whether an earlier, interrupted run of this build saved rows beyond `ingest_errors`."""
    parts, done = writer.staging / "parts", {p.name for p in (writer.staging / "done").iterdir()}
    return any(p.stem in done for d in parts.iterdir() if d.name != "ingest_errors" for p in d.glob("*.arrow"))


def _staged_errors(writer: SnapshotWriter) -> list[dict]:
    d, done = writer.staging / "parts" / "ingest_errors", {p.name for p in (writer.staging / "done").iterdir()}
    files = sorted(p for p in d.glob("*.arrow") if p.stem in done) if d.is_dir() else []
    return [row for p in files for row in ipc.open_file(p).read_all().to_pylist()]


def failed(source: Source, writer: SnapshotWriter, cases: int, root_existed: bool) -> BuildFailedError:
    """The error of a build with nothing to publish; its staging (and a root it created) is removed."""
    errors = _staged_errors(writer)
    discard(writer, root_existed)
    n = len(errors)
    if cases == 0 and n == 0:
        inputs = [str(p) for p in source.inputs()]
        shown = ", ".join(inputs[:3]) + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else "")
        return BuildFailedError(f"nothing published: the inputs yield no cases ({shown or 'no input files'})",
                                hint="check the input paths and what they hold")
    what = f"every case failed ({cases} cases" if cases else "no case could be read (0 cases"
    return BuildFailedError(f"nothing published: {what}, {n} ingest_errors)", errors=errors, error_count=n,
                            hint="fix the inputs the errors name and run the same command again")


def discard(writer: SnapshotWriter, root_existed: bool) -> None:
    """Remove a build's staging (and staging/ when left empty), and a root it created and left empty."""
    writer.discard()
    if not root_existed:
        try:
            writer.root.rmdir()  # only when empty: a warehouse's other builds and snapshots stay
        except OSError:
            pass


def _error_line(e: dict) -> str:
    """An `ingest_errors` row as one line: stage, message, then case, file and location."""
    where = ", ".join(str(e[k]) for k in ("case_id", "file", "location") if e.get(k))
    return f"{e.get('stage') or 'error'}: {e.get('error')}" + (f" [{where}]" if where else "")
