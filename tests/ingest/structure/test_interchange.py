"""The JSON contract for LLM backends: the rules output round-trips into the same rows."""

from __future__ import annotations

import pytest

from ingest.structure.backend import RulesBackend
from ingest.structure.interchange import OUTPUT_SCHEMA, parsed_from_json, to_json
from ingest.structure.report import assemble
from warehouse.core.errors import WarehouseError

TEXT = ("Trachea, both main bronchi are open. Thoracic aorta diameter is normal. A 4.6 mm nodule is observed in "
        "the left lung lower lobe. Pleural effusion-thickening was not detected.")


def test_rules_output_round_trips_through_json():
    parsed = RulesBackend.parse(TEXT, "Nodule.")
    again = parsed_from_json(to_json(parsed))
    a, b = assemble("v", parsed, "rules-0.1"), assemble("v", again, "rules-0.1")
    assert a.region_report_rows() == b.region_report_rows()
    assert [(f["term"], f["status"], f["size_mm"], f["laterality"], f["anatomy_path"]) for f in a.findings] == [
        (f["term"], f["status"], f["size_mm"], f["laterality"], f["anatomy_path"]) for f in b.findings]
    assert a.label_values() == b.label_values()
    assert set(OUTPUT_SCHEMA["properties"]["sentences"]["items"]["required"]) <= set(to_json(parsed)["sentences"][0])


def test_model_answers_are_checked():
    ok = {"sentences": [{"text": "Nodule in the LLL.", "regions": ["LLL"],
                         "findings": [{"term": "pulmonary nodule", "raw_text": "Nodule", "status": "present"}]}]}
    (p,) = parsed_from_json(ok)
    assert p.grounding.regions == ("left lung lower lobe",) and p.grounding.top_levels == ("lung",)
    assert p.mentions[0].region == "left lung lower lobe" and p.is_abnormal is True
    with pytest.raises(WarehouseError, match="sentence 1"):
        parsed_from_json({"sentences": [{"text": "x", "regions": ["the moon"], "findings": []}]})
    with pytest.raises(WarehouseError, match="status 'maybe'"):
        parsed_from_json({"sentences": [{"text": "x", "regions": [], "findings": [
            {"term": "nodule", "raw_text": "x", "status": "maybe"}]}]})


def test_answers_that_do_not_fit_the_schema_name_the_field_and_what_was_expected():
    def problem(sentence: dict) -> str:
        with pytest.raises(WarehouseError) as caught:
            parsed_from_json({"sentences": [{"text": "x", "regions": [], "findings": []}, sentence]})
        (line,) = str(caught.value).splitlines()  # one line
        return line.removeprefix("answer does not fit the schema: ").removesuffix(" [stage=structure]")

    finding = {"term": "pulmonary nodule", "raw_text": "nodule", "status": "present"}
    # wrong types, at every depth
    assert problem({"text": 5, "regions": [], "findings": []}) == "sentence 2: text 5 is not of type 'string'"
    assert problem({"text": "x", "regions": ["lung", 3], "findings": []}) == (
        "sentence 2: regions[1] 3 is not of type 'string'")
    assert problem({"text": "x", "regions": [], "findings": [finding, {**finding, "size_mm": "4 mm"}]}) == (
        "sentence 2, finding 2: size_mm '4 mm' is not of type 'number', 'null'")
    # missing fields
    assert problem({"text": "x", "regions": []}) == "sentence 2: 'findings' is a required property"
    assert problem({"text": "x", "regions": [], "findings": [{"term": "nodule", "status": "present"}]}) == (
        "sentence 2, finding 1: 'raw_text' is a required property")
    with pytest.raises(WarehouseError, match="answer: 'sentences' is a required property"):
        parsed_from_json({"sentence": []})
    with pytest.raises(WarehouseError, match="answer: sentences 'x' is not of type 'array'"):
        parsed_from_json({"sentences": "x"})
