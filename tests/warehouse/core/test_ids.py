"""`warehouse.core.ids.content_id`: the one recipe for deterministic row ids."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import ROOT
from warehouse.core.ids import MAX_SIZE, case_key, content_id


def test_same_parts_give_the_same_id_in_another_process():
    code = "from warehouse.core.ids import content_id; print(content_id('train_1_a_1.nii.gz', 3, None, 'lung', 1.5))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == content_id("train_1_a_1.nii.gz", 3, None, "lung", 1.5)


def test_separators_cannot_collide():
    assert content_id("a", "bc") != content_id("ab", "c")
    assert content_id("a\x1fb") != content_id("a", "b")
    assert content_id("a", "") != content_id("a")
    assert content_id("") != content_id()
    assert content_id(1, 2) != content_id(12)


def test_none_is_the_empty_string_as_in_csv():
    assert content_id("case", None, "x") == content_id("case", "", "x")


def test_parts_are_taken_as_text():
    assert content_id(3, 1.5) == content_id("3", "1.5")


def test_size_is_hex_digits_and_a_prefix():
    long = content_id("case", "lung", size=MAX_SIZE)
    assert len(long) == MAX_SIZE and int(long, 16) >= 0
    for size in (1, 8, 16, 20, 40):
        assert content_id("case", "lung", size=size) == long[:size]
    assert len(content_id("case")) == 20
    for bad in (0, -1, MAX_SIZE + 1):
        with pytest.raises(ValueError):
            content_id("case", size=bad)


def test_text_that_is_not_utf8_never_fails():
    assert len(content_id("bad\udcff.nii.gz")) == 20


def test_ids_imports_only_the_standard_library():
    code = ("import sys; before = set(sys.modules); import warehouse.core.ids; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in sys.stdlib_module_names "
            "and m.split('.')[0] != 'warehouse'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_case_key_is_readable_for_volume_names_and_injective():
    assert case_key("train_1_a_1.nii.gz") == "train_1_a_1"
    ids = ["train_1_a_1.nii.gz", "train_1_a_1", "train_1_a_1.nii", "a/b c.nii.gz", "a_b c.nii.gz", "demo-0001", "..",
           "__x.nii.gz", "_x.nii.gz", "x" * 300]
    keys = [case_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all(k[0].isalnum() and "/" not in k and " " not in k and len(k) < 100 for k in keys)
