"""The store layer: where a warehouse's bytes live and how they become visible.

- `snapshot`: the writer of a build (Parquet tables, manifest) and the reader of published snapshots
- `commit`: the commit contract that publishes a build atomically (claim, rebase, views)
- `arrays`: the Zarr array store (CT volumes, label layers, OME metadata, region statistics)

It depends only on `warehouse.core`; `ingest` writes through it and the surface reads through it.
"""
