"""Exports: a snapshot's rows and arrays written out in formats other tools read.

`export_release` (`radgenome_csv`) writes the released RadGenome-ChestCT and CT-RATE CSVs,
the inverse of ``radgenome ingest radgenome``; `RADGENOME_FILES` and `CT_RATE_FILES` are
the column mappings both directions share.
"""

from __future__ import annotations

from warehouse.exports.radgenome_csv import CT_RATE_FILES, RADGENOME_FILES, ReleasedFile, export_release

__all__ = ["CT_RATE_FILES", "RADGENOME_FILES", "ReleasedFile", "export_release"]
