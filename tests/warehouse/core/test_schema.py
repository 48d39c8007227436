"""The schema module: every table and column documented, rows validated."""

from __future__ import annotations

import pytest

from warehouse.core import schema


@pytest.mark.parametrize("name", list(schema.TABLES))
def test_every_table_and_column_is_documented(name):
    s = schema.TABLES[name]
    assert schema.description(s), name
    for f in s:
        assert schema.description(f), f"{name}.{f.name} has no description"
    assert set(schema.sort_key(name)) <= set(s.names)


def test_unknown_columns_are_refused():
    with pytest.raises(ValueError, match="no columns"):
        schema.to_table("cases", [{"case_id": "x", "nope": 1}])


def test_ct_rate_labels_order():
    assert len(schema.CT_RATE_LABELS) == 18
    assert schema.CT_RATE_LABELS[0] == "Medical material"
    assert schema.CT_RATE_LABELS[-1] == "Interlobular septal thickening"
