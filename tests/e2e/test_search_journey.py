"""Issue 21 in a browser: a typed clip:ViT-B-32 (random weights) on a folder of the user's images, then a text
search on Explore's Search tab rings the best matches on the map and lists them, an uploaded image finds
its own point first, and zero-shot labels become a column."""

from __future__ import annotations

import pytest

from tests.conftest import make_image_folder

from .conftest import wait_for_map

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("open_clip")


def test_a_text_search_on_a_clip_map_rings_and_lists_its_best_matches(app_server, browser, data_root, artifacts):
    url, _ = app_server
    folder = make_image_folder(data_root / "search-shapes", per_class=10)
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.get_by_label("Folder, archive or CSV/Parquet manifest").fill(str(folder))
    page.get_by_role("button", name="Use this path").click()
    page.get_by_text("images in 2 classes", exact=False).first.wait_for(timeout=60_000)
    page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    page.keyboard.type("clip:ViT-B-32")
    page.keyboard.press("Enter")
    page.get_by_text("waiting for its weights", exact=False).first.wait_for(timeout=60_000)
    page.locator("[data-testid='stRadio'] label", has_text="Random (untrained baseline)").click()
    page.get_by_text("ViT-B-32 (random)", exact=False).first.wait_for(timeout=120_000)
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    wait_for_map(page, 300_000)  # extracted through the image tower first
    page.get_by_role("tab", name="Search").click()
    page.get_by_label("Search by text").fill("a bright square on a dark background")
    page.get_by_label("How many").fill("5")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("The 5 points most like", exact=False).first.wait_for(timeout=120_000)
    page.get_by_text("Ringed on the map: the 5 points most like", exact=False).first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stImage] img').length >= 5",
                           timeout=60_000)  # the best matches' images, in order
    wait_for_map(page)
    page.screenshot(path=str(artifacts / "search_tab.png"), full_page=True)

    # an uploaded image: the same file's own point is the most similar one
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(folder / "squares" / "03.png"))
    page.get_by_text("The 5 points most like the uploaded image", exact=False).first.wait_for(timeout=120_000)
    first = page.locator("[data-testid='stImage']").first
    first.wait_for(timeout=60_000)
    assert "03.png" in first.inner_text() and "squares" in first.inner_text()

    page.get_by_text("Zero-shot labels", exact=False).click()
    page.get_by_role("textbox", name="Class names, separated by commas").fill("discs, squares")
    page.get_by_role("button", name="Label every image").click()
    page.get_by_text("zero_shot and zero_shot_confidence are columns of the map", exact=False).wait_for(
        timeout=120_000)
    assert "they agree with the labels on" in page.content()
