"""The app in a real browser: the demo map draws on first start, and every page opens."""

from __future__ import annotations

import time

import pytest

from .conftest import points_drawn, serve, wait_for_map

pytestmark = pytest.mark.e2e

PAGES = [("", "home"), ("Data_and_model", "data_and_model"), ("Extract", "extract"), ("Reduce", "reduce"),
         ("Explore", "explore")]


def test_demo_map_draws_on_first_start(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.monotonic()
    page.goto(url)
    wait_for_map(page)
    seconds = time.monotonic() - start
    assert points_drawn(page) == 1797
    page.screenshot(path=str(artifacts / "demo_home.png"), full_page=True)
    print(f"demo map drawn {seconds:.1f} s after opening the page (cold store)")
    assert seconds < 60


@pytest.mark.parametrize("path,name", PAGES[1:])
def test_every_page_opens(app_server, browser, artifacts, path, name):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/{path}")
    page.wait_for_selector("h1", timeout=60_000)
    if name in ("reduce", "explore"):
        wait_for_map(page)
        assert points_drawn(page) == 1797
    else:
        page.wait_for_timeout(1500)
    assert page.locator(".stException").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    page.screenshot(path=str(artifacts / f"page_{name}.png"), full_page=True)


def test_lasso_fills_the_gallery(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    wait_for_map(page)
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    rx, ry = box["width"] * 0.22, box["height"] * 0.22
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in [(cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    heading = page.get_by_text("Selection · ", exact=False)
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => /Selection · [1-9]/.test(h.textContent))",
        timeout=60_000)
    count = int(heading.first.inner_text().split("·")[1].split()[0].replace(",", ""))
    assert 0 < count < 1797
    page.wait_for_selector("[data-testid='stImage'] img", timeout=30_000)
    images = page.locator("[data-testid='stImage'] img").count()
    assert images == min(count, 24)  # the first page of the gallery
    captions = page.locator("[data-testid='stImage']").first.inner_text()
    assert "label" in captions and "pred" in captions
    page.screenshot(path=str(artifacts / "explore_lasso.png"), full_page=True)


def test_second_start_is_a_cache_hit(app_server, browser, tmp_path):
    url, home = app_server
    warm = browser.new_page()
    warm.goto(url)
    wait_for_map(warm)  # the first server has stored features and the map
    with serve(home, tmp_path / "second.log") as second:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.monotonic()
        page.goto(f"{second}/Extract")
        page.wait_for_selector("text=Cache hit", timeout=60_000)
        page.goto(second)
        wait_for_map(page)
        print(f"second start: Extract page says cache hit and the map draws {time.monotonic() - start:.1f} s after opening")
        assert points_drawn(page) == 1797


def test_upload_a_zip_and_see_its_map(app_server, browser, artifacts, tmp_path):
    import zipfile

    from ..conftest import make_image_folder

    folder = make_image_folder(tmp_path / "shapes", per_class=12, seed=5)
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Upload").click()
    uploader = page.locator("[data-testid='stFileUploader']", has_text="A .zip/.tar of class folders")
    uploader.locator("input[type='file']").set_input_files(str(archive))
    page.get_by_role("button", name="Use these images").click()
    page.wait_for_selector("text=25 images in 2 classes", timeout=60_000)
    # A fresh page load is a new session; a user moves on through the sidebar, which keeps it.
    page.locator("[data-testid='stSidebarNav'] a", has_text="Explore").click()
    wait_for_map(page)
    assert points_drawn(page) == 24  # 25 image files; the unreadable one is left out
    assert "shapes.zip" in page.locator("[data-testid='stSidebar']").inner_text()
    page.screenshot(path=str(artifacts / "upload_zip_explore.png"), full_page=True)
