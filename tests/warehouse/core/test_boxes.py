"""`warehouse.core.boxes`: a mask's tight bounding box (any dtype and memory layout) and the box
helpers (shape, slices, union, intersection, where one box lies in another)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.core.boxes import bounding_box, box_shape, inside, intersect, slices, union_box


def argwhere_box(mask: np.ndarray):
    """The box the slow way: every non-zero index."""
    idx = np.argwhere(mask)
    if not len(idx):
        return None
    return tuple(idx.min(0).tolist()), tuple((idx.max(0) + 1).tolist())


boxes = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12),
                  st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)).map(
    lambda t: ((t[0], t[1], t[2]), (t[0] + t[3], t[1] + t[4], t[2] + t[5])))


def cover(box, shape=(20, 20, 20)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[slices(box)] = True
    return m


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 17)] * 3), seed=st.integers(0, 2**31), order=st.sampled_from("CF"),
       dtype=st.sampled_from([np.uint8, np.bool_, np.float32]), flips=st.sets(st.integers(0, 2)))
def test_bounding_box_of_any_memory_layout(shape, seed, order, dtype, flips):
    rng = np.random.default_rng(seed)
    view = np.zeros(shape, dtype, order=order)
    view = np.flip(view, tuple(flips)) if flips else view  # nibabel's data flipped to L, P, S
    points = [tuple(int(rng.integers(0, n)) for n in shape) for _ in range(int(rng.integers(0, 4)))]
    for p in points:
        view[p] = 1
    want = (tuple(np.min(points, 0).tolist()), tuple((np.max(points, 0) + 1).tolist())) if points else None
    assert bounding_box(view) == want


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 7, 8, 16, 24])),
       seed=st.integers(0, 2**31), density=st.sampled_from([0.0, 0.01, 0.2, 1.0]),
       dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.uint16, np.float64, np.bool_]))
def test_bounding_box_matches_argwhere_for_every_dtype(shape, seed, density, dtype):
    # last axes of 8 and 16 take the 64-bit word path for one-byte masks; signed and float values
    # are negative here, which a max() over the raw values would miss
    rng = np.random.default_rng(seed)
    hit = rng.random(shape) < density
    values = np.where(hit, -1 if np.dtype(dtype).kind in "if" else 1, 0).astype(dtype)
    assert bounding_box(values) == argwhere_box(hit)


def test_bounding_box_of_a_transposed_and_sliced_view():
    base = np.zeros((10, 12, 14), np.uint8)
    base[2, 3, 4] = base[7, 9, 11] = 1
    view = base.transpose(2, 0, 1)  # neither C nor F contiguous: axes permuted
    assert bounding_box(view) == argwhere_box(view) == ((4, 2, 3), (12, 8, 10))
    strided = base[::2, ::3, ::1]  # a strided slice is scanned through a copy
    assert bounding_box(strided) == argwhere_box(strided)


def test_bounding_box_of_an_empty_and_a_full_mask():
    assert bounding_box(np.zeros((3, 4, 5), bool)) is None
    assert bounding_box(np.zeros((3, 4, 8), np.uint8)) is None
    assert bounding_box(np.ones((3, 4, 5), bool)) == ((0, 0, 0), (3, 4, 5))
    assert bounding_box(np.full((2, 2, 2), np.nan)) == ((0, 0, 0), (2, 2, 2))  # NaN is not zero


def test_box_shape_and_slices_cut_the_box():
    box = ((1, 2, 3), (4, 6, 9))
    assert box_shape(box) == (3, 4, 6)
    a = np.arange(10 * 10 * 10).reshape(10, 10, 10)
    assert a[slices(box)].shape == box_shape(box)
    assert a[slices(box)][0, 0, 0] == a[1, 2, 3] and a[slices(box)][-1, -1, -1] == a[3, 5, 8]


@given(a=boxes, b=boxes)
def test_union_and_intersection_agree_with_the_voxels(a, b):
    ma, mb = cover(a), cover(b)
    assert union_box([a, b]) == argwhere_box(ma | mb)
    got = intersect(a, b)
    assert got == argwhere_box(ma & mb)  # boxes intersect in a box; None when they only touch or miss
    assert intersect(b, a) == got


def test_union_skips_missing_boxes():
    a = ((0, 0, 0), (1, 1, 1))
    assert union_box([]) is None and union_box([None, None]) is None
    assert union_box([None, a]) == a
    assert union_box(iter([a, ((5, 0, 2), (6, 3, 3))])) == ((0, 0, 0), (6, 3, 3))  # any iterable, read once


def test_touching_boxes_do_not_intersect():
    assert intersect(((0, 0, 0), (2, 2, 2)), ((2, 0, 0), (4, 2, 2))) is None
    assert intersect(((0, 0, 0), (2, 2, 2)), ((1, 1, 1), (5, 5, 5))) == ((1, 1, 1), (2, 2, 2))


@given(inner=boxes, outer=boxes)
def test_inside_gives_where_the_inner_box_lies_in_the_outer_crop(inner, outer):
    where = inside(inner, outer)
    contained = all(o0 <= i0 and i1 <= o1 for i0, i1, o0, o1 in zip(*inner, *outer, strict=True))
    assert (where is not None) == contained
    if where is not None:
        crop = cover(inner)[slices(outer)]  # the inner box's voxels, cut to the outer box
        assert crop[where].all() and crop.sum() == crop[where].size


@pytest.mark.parametrize("inner", [((0, 0, 0), (3, 2, 2)), ((1, 1, 1), (2, 5, 2)), ((-1, 1, 1), (1, 2, 2))])
def test_inside_refuses_a_box_that_sticks_out(inner):
    assert inside(inner, ((0, 0, 0), (2, 4, 4))) is None
