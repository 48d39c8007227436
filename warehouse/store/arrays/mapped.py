"""A snapshot's arrays spread over several stores: each case's group in the store that wrote it.

A bucket root keeps every build's arrays in a store of its own (``ROOT/arrays/<build key>/``,
written there directly by the build's workers) and each snapshot lists, in ``arrays.json``, which
store holds each of its cases. A case carried over from the snapshot before is referenced, not
copied: publishing costs no array requests, and a 12 TB warehouse is not rewritten per snapshot.
`MappedArrays` reads such a snapshot with `ArrayStore`'s read methods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.ids import case_key
from warehouse.store.arrays.store import ArrayStore

MAP_FORMAT = 1


class MappedArrays:
    """Read-only arrays of cases whose groups are in different stores (`stores`: case key -> store
    location). Opens each store on first use; pickles as its map alone (a worker opens its own)."""

    def __init__(self, stores: Mapping[str, str | Path], path: str = "") -> None:
        self.stores, self.path, self.mode = dict(stores), path, "r"
        self._open: dict[str, ArrayStore] = {}

    @classmethod
    def from_file(cls, map_file: Path, root_url: str) -> MappedArrays:
        """The map a snapshot's ``arrays.json`` holds, its store paths relative to `root_url`."""
        data = json.loads(map_file.read_text())
        stores = {key: f"{root_url}/{store}" for store, keys in data["stores"].items() for key in keys}
        return cls(stores, f"{root_url}/arrays")

    def __getstate__(self) -> dict:
        return {"stores": self.stores, "path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["stores"], state["path"])

    def __repr__(self) -> str:
        return f"MappedArrays({self.path!r}, {len(self.stores):,} cases)"

    def _store(self, case_id: str) -> ArrayStore:
        location = self.stores.get(case_key(case_id))
        if location is None:
            raise ArrayNotFoundError(f"no case {case_id!r} in the arrays of this snapshot ({self.path})",
                                     case_id=case_id)
        key = str(location)
        if key not in self._open:
            self._open[key] = ArrayStore(location, mode="r")
        return self._open[key]

    def cases(self) -> list[str]:
        """Case ids with arrays, sorted."""
        by_store: dict[str, set[str]] = {}
        for key, location in self.stores.items():
            by_store.setdefault(str(location), set()).add(key)
        out = []
        for location, keys in by_store.items():
            out += [c for c in ArrayStore(location, mode="r").cases() if case_key(c) in keys]
        return sorted(out)

    def has_image(self, case_id: str) -> bool:
        return case_key(case_id) in self.stores and self._store(case_id).has_image(case_id)

    def image(self, case_id: str) -> Any:
        return self._store(case_id).image(case_id)

    def image_box(self, case_id: str, box: Any) -> Any:
        return self._store(case_id).image_box(case_id, box)

    def grid(self, case_id: str) -> Any:
        return self._store(case_id).grid(case_id)

    def structures(self, case_id: str) -> list[dict]:
        return self._store(case_id).structures(case_id)

    def region_bbox(self, case_id: str, region: Any, mask_source: str | None = None) -> Any:
        return self._store(case_id).region_bbox(case_id, region, mask_source)

    def region_mask(self, case_id: str, region: Any, crop: bool = False, mask_source: str | None = None) -> Any:
        return self._store(case_id).region_mask(case_id, region, crop=crop, mask_source=mask_source)

    def region_crop(self, case_id: str, region: Any, margin_mm: float = 10.0, mask_source: str | None = None) -> Any:
        return self._store(case_id).region_crop(case_id, region, margin_mm=margin_mm, mask_source=mask_source)


def open_arrays(location: Path | str | MappedArrays) -> ArrayStore | MappedArrays:
    """A snapshot's arrays for reading, from what `Snapshot.arrays_location` gives."""
    return location if isinstance(location, MappedArrays) else ArrayStore(location, mode="r")
