"""The core layer: the concepts every other layer shares, with no project imports of its own.

- `schema`: every table and column; `errors`: every error class
- `anatomy`: the region hierarchy (``anatomy.toml``); `terms`: the finding vocabulary
  (``finding_terms.toml``); `reference`: both as tables
- `ids`: deterministic row ids; `release_format`: the released RadGenome/CT-RATE files
- `grid`: `Grid` (shape, affine, spacing, orientation) and the one grid check; `boxes`: voxel boxes
"""
