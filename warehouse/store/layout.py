"""The layout of a warehouse root: every folder and file name, in one place.

A warehouse root::

    ROOT/
      snapshots/<id>/            one published snapshot (never modified again)
        tables/<table>.parquet   every table of `warehouse.core.schema` (the interchange copy)
        tables.duckdb            the same rows in DuckDB's own format (what the engine queries)
        arrays.zarr/             CT volumes and label layers (see `warehouse.store.arrays`)
        manifest.json            inputs (paths, sizes, hashes), versions, row counts: deterministic
        commit.json              what varies between identical builds: when it was made, claims tried
      staging/<build key>/       a build in progress (locked while it runs); the same command resumes it
        parts/, done/            per-case rows and their done markers
        arrays.zarr/             the arrays of the cases this build made
        commit/                  the next snapshot, assembled on its base before the claim
      warehouse.duckdb           views over the latest snapshot, for the plain duckdb shell (derived)

What each step writes and when: `warehouse.store.snapshot` (builds) and
`warehouse.store.commit` (publishing).
"""

SNAPSHOTS, STAGING, MANIFEST, COMMIT = "snapshots", "staging", "manifest.json", "commit.json"
TABLES_DIR, ARRAYS_DIR, DATABASE = "tables", "arrays.zarr", "tables.duckdb"
VIEWS, VIEWS_ID, ROOT_LOCK, BUILD_LOCK, CLAIM = (
    "warehouse.duckdb", ".warehouse.duckdb.id", ".commit.lock", "build.lock", "claim.json")
