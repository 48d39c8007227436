"""The array store: CT volumes and region masks in one Zarr v3 store (OME-Zarr 0.5 metadata).

- `store`: `ArrayStore`, the one reader and writer of a warehouse's ``arrays/``
- `layers`: overlapping binary masks packed into a few integer label layers, and read back
- `parts`: parents stored as their parts (lung = its lobes) and expanded again
- `stats`: the `region_stats` rows measured from the layers
- `ome`: OME-NGFF metadata and the per-structure catalogue
- `io`: where the bytes are (a folder or a bucket) and opening and writing one array (zarr-python or
  TensorStore)
"""

from warehouse.store.arrays.store import CHUNK, FORMAT, ArrayStore

__all__ = ["CHUNK", "FORMAT", "ArrayStore"]
