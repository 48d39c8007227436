"""Exports: a snapshot's rows and arrays written out in formats other tools read.

`export_cohort` (`bundle`) writes a cohort bundle: the selected rows, NIfTI volumes and masks,
a MONAI datalist and the released CSVs of those cases.

`export_release` (`radgenome_csv`) writes the released RadGenome-ChestCT and CT-RATE CSVs,
the inverse of ``radgenome ingest radgenome``; the column mappings both directions share
are in `warehouse.core.release_format`.
"""

from __future__ import annotations

from warehouse.exports.bundle import ExportSummary, export_cohort
from warehouse.exports.radgenome_csv import export_release

__all__ = ["ExportSummary", "export_cohort", "export_release"]
