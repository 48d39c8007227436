"""`queries.params`: the parameter types (strings from the CLI converted, Python values checked) and a
named query's binding (given values converted, defaults filled, mistakes named)."""

from __future__ import annotations

import math

import pytest

from queries import Param, ParameterError, get_query, render
from queries.params import PARAM_TYPES
from warehouse.core.schema import CT_RATE_LABELS


def test_parameters_are_converted_from_strings():
    _, p = render("cases_region_volume", region="lung/lung/left lung", min_ml="12.5", max_ml="100")
    assert p == {"region": "left lung", "min_ml": 12.5, "max_ml": 100.0}
    _, p = render("vqa_by_type_region", type="Presence", limit="7")
    assert p == {"type": "presence", "region": "lung", "limit": 7}
    _, p = render("top_abnormalities")
    assert p == {"top": 20, "split": None}


@pytest.mark.parametrize(("name", "params", "message"), [
    ("sentences_mentioning", {}, "'term' is required"),
    ("sentences_mentioning", {"term": "x", "limit": "ten"}, "expected an integer"),
    ("sentences_mentioning", {"term": "x", "limit": True}, "boolean"),
    ("sentences_mentioning", {"term": 5}, "expected text"),
    ("sentences_mentioning", {"term": "x", "colour": "red"}, "no parameter 'colour'"),
    ("sentences_mentioning", {"term": "x", "region": "lungg"}, "unknown anatomy region"),
    ("sentences_mentioning", {"term": "x", "region": "lung' OR 1=1 --"}, "unknown anatomy region"),
    ("cases_region_volume", {"min_ml": "nan"}, "finite"),
    ("vqa_by_type_region", {"type": "disorders"}, "not one of"),
    ("cohort_by_label", {"label": "lung nodle"}, "did you mean 'Lung nodule'"),
    ("label_prevalence_by_sex_age", {"label": "nodule"}, "not a CT-RATE class"),
])
def test_bad_parameters_are_refused(name, params, message):
    with pytest.raises(ParameterError, match=message):
        render(name, **params)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("Yes", True), ("0", False), ("off", False),
                                            (False, False)])
def test_bool_parameters(raw, value):
    assert Param("flag", "bool", "A flag.").convert(raw) is value


def test_ct_rate_labels_take_ct_rates_spelling_from_any_case():
    assert render("cohort_by_label", label="  pleural EFFUSION")[1]["label"] == "Pleural effusion"
    assert render("label_prevalence_by_sex_age")[1]["label"] is None


def test_bool_parameters_refuse_other_values():
    with pytest.raises(ParameterError, match="true or false"):
        Param("flag", "bool", "A flag.").convert("maybe")


def test_unknown_region_error_names_close_ones():
    with pytest.raises(ParameterError) as e:
        render("findings_by_status", region="left lung lowr lobe")
    assert "left lung lower lobe" in str(e.value)


def test_float_defaults_survive_binding():
    q = get_query("finding_size_distribution")
    assert math.isclose(q.bind(term="nodule")["bin_mm"], 5.0)


# -- each type on its own --------------------------------------------------------------------------------
@pytest.mark.parametrize(("type_", "raw", "value"), [
    ("int", " +7 ", 7), ("int", "-3", -3), ("int", 4.0, 4), ("int", 12, 12),
    ("float", "1e2", 100.0), ("float", 3, 3.0), ("float", " 2.5 ", 2.5),
    ("str", "  kept as given ", "  kept as given "),
    ("region", "LLL", "left lung lower lobe"), ("region", "lung/lung/left lung", "left lung"),
    ("term", "nodules", "pulmonary nodule"),
    ("ct_rate_label", "lung NODULE", "Lung nodule"),
])
def test_types_convert(type_, raw, value):
    out = Param("x", type_, "An x.").convert(raw)
    assert out == value and type(out) is type(value)


@pytest.mark.parametrize(("type_", "raw", "message"), [
    ("int", 2.5, "expected an integer, got 2.5"),
    ("int", "1.0", "expected an integer"),
    ("int", "", "expected an integer"),
    ("int", None, "'x' is required"),
    ("float", True, "got a boolean"),
    ("float", "inf", "finite"),
    ("float", "-inf", "finite"),
    ("float", [1.0], "expected a number"),
    ("str", b"bytes", "expected text, got bytes"),
    ("bool", 1, "true or false"),  # an int is not a boolean, even 1
    ("region", 5, "expected text"),
    ("term", "no such finding", "unknown finding term"),
    ("ct_rate_label", "zzz", "not a CT-RATE class; the classes:"),  # nothing close: no guess
])
def test_types_refuse(type_, raw, message):
    with pytest.raises(ParameterError, match=message) as e:
        Param("x", type_, "An x.").convert(raw)
    assert str(e.value).startswith("parameter 'x'")


def test_an_unknown_term_keeps_its_hint():
    with pytest.raises(ParameterError) as e:
        Param("t", "term", "A term.").convert("zzzz")
    assert "finding_terms" in (e.value.hint or "")


def test_enum_choices_match_in_any_case_and_give_the_declared_spelling():
    p = Param("split", "enum", "A split.", choices=("train", "Validation"))
    assert p.convert(" VALIDATION ") == "Validation" and p.convert("train") == "train"
    with pytest.raises(ParameterError, match="'test' is not one of train, Validation"):
        p.convert("test")


def test_optional_parameters_take_none_and_required_ones_refuse_it():
    assert Param("n", "int", "N.", default=None, required=False).convert(None) is None
    with pytest.raises(ParameterError, match=r"parameter 'n' is required \(int\)"):
        Param("n", "int", "N.").convert(None)


def test_signatures_show_type_and_default():
    assert Param("n", "int", "N.").signature() == "n: int"
    assert Param("n", "int", "N.", default=5, required=False).signature() == "n: int = 5"
    assert Param("r", "region", "R.", default="lung", required=False).signature() == "r: region = 'lung'"
    assert Param("s", "enum", "S.", None, False, ("a", "b")).signature() == "s: enum a|b = null"


def test_every_type_is_documented_and_every_ct_rate_class_converts_to_itself():
    assert all(t.help and t.name == name for name, t in PARAM_TYPES.items())
    p = Param("label", "ct_rate_label", "A label.")
    assert [p.convert(c.upper()) for c in CT_RATE_LABELS] == list(CT_RATE_LABELS)


def test_binding_fills_defaults_and_names_unknown_parameters():
    q = get_query("sentences_mentioning")  # term (str), region (default lung), limit (default 1000)
    assert q.bind(term="nodules") == {"region": "lung", "term": "nodules", "limit": 1000}  # str: not resolved
    assert get_query("cases_with_without").bind(with_term="nodules", without_term="Pleural Effusion") == {
        "with_term": "pulmonary nodule", "without_term": "pleural effusion"}  # term: resolved
    with pytest.raises(ParameterError) as e:
        q.bind(term="x", colour="red")
    assert "region, term, limit" in e.value.hint
