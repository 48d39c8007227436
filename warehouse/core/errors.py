"""One root exception for the project, carrying the context a person needs to act.

Every error names what failed (case, file, stage) and is picklable, so it survives a
process pool or Ray and the CLI can print it as one line with an exit code.
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, case_id: str | None = None, file: str | None = None,
                 stage: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.case_id = case_id
        self.file = file
        self.stage = stage
        self.hint = hint

    def __reduce__(self):  # keep keyword context across pickling (process pools, Ray)
        return (_rebuild, (type(self), self.message, self.case_id, self.file, self.stage, self.hint))

    def __str__(self) -> str:
        parts = [self.message]
        ctx = ", ".join(f"{k}={v}" for k, v in
                        (("case", self.case_id), ("file", self.file), ("stage", self.stage)) if v)
        if ctx:
            parts.append(f"[{ctx}]")
        if self.hint:
            parts.append(f"— {self.hint}")
        return " ".join(parts)


def _rebuild(cls, message, case_id, file, stage, hint):
    return cls(message, case_id=case_id, file=file, stage=stage, hint=hint)


class UnknownRegionError(WarehouseError, KeyError):
    """A region name that is not in the anatomy DAG; the message names the closest ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return WarehouseError.__str__(self)


class NotAWarehouseError(WarehouseError, FileNotFoundError):
    """A folder that holds no published snapshot."""


class SnapshotNotFoundError(WarehouseError, FileNotFoundError):
    """A snapshot id that does not exist in the warehouse."""


class QueryRefusedError(WarehouseError):
    """User SQL that would write, attach, load extensions or read files."""


class IngestError(WarehouseError):
    """Bad input met while ingesting one case; becomes an `ingest_errors` row."""


class GridMismatchError(IngestError):
    """A mask whose grid (shape or affine) does not match its image."""


class ArrayNotFoundError(WarehouseError, KeyError):
    """A case or region with no array in the store."""

    def __str__(self) -> str:
        return WarehouseError.__str__(self)


class QueryLimitWarning(UserWarning):
    """A named query's result is as long as its `limit`: more rows may match (`Warehouse.query_total`)."""
