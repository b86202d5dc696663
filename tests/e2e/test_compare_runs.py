"""Issue 17 in a real browser: a run opened from the Runs page keeps its colours (item 10), and
every button on the Compare page shows its whole label (item 16g)."""

from __future__ import annotations

import pytest

from .conftest import wait_for_map

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_LEGEND = ("() => { const p = document.querySelector('.js-plotly-plot');"
           " return p && p._fullData ? p._fullData.filter(t => t.showlegend !== false && t.x && t.x.length)"
           ".map(t => String(t.name)) : []; }")


# Buttons on the page whose label does not show whole: text overflowing inside the button, or the
# button reaching past an ancestor that clips (a column too narrow for a segmented control).
_CLIPPED = """() => {
  const clips = e => getComputedStyle(e).overflowX !== 'visible';
  return [...document.querySelectorAll('[data-testid="stMain"] button')]
    .filter(b => b.offsetParent !== null && b.innerText.trim())
    .filter(b => {
      const inside = [b, ...b.querySelectorAll('*')];
      if (inside.some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)) return true;
      const r = b.getBoundingClientRect();
      for (let a = b.parentElement; a && a.dataset.testid !== 'stMain'; a = a.parentElement) {
        const c = a.getBoundingClientRect();
        if (clips(a) && (r.right > c.right + 1 || r.left < c.left - 1)) return true;
      }
      return false;
    })
    .map(b => b.innerText.trim());
}"""


def test_a_run_opened_from_runs_is_coloured_by_label(app_server, browser, artifacts):
    url, _ = app_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/Explore")
    wait_for_map(page, 240_000)  # a cold store: the demo's features and map are made first
    page.get_by_label("Colour by").first.click()  # what a view without labels leaves behind
    page.get_by_role("option", name="(none)", exact=True).click()
    page.wait_for_function(f"() => ({_LEGEND})().length <= 1", timeout=60_000)

    page.locator(".st-key-sidebar_nav a", has_text="Runs").click()
    card = page.locator("[class*='st-key-run_card_']", has_text="map · by you").first
    card.get_by_text("t-SNE (default settings) · 2-D, seed 0", exact=False).wait_for(timeout=60_000)
    card.get_by_role("button", name="Open").click()
    page.wait_for_url("**/Explore**", timeout=60_000)
    wait_for_map(page)
    page.wait_for_function(f"() => ({_LEGEND})().length === 10", timeout=60_000)
    assert sorted(page.evaluate(_LEGEND)) == [str(d) for d in range(10)]  # the digits' labels
    assert page.locator(".stException").count() == 0
    page.screenshot(path=str(artifacts / "runs_reopened_by_label.png"), full_page=True)
    context.close()


def test_every_button_on_compare_shows_its_whole_label(app_server, browser, artifacts):
    url, _ = app_server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/Reduce?ev_method=PCA")  # the Compare maps follow the Reduce page's method: quick
    wait_for_map(page, 240_000)
    page.locator(".st-key-sidebar_nav a", has_text="Compare").click()
    try:
        page.locator("[data-testid='stMain'] button", has_text="Wrong").wait_for(timeout=240_000)
    finally:
        page.screenshot(path=str(artifacts / "compare_buttons.png"), full_page=True)
    page.wait_for_timeout(500)
    clipped = page.evaluate(_CLIPPED)
    page.screenshot(path=str(artifacts / "compare_buttons.png"), full_page=True)
    assert "Wrong" in page.locator("[data-testid='stMain']").inner_text()
    assert clipped == [], clipped
    context.close()
