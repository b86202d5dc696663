"""The map component in a real browser: the image under the pointer, pictures instead of dots when
zoomed in, a box selection into the gallery, linked hover on Compare, and a class name with markup
shown as text."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from .conftest import upload_images

pytestmark = pytest.mark.e2e

READY = ".embedviz-map[data-state=ready]"
_POINT = """([m, j]) => {
  const gd = document.querySelectorAll('.embedviz-map-plot')[m];
  const fl = gd._fullLayout, r = gd.getBoundingClientRect();
  const traces = gd._fullData.filter(t => t.type === 'scattergl' && t.x && t.x.length && t.visible === true);
  let k = j;
  for (const t of traces) {
    if (k < t.x.length) {
      const c = t.customdata[k];
      return {x: r.left + fl._size.l + fl.xaxis.d2p(t.x[k]), y: r.top + fl._size.t + fl.yaxis.d2p(t.y[k]),
              row: Math.round(typeof c === 'number' ? c : c[0])};
    }
    k -= t.x.length;
  }
  return null;
}"""


def _open(page, url: str, path: str, maps: int = 1) -> None:
    page.goto(f"{url}/{path}")
    page.wait_for_function(f"n => document.querySelectorAll('{READY}').length >= n", arg=maps, timeout=300_000)
    page.wait_for_timeout(1000)


def _until(page, selector: str, nth: int, test: str, arg=None, timeout: int = 5_000) -> None:
    """Until the ``nth`` element that matches ``selector`` passes ``test`` (JavaScript over ``e`` and
    ``arg``), looked up afresh on every try: a rerun may put a new element where the old one was, and a
    handle to the old one would wait for ever."""
    page.wait_for_function("([selector, nth, arg]) => { const e = document.querySelectorAll(selector)[nth];"
                           f" return !!e && !!({test}); }}", arg=[selector, nth, arg], timeout=timeout)


def _hover(page, m: int, j: int) -> tuple[dict, str]:
    """Rest the pointer on point ``j`` of map ``m``; returns the point and the row the preview shows."""
    preview = page.locator(".embedviz-map-preview").nth(m)
    page.mouse.move(3, 3)  # off every map: the last preview goes
    _until(page, ".embedviz-map-preview", m, "!e.dataset.row")
    point = page.evaluate(_POINT, [m, j])
    page.mouse.move(point["x"] - 40, point["y"] - 40)
    page.mouse.move(point["x"], point["y"], steps=4)
    _until(page, ".embedviz-map-preview", m, "e.dataset.row")
    return point, preview.get_attribute("data-row")


def _grey(png: bytes, side: int = 8) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L").resize((side, side), Image.Resampling.BOX), dtype=float)


def test_resting_on_a_point_shows_its_own_image_beside_the_pointer(app_server, browser, artifacts):
    url, home = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, url, "Explore")
    differences = []
    for j in (3, 400, 1200):
        _hover(page, 0, j)
        tip = page.locator(".embedviz-map-preview").first
        image = page.locator(".embedviz-map-preview-image").first
        image.wait_for(state="visible")
        page.wait_for_timeout(300)  # the sheet decoded
        sample_id = tip.locator("div").nth(2).inner_text()  # the tip's first line: the image's id
        assert sample_id.startswith("digits/"), sample_id
        assert "label:" in tip.inner_text() and "prediction:" in tip.inner_text() and "confidence:" in tip.inner_text()
        [path] = list(home.glob(f"demo/*/{sample_id}"))
        shown = _grey(image.screenshot())
        truth = _grey(path.read_bytes())
        other = _grey(next(p for p in sorted(path.parent.glob("*.png")) if p.name != path.name).read_bytes())
        differences.append((np.abs(shown - truth).mean(), np.abs(shown - other).mean()))
        if j == 3:
            page.screenshot(path=str(artifacts / "map_hover_preview.png"))
    for own, _ in differences:
        assert own < 12, differences  # the file's own pixels (of 255), scaled into the preview
    assert np.mean([o for _, o in differences]) > 3 * np.mean([s for s, _ in differences]), differences
    page.close()


def test_zooming_in_draws_the_pictures_and_zooming_out_brings_the_dots_back(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, url, "Explore")
    root = page.locator(".embedviz-map").first
    assert root.get_attribute("data-pictures") == "0"  # 1,797 points in view: dots
    area = page.locator(".embedviz-map-plot .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + 30, area["y"] + 30)
    page.locator(".embedviz-map-plot .modebar-btn[data-title='Zoom']").first.click()
    x0, y0 = area["x"] + area["width"] * 0.3, area["y"] + area["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + area["width"] * 0.25, y0 + area["height"] * 0.25, steps=8)
    page.mouse.up()
    _until(page, ".embedviz-map", 0, "Number(e.dataset.pictures) > 0")
    drawn = int(root.get_attribute("data-pictures"))
    page.wait_for_timeout(300)
    canvas = page.locator(".embedviz-map-pictures").first.screenshot()
    assert (np.asarray(Image.open(io.BytesIO(canvas)).convert("L")) < 60).mean() > 0.02  # dark digit backgrounds
    page.screenshot(path=str(artifacts / "map_pictures_zoomed_in.png"))
    assert 0 < drawn <= 1500
    page.locator(".embedviz-map-plot .nsewdrag").first.dblclick(position={"x": 10, "y": 10})  # zoom back out
    _until(page, ".embedviz-map", 0, "e.dataset.pictures === '0'")
    page.close()


def test_a_box_drawn_on_the_component_fills_the_gallery(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, url, "Explore")
    area = page.locator(".embedviz-map-plot .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + 30, area["y"] + 30)
    page.locator(".embedviz-map-plot .modebar-btn[data-title='Box Select']").first.click()
    page.mouse.move(area["x"] + 5, area["y"] + 5)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.6, steps=10)
    page.mouse.up()
    heading = page.get_by_text("Selection · ", exact=False).first
    page.wait_for_function("e => /Selection · [1-9]/.test(e.textContent)", arg=heading.element_handle(),
                           timeout=60_000)
    count = int(heading.inner_text().split("·")[1].split("image")[0].replace(",", ""))
    assert 50 < count < 1797
    page.wait_for_function("() => document.querySelectorAll('[role=tabpanel] [data-testid=stImage]').length >= 6",
                           timeout=30_000)  # the gallery's first page, in the open Selection tab
    page.screenshot(path=str(artifacts / "map_box_selection.png"), full_page=True)
    page.close()


def test_hovering_a_point_on_compare_rings_the_same_image_in_the_other_map(app_server, browser, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, _ = app_server
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    _open(page, url, "Compare", maps=2)
    for j in (10, 500):
        _hover(page, 0, j)
        try:
            # the row the first map previews now (the pointer may have crossed other points on its way)
            _until(page, ".embedviz-map", 1, "e.dataset.linked && e.dataset.linked === "
                   "document.querySelectorAll('.embedviz-map-preview')[0].dataset.row")
        except PlaywrightTimeout as timeout:
            page.screenshot(path=str(artifacts / "map_linked_hover_failed.png"))
            raise AssertionError(page.evaluate("() => [...document.querySelectorAll('.embedviz-map')].map(m => "
                                               "[m.dataset.state, m.offsetWidth, m.dataset.linked, "
                                               "m.querySelector('.embedviz-map-preview').dataset.row])")) from timeout
    page.screenshot(path=str(artifacts / "map_linked_hover_compare.png"))
    page.mouse.move(5, 5)  # off the map: the ring goes
    _until(page, ".embedviz-map", 1, "!e.dataset.linked")
    page.close()


def test_a_class_named_like_markup_shows_as_text_in_the_preview(app_server, browser, artifacts, tmp_path):
    from ..conftest import make_image_folder, zip_folder

    hostile = "<img src=x onerror=alert(1)>"
    folder = make_image_folder(tmp_path / "shapes", per_class=12, seed=5)
    (folder / "squares").rename(folder / hostile)
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    upload_images(page, url, zip_folder(folder, tmp_path / "hostile.zip"))
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    page.wait_for_selector(READY, timeout=300_000)
    page.wait_for_timeout(1000)
    seen = ""
    for j in range(24):
        _hover(page, 0, j)
        seen = page.locator(".embedviz-map-preview").first.inner_text()
        if hostile in seen:
            break
    assert f"label: {hostile}" in seen, seen
    page.screenshot(path=str(artifacts / "map_hover_markup_as_text.png"))
    assert page.locator(".embedviz-map-preview img").count() == 0
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert dialogs == []
    page.close()
