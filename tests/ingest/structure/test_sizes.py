"""Sizes written in reports: the text kept, the largest dimension in mm, implausible sizes left out."""

from __future__ import annotations

import pytest

from ingest.structure.sizes import SIZE_MAX_MM, parse_sizes


@pytest.mark.parametrize("text, mm, raw", [
    ("a nodule of 4.6 mm", 4.6, "4.6 mm"), ("a 2 cm mass", 20.0, "2 cm"), ("12x8 mm", 12.0, "12x8 mm"),
    ("12 x 8 x 5 mm", 12.0, "12 x 8 x 5 mm"), ("1.5x2 cm", 20.0, "1.5x2 cm"), ("2.3 and 3 mm", 3.0, "2.3 and 3 mm"),
    ("3-5 mm", 5.0, "3-5 mm"), ("10x8.6 cm", 100.0, "10x8.6 cm"), ("4,5 mm", 4.5, "4,5 mm"),
])
def test_sizes(text, mm, raw):
    (size,) = parse_sizes(text)
    assert size.mm == pytest.approx(mm) and size.text == raw


def test_no_size_in_levels_or_counts():
    assert parse_sizes("At the level of the T10 vertebra, 2 nodules and 9 HU density.") == []


@pytest.mark.parametrize("text, mm", [
    ("5mm", 5.0), ("4 MM", 4.0), ("12×8 mm", 12.0), ("4 – 6 mm", 6.0), ("3 to 5 millimeters", 5.0),
    ("2 centimetres", 20.0), ("1 cm x 8 mm", 10.0), ("8 mm x 2 cm", 20.0),  # each number takes the next unit
    ("12 x 8 cm x 4 mm", 120.0),
])
def test_units_spellings_and_mixed_units(text, mm):
    (size,) = parse_sizes(text)
    assert size.text == text and size.mm == pytest.approx(mm)


@pytest.mark.parametrize("text", [
    "0 mm", "0 x 0 mm", "1" + "0" * 400 + " mm", "100 cm",  # not above 0 and below 1 m: no size
    "12 x 8", "3 mmHg", "v1.5 mm",  # no unit; a unit that is not a length; a number inside a word
])
def test_what_is_not_a_size(text):
    assert parse_sizes(text) == []


def test_the_largest_size_below_a_metre_is_kept():
    (size,) = parse_sizes("99.9 cm")
    assert size.mm == pytest.approx(999.0) and size.mm < SIZE_MAX_MM


def test_every_size_with_its_span():
    text = "a 5 mm and a 12x8 mm nodule"
    sizes = parse_sizes(text)
    assert [(s.text, s.mm, s.start, s.end) for s in sizes] == [("5 mm", 5.0, 2, 6), ("12x8 mm", 12.0, 13, 20)]
    assert all(text[s.start:s.end] == s.text for s in sizes)
