"""Exports: a snapshot's rows and arrays written out in formats other tools read.

`export_release` (`radgenome_csv`) writes the released RadGenome-ChestCT and CT-RATE CSVs,
the inverse of ``radgenome ingest radgenome``; the column mappings both directions share
are in `warehouse.release_format`.
"""

from __future__ import annotations

from warehouse.exports.radgenome_csv import export_release

__all__ = ["export_release"]
