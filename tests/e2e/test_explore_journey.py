"""The Explore page as the tester of issue 17 used it: a selection that survives "Find clusters" on
the tab it was pressed on, a label filter whose every value shows, and a filter that keeps nothing."""

from __future__ import annotations

import contextlib

import pytest

from .conftest import wait_for_map

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_SELECTED = "() => { const h = [...document.querySelectorAll('h3')].find(h => /Selection · /.test(h.textContent));" \
            " return h ? parseInt(h.textContent.split('·')[1].replace(/,/g, '')) : null; }"


def _lasso(page, share: float) -> None:
    """Lasso the middle of the map: a square ``share`` of its width and height."""
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)  # the toolbar shows on hover
    page.locator(".js-plotly-plot .modebar-btn[data-title='Lasso Select']").first.click()
    cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    rx, ry = box["width"] * share / 2, box["height"] * share / 2
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in [(cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def test_find_clusters_keeps_the_selection_and_the_tab(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    wait_for_map(page, 300_000)  # the first test on a cold server extracts and reduces the demo
    _lasso(page, 0.7)
    page.wait_for_function(f"() => ({_SELECTED})() > 0", timeout=60_000)
    selected = page.evaluate(_SELECTED)
    assert 200 < selected < 1797  # more than a link carries, so the page adds a line about it

    page.get_by_role("tab", name="Clusters").click()
    page.get_by_role("button", name="Find clusters").click()
    page.get_by_text("clusters: k-means", exact=False).first.wait_for(state="attached", timeout=120_000)
    page.wait_for_function("() => location.search.includes('ev_color=cluster')", timeout=60_000)
    wait_for_map(page)  # the rerun that coloured the map by cluster has drawn it
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):  # until the gallery's heading has its count again
        page.wait_for_function(f"n => ({_SELECTED})() === n", arg=selected, timeout=30_000)
    page.screenshot(path=str(artifacts / "explore_clusters_keep_selection.png"), full_page=True)
    assert page.get_by_role("tab", name="Clusters").get_attribute("aria-selected") == "true"  # it was Selection
    assert page.evaluate(_SELECTED) == selected  # issue 17, item 4: it was 0 (the map keeps its selection)


def test_every_label_shows_and_a_filter_that_keeps_nothing_says_so(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    wait_for_map(page, 300_000)
    page.locator("[data-testid='stMultiSelect']", has_text="Filter on").first.click()
    page.keyboard.type("label")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    labels = page.locator("[data-testid='stMultiSelect']").nth(1)
    labels.locator("[data-tag]").nth(9).wait_for(state="attached", timeout=60_000)
    page.wait_for_timeout(500)
    area = labels.locator("[data-testid='stMultiSelectTagsContainer']").first.bounding_box()
    chips = [c.bounding_box() for c in labels.locator("[data-tag]").all()]
    assert len(chips) == 10
    seen = [c for c in chips if area["x"] - 1 <= c["x"] and c["x"] + c["width"] <= area["x"] + area["width"] + 1
            and area["y"] - 1 <= c["y"] and c["y"] + c["height"] <= area["y"] + area["height"] + 1]
    page.screenshot(path=str(artifacts / "explore_label_filter.png"), full_page=True)
    assert len(seen) == 10  # issue 17, item 16d: four showed, the rest scrolled out of sight

    labels.get_by_role("button", name="Clear all").click()
    page.get_by_text("The filters keep none of the 1,797 points", exact=False).first.wait_for(timeout=60_000)  # 16e
    page.screenshot(path=str(artifacts / "explore_filter_keeps_nothing.png"), full_page=True)
