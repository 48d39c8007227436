"""The tables every snapshot carries from the project's own data files, whatever the source."""

from __future__ import annotations

import pyarrow as pa

from warehouse.core.anatomy import anatomy
from warehouse.core.schema import REFERENCE_TABLES
from warehouse.core.terms import terms_table


def reference_tables() -> dict[str, pa.Table]:
    """`anatomy` and `anatomy_closure` (anatomy.toml) and `finding_terms` (finding_terms.toml)."""
    out = {**anatomy().tables(), "finding_terms": terms_table()}
    assert tuple(out) == REFERENCE_TABLES
    return out
