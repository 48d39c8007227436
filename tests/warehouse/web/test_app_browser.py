"""The web app in a real browser: Debian's chromium driven by Playwright (no browser download).

Home page -> a named query -> a case -> a sentence: the overlay drawn is the sentence's region (the
viewer's state, and its colour in the canvas's pixels). The case page's screenshot is saved to
build/screenshots/case_page.png (the README shows a copy). Skipped, saying why, without chromium or
without the vendored viewer (`make web`).
"""

from __future__ import annotations

import colorsys
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.web import served
from warehouse.core.ids import case_key
from warehouse.web.app import viewer_built

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"
# WebGL2 without a GPU: ANGLE on SwiftShader, chromium's software renderer.
ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)"),
    pytest.mark.skipif(not viewer_built(), reason="the viewer is not vendored: run `make web` (npm registry)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], errors  # no script error on any page a test opened


def _hue_pixels(png: bytes, rgba: list[int]) -> int:
    """Pixels of the screenshot whose hue is the region colour's (opacity blends it with grey, which keeps
    its hue): how much of the region is drawn."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(float) / 255
    hue = np.array([colorsys.rgb_to_hsv(*c) for c in rgb[::3]])  # every third pixel is plenty
    target = colorsys.rgb_to_hsv(*(np.array(rgba[:3]) / 255))[0]
    near = np.minimum(abs(hue[:, 0] - target), 1 - abs(hue[:, 0] - target)) < 0.03
    return int((near & (hue[:, 1] > 0.25) & (hue[:, 2] > 0.15)).sum())


def _pick_sentence(page) -> dict:
    """A sentence with a mask whose colour is far from the crosshair's yellow and from grey."""
    info = page.evaluate("fetch(`/api/case/${location.pathname.split('/').pop()}`).then(r => r.json())")
    regions = {r["region_id"]: r for r in info["regions"]}
    for s in info["sentences"]:
        r = regions.get(s["region_id"])
        if r is None or not r["has_mask"]:
            continue
        h, sat, _ = colorsys.rgb_to_hsv(*(np.array(r["rgba"][:3]) / 255))
        if min(abs(h - 1 / 6), 1 - abs(h - 1 / 6)) > 0.12 and sat > 0.4:
            return {"sentence": s, "region": r, "info": info}
    pytest.fail("no sentence of the case has a mask in a colour the pixel check can tell apart")


def _click_sentence_and_check(page, wh) -> dict:
    picked = _pick_sentence(page)
    s, r = picked["sentence"], picked["region"]
    canvas = page.locator("#viewer")
    before = _hue_pixels(canvas.screenshot(), r["rgba"])
    page.click(f".sentence[data-sentence-id='{s['sentence_id']}']")
    page.wait_for_function("window.viewerState.overlays.length === 1")
    page.wait_for_timeout(300)  # one more frame drawn
    state = page.evaluate("window.viewerState")
    assert state["overlays"] == [r["region_id"]] and state["selected"] == r["region_id"]
    assert np.allclose(state["crosshairMM"], r["centre_mm"])
    after = _hue_pixels(canvas.screenshot(), r["rgba"])
    assert before < 20 < after, (before, after)  # the region's colour appears where nothing had it
    return picked


def test_query_case_sentence_overlay(page, demo_wh, tmp_path):
    with served(demo_wh, tmp_path) as url:
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#schema details").count() == 11
        page.click("a[data-query=sentences_mentioning]")
        page.fill("#param-term", "bronch")
        page.click("#run-query")
        page.wait_for_selector("table.result a.case-link")
        want = demo_wh.query("sentences_mentioning", term="bronch")
        assert page.locator("table.result tbody tr").count() == want.height
        first = page.locator("table.result a.case-link").first
        case_id = first.inner_text()
        first.click()
        page.wait_for_selector("body[data-ready=true]")
        assert page.url.endswith(f"/case/{case_key(case_id)}")
        assert page.evaluate("window.viewerState.error") is None
        picked = _click_sentence_and_check(page, demo_wh)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "case_page.png"))
        # a region lists its sentences: the whole subtree's, as SQL over the closure counts them
        r = picked["region"]
        page.click(f"#regions label[data-region='{r['name']}'] a")
        n = demo_wh.sql("""SELECT count(*) AS n FROM sentences WHERE case_id = $c AND region_id IN
                           (SELECT descendant_id FROM anatomy_closure WHERE ancestor_id = $r)""",
                        {"c": case_id, "r": r["region_id"]})["n"][0]
        assert page.locator("#region-details h4").first.inner_text() == f"Sentences ({n})"
        # toggling another region adds its overlay
        other = next(x for x in picked["info"]["regions"] if x["region_id"] != r["region_id"])
        page.check(f"#regions input[value='{other['region_id']}']")
        page.wait_for_function("window.viewerState.overlays.length === 2")


def test_errors_show_one_line_pages(page, demo_wh, tmp_path):
    with served(demo_wh, tmp_path) as url:
        page.goto(f"{url}/case/nope")
        assert "no case with key 'nope'" in page.inner_text("#message")
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#sql", "DELETE FROM cases")
        page.click("#run-sql")
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert "read-only" in page.inner_text("#error") and "\n" not in page.inner_text("#error")


def test_a_real_ct_case_page(page, real_ct_wh, tmp_path):
    with served(real_ct_wh, tmp_path) as url:
        page.goto(f"{url}/open?case_id=abdomen_small.nii.gz")
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("window.viewerState.error") is None
        _click_sentence_and_check(page, real_ct_wh)


def test_a_result_exports_as_a_cohort_after_its_dry_run(page, demo_wh, tmp_path):
    with served(demo_wh, tmp_path / "exports") as url:
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#sql", "SELECT case_id FROM cases ORDER BY case_id LIMIT 2")
        page.click("#run-sql")
        page.wait_for_selector("#export:not([hidden])")
        assert page.is_disabled("#export-run")  # the count comes first
        page.fill("#export-name", "two")
        page.check("#export-images")
        page.click("#export-count")
        page.wait_for_function("document.getElementById('export-summary').textContent.includes('would write')")
        assert not list((tmp_path / "exports").glob("*"))
        page.click("#export-run")
        page.wait_for_function("document.getElementById('export-summary').textContent.startsWith('wrote 2 cases')")
        assert sorted(p.name for p in (tmp_path / "exports" / "two" / "images").iterdir()) == sorted(
            f"{case_key(c)}.nii.gz" for c in demo_wh.sql("SELECT case_id FROM cases ORDER BY case_id LIMIT 2")[
                "case_id"])


def test_a_released_case_without_a_ct_still_links_sentences_to_regions(page, real_warehouse, tmp_path):
    from warehouse import Warehouse

    with Warehouse.open(real_warehouse) as wh, served(wh, tmp_path) as url:
        case_id, region_id = wh.sql("""SELECT case_id, region_id FROM sentences WHERE region_id IS NOT NULL
                                       ORDER BY case_id, ordinal LIMIT 1""").row(0)
        n = wh.sql("""SELECT count(*) AS n FROM sentences WHERE case_id = $c AND region_id IN
                      (SELECT descendant_id FROM anatomy_closure WHERE ancestor_id = $r)""",
                   {"c": case_id, "r": region_id})["n"][0]
        page.goto(f"{url}/case/{case_key(case_id)}")
        page.wait_for_selector("body[data-ready=true]")
        assert "no CT image" in page.evaluate("window.viewerState.error") and page.is_hidden("#viewer-box")
        page.click(f".sentence[data-region-id='{region_id}'] >> nth=0")
        assert page.is_visible("#region-panel")
        assert page.locator("#region-details h4").first.inner_text() == f"Sentences ({n})"
        assert page.evaluate("window.viewerState.overlays") == []
