"""`queries.header`: a library file's ``--`` header read into keys and typed `Param`s, its mistakes refused,
and the ``example`` line's ``k=v`` pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from queries import QueryHeaderError
from queries.header import HEADER_KEYS, parse_example, parse_header
from queries.library import load_query
from queries.params import PARAM_TYPES

GOOD = """-- name: {name}
-- description: A query for testing the header parser, long enough.
--   Continued here.
-- param region (region, default lung): A region.
-- param n (int, optional): A number.
-- returns: case_id
SELECT case_id FROM sentences WHERE region_id IS NOT NULL AND $region IS NOT NULL AND ($n IS NULL OR ordinal < $n)
"""


def write(tmp_path: Path, text: str, name: str = "q") -> Path:
    path = tmp_path / f"{name}.sql"
    path.write_text(text.replace("{name}", name))
    return path


def test_header_parser_reads_a_good_file(tmp_path):
    q = load_query(write(tmp_path, GOOD))
    assert q.description.endswith("long enough. Continued here.")
    assert [(p.name, p.type, p.required, p.default) for p in q.params] == [
        ("region", "region", False, "lung"), ("n", "int", False, None)]
    header, body = parse_header(GOOD)
    assert body.startswith("SELECT") and header["name"] == "{name}"


@pytest.mark.parametrize(("change", "message"), [
    (("-- returns: case_id", "-- colour: red"), "not a header line"),
    (("(int, optional)", "(integer, optional)"), "unknown type"),
    (("(int, optional)", "(int, maybe)"), "default VALUE"),
    (("(region, default lung)", "(region, default lungg)"), "bad default"),
    (("-- name: {name}", "-- name: other"), "differs from the file name"),
    (("-- description: A query", "-- summary: A query"), "not a header line"),
    (("AND ($n IS NULL OR ordinal < $n)", ""), "differ from those declared"),
    (("$region IS NOT NULL", "$region IS NOT NULL AND $m = 1"), "differ from those declared"),
    (("$region IS NOT NULL", "$region IS NOT NULL AND ? = 1"), "differ from those declared"),
    (("FROM sentences", "FROM read_csv('/etc/passwd')"), "table functions"),
    (("FROM sentences", "FROM secrets"), "unknown table"),
    (("FROM sentences", "FROM '/etc/passwd'"), "unknown table"),
])
def test_header_parser_refuses_mistakes(tmp_path, change, message):
    with pytest.raises(QueryHeaderError, match=message):
        load_query(write(tmp_path, GOOD.replace(*change)))


# -- parse_header on its own -------------------------------------------------------------------------
def test_the_header_ends_at_the_first_line_that_is_not_a_comment():
    text = "-- name: q\n-- description: first\n\n-- returns: later\nSELECT 1\n-- a comment in the SQL\n"
    header, body = parse_header(text)
    assert header == {"name": "q", "description": "first", "param": ()}
    assert body == "-- returns: later\nSELECT 1\n-- a comment in the SQL"  # not read as header keys


def test_indented_lines_continue_the_key_or_parameter_above():
    header, _ = parse_header("-- name: q\n--   continued\n-- param t (str): Some\n--    text.\n"
                             "-- returns: a,\n--  b\nSELECT 1")
    assert header["name"] == "q continued" and header["returns"] == "a, b"
    assert header["param"][0].description == "Some text."


def test_a_continuation_line_with_nothing_above_is_refused():
    with pytest.raises(QueryHeaderError, match="line 1: not a header line"):
        parse_header("--   orphan text\nSELECT 1")


@pytest.mark.parametrize(("spec", "expected"), [
    ("str", ("str", True, None, ())),
    ("int, default 20", ("int", False, 20, ())),
    ("float, default 5", ("float", False, 5.0, ())),
    ("bool, default yes", ("bool", False, True, ())),
    ("str, default 'a b'", ("str", False, "a b", ())),  # quotes are taken off a default
    ("str, default \"x\"", ("str", False, "x", ())),
    ("region, default LLL", ("region", False, "left lung lower lobe", ())),  # synonyms give the DAG name
    ("enum a| b |c, optional", ("enum", False, None, ("a", "b", "c"))),
    ("enum a|b, default B", ("enum", False, "b", ("a", "b"))),  # the declared spelling
    ("term, default nodules", ("term", False, "pulmonary nodule", ())),
])
def test_parameter_specs(spec, expected):
    header, _ = parse_header(f"-- param x ({spec}): An x.\nSELECT $x")
    p = header["param"][0]
    assert (p.type, p.required, p.default, p.choices) == expected and p.description == "An x."


@pytest.mark.parametrize(("text", "message"), [
    ("-- name: a\n-- name: b", "key 'name' given twice"),
    ("-- param x (int): A.\n-- param x (str): B.", "declared twice"),
    ("-- param x (enum |): A.", "enum without values"),
    ("-- param x (int, default ten): A.", "bad default: parameter 'x': expected an integer"),
    ("-- param x (enum a|b, default c): A.", "bad default"),
    ("-- param x int: no brackets", "not a header line"),
    ("-- param: x", "not a header line"),  # `param` is only read in its own form
])
def test_header_mistakes_name_the_line_or_parameter(text, message):
    with pytest.raises(QueryHeaderError, match=message) as e:
        parse_header(text + "\nSELECT 1", "f.sql")
    assert str(e.value).startswith("f.sql: ")


def test_header_keys_and_types_are_the_ones_the_hint_names():
    with pytest.raises(QueryHeaderError) as e:
        parse_header("-- nope: x")
    assert all(k in e.value.hint for k in HEADER_KEYS)
    with pytest.raises(QueryHeaderError) as e:
        parse_header("-- param x (colour): A.")
    assert all(t in e.value.hint for t in PARAM_TYPES)


# -- the example line ---------------------------------------------------------------------------------
def test_example_pairs_take_quotes_off():
    assert parse_example("term=nodule region='left lung' x=\"a b\" n=3", "q") == {
        "term": "nodule", "region": "left lung", "x": "a b", "n": "3"}
    assert parse_example("", "q") == {}


def test_an_example_without_pairs_is_refused():
    with pytest.raises(QueryHeaderError, match="example must read"):
        parse_example("nodule", "q.sql")
