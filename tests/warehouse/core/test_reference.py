"""`warehouse.core.reference.reference_tables`: the anatomy, its closure and the finding terms that
every snapshot carries, consistent with each other and with the DAG they come from."""

from __future__ import annotations

from collections import deque

from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.reference import reference_tables
from warehouse.core.terms import term_entries


def test_the_reference_tables_in_schema_order_with_their_schemas():
    tables = reference_tables()
    assert tuple(tables) == schema.REFERENCE_TABLES
    for name, table in tables.items():
        assert table.schema == schema.TABLES[name], name
        assert table.num_rows > 0, name
    assert tables["anatomy"].num_rows == len(anatomy())
    assert tables["finding_terms"].num_rows == len(term_entries())


def test_the_tables_are_the_same_on_every_call():
    a, b = reference_tables(), reference_tables()
    assert all(a[name].equals(b[name]) for name in schema.REFERENCE_TABLES)


def test_the_closure_is_the_transitive_closure_of_parent_ids():
    tables = reference_tables()
    regions = tables["anatomy"].to_pylist()
    ids = [r["region_id"] for r in regions]
    assert len(set(ids)) == len(ids) and len({r["name"] for r in regions}) == len(regions)
    children: dict[int, list[int]] = {i: [] for i in ids}
    for r in regions:
        for p in r["parent_ids"]:
            children[p].append(r["region_id"])
    want = {}
    for top in ids:  # shortest depth of every region under `top`, found from the anatomy table alone
        depth, queue = {top: 0}, deque([top])
        while queue:
            n = queue.popleft()
            for c in children[n]:
                if c not in depth:
                    depth[c] = depth[n] + 1
                    queue.append(c)
        want.update({(top, d): k for d, k in depth.items()})
    got = {(r["ancestor_id"], r["descendant_id"]): r["depth"] for r in tables["anatomy_closure"].to_pylist()}
    assert got == want
    assert tables["anatomy_closure"].num_rows == len(got)  # no pair twice


def test_a_known_path_through_the_closure():
    dag = anatomy()
    rid = {n: dag.get(n).region_id for n in ("lung", "left lung", "left lung lower lobe", "heart")}
    pairs = {(r["ancestor_id"], r["descendant_id"]): r["depth"] for r in reference_tables()["anatomy_closure"]
             .to_pylist()}
    assert pairs[rid["lung"], rid["left lung lower lobe"]] == 2
    assert pairs[rid["left lung"], rid["left lung lower lobe"]] == 1
    assert pairs[rid["lung"], rid["lung"]] == 0
    assert (rid["left lung lower lobe"], rid["lung"]) not in pairs and (rid["lung"], rid["heart"]) not in pairs


def test_finding_terms_point_at_anatomy_rows():
    tables = reference_tables()
    regions = {r["region_id"]: r for r in tables["anatomy"].to_pylist()}
    for t in tables["finding_terms"].to_pylist():
        region = regions[t["region_id"]]  # every term's region is a row of `anatomy`
        assert region["name"] == t["region"] and region["top_level"] == t["top_level"], t["term"]
        assert set(t["ct_rate_labels"]) <= set(schema.CT_RATE_LABELS)
