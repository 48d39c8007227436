"""`MappedArrays`: one snapshot's cases read from the stores that hold them."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.ids import case_key
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays.mapped import MappedArrays, open_arrays


def write_case(store: ArrayStore, case_id: str, size: int) -> None:
    hu = np.full((12, 12, 12), -1000, np.int16)
    heart = np.zeros((12, 12, 12), bool)
    heart[2:2 + size, 3:7, 3:7] = True
    hu[heart] = 40
    store.write_image(case_id, hu, np.eye(4))
    store.write_masks(case_id, {"heart": heart}, np.eye(4), mask_source="test")


def test_cases_are_read_from_the_store_the_map_names(tmp_path):
    a, b = ArrayStore(tmp_path / "a.zarr"), ArrayStore(tmp_path / "b.zarr")
    write_case(a, "one.nii.gz", 2)
    write_case(a, "two.nii.gz", 3)  # superseded by b's: the map names b for it
    write_case(b, "two.nii.gz", 5)
    (tmp_path / "arrays.json").write_text(json.dumps(
        {"format": 1, "stores": {"a.zarr": [case_key("one.nii.gz")], "b.zarr": [case_key("two.nii.gz")]}}))
    arrays = MappedArrays.from_file(tmp_path / "arrays.json", str(tmp_path))
    assert arrays.cases() == ["one.nii.gz", "two.nii.gz"] and arrays.has_image("two.nii.gz")
    assert arrays.region_mask("one.nii.gz", "heart")[0].sum() == 2 * 16
    assert arrays.region_mask("two.nii.gz", "heart")[0].sum() == 5 * 16  # b's version
    hu, mask, _ = arrays.region_crop("two.nii.gz", "heart", margin_mm=0)
    assert hu.shape == mask.shape == (5, 4, 4) and (hu[mask] == 40).all()
    assert arrays.region_bbox("one.nii.gz", "heart") == ((2, 3, 3), (4, 7, 7))
    with pytest.raises(ArrayNotFoundError, match="no case 'three.nii.gz'"):
        arrays.image("three.nii.gz")
    assert not arrays.has_image("three.nii.gz")
    again = pickle.loads(pickle.dumps(arrays))  # what a DataLoader worker gets: the map, no open stores
    assert again.stores == arrays.stores and not again._open
    assert open_arrays(again) is again and isinstance(open_arrays(tmp_path / "a.zarr"), ArrayStore)
