"""Reduce in a real browser (issue 17): a map stays on screen while a 3-D map is computed."""

from __future__ import annotations

import pytest

from .conftest import points_drawn, wait_for_map

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Every 50 ms: the longest time with no drawn map on the page, and any title a drawn map had.
_WATCH = """() => {
  window.__gap = 0; window.__titles = new Set(); let since = null;
  window.__watch = setInterval(() => {
    const drawn = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p._fullData && p._fullData.length);
    const now = performance.now();
    if (drawn.length) { since = null; }
    else { since = since ?? now; window.__gap = Math.max(window.__gap, now - since); }
    drawn.forEach(p => {
      const t = p._fullLayout && p._fullLayout.title && p._fullLayout.title.text; if (t) window.__titles.add(t);
    });
  }, 50);
}"""


def test_the_2d_map_stays_on_screen_while_the_3d_map_is_computed(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/Reduce")
    page.get_by_text("1,797 points · t-SNE 2-D", exact=False).wait_for(timeout=300_000)  # a cold store: extract and map
    wait_for_map(page)
    page.evaluate(_WATCH)
    page.locator("[data-testid='stButtonGroup'] button", has_text="3-D").first.click()
    page.get_by_text("1,797 points · t-SNE 3-D", exact=False).wait_for(timeout=120_000)
    wait_for_map(page)
    gap, titles = page.evaluate("() => { clearInterval(window.__watch); return [window.__gap, [...window.__titles]]; }")
    page.screenshot(path=str(artifacts / "reduce_3d.png"), full_page=True)
    assert any("The 2-D map, shown while the 3-D map is computed" in title for title in titles)
    assert gap < 1_000, f"no map on the page for {gap:.0f} ms while the 3-D map was computed"
    assert points_drawn(page) == 1797
    assert page.locator(".stException").count() == 0
