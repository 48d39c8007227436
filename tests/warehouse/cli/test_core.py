"""`radgenome demo`: builds the synthetic warehouse through every stage and prints the example queries."""

from __future__ import annotations

from typer.testing import CliRunner

from warehouse import Warehouse
from warehouse.cli import app


def test_demo_builds_and_prints_the_examples(tmp_path):
    r = CliRunner().invoke(app, ["demo", str(tmp_path), "--cases", "6", "--workers", "1"])
    assert r.exit_code == 0, r.output
    for title in ("under `lung` that mention a nodule", "per top-level region", "question-answer pairs"):
        assert title in r.output
    wh = Warehouse.open(tmp_path)
    types = set(wh.sql("SELECT DISTINCT type FROM vqa")["type"])
    assert types == {"abnormality", "presence", "location", "size", "disorders"}
    extractors = set(wh.sql("SELECT DISTINCT extractor FROM sentences")["extractor"])
    assert extractors == {"rules-0.1"}  # the structuring stage ran, not the generator's truth
    # every VQA region has a mask one call away (the union through the DAG where needed)
    row = wh.sql("""SELECT case_id, anatomy_path FROM vqa WHERE type = 'location' ORDER BY vqa_id LIMIT 1""").row(0)
    mask, _ = wh.region_mask(row[0], row[1])
    assert mask.any()
    assert wh.sql("SELECT count(*) AS n FROM ingest_errors")["n"][0] == 0
