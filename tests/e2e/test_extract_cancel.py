"""Cancel on the Extract page, in a real browser: the page keeps its button, sidebar and share link, and
one click on Extract resumes from where the extraction stopped."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROGRESS = r"(\d[\d,]*) / 601 images"


def _choose_folder_and_random_resnet18(page, url: str, folder) -> None:
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.get_by_label("Folder, archive or CSV/Parquet manifest").fill(str(folder))
    page.get_by_role("button", name="Use this path").click()
    page.wait_for_selector("text=601 images in 2 classes", timeout=60_000)
    page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    page.keyboard.type("resnet18")
    page.keyboard.press("Enter")
    page.locator("[data-testid='stRadio'] label", has_text="Random (untrained baseline)").click()
    page.wait_for_selector("text=Model: resnet18 (random", timeout=60_000)


def _progress_number(page) -> int:
    """The images done in the first progress bar that counts them (waits for one)."""
    found = page.wait_for_function(
        "re => { for (const p of document.querySelectorAll(\"[data-testid='stProgress']\")) {"
        " const m = p.textContent.match(new RegExp(re)); if (m) return m[1]; } return null; }",
        arg=PROGRESS, timeout=120_000, polling=50)
    return int(found.json_value().replace(",", ""))


def test_after_cancel_one_click_on_extract_resumes_where_it_stopped(app_server, browser, artifacts, data_root):
    from ..conftest import make_image_folder

    # 601 images: shards are one batch of 64 each, so a cancel keeps every batch it finished
    folder = make_image_folder(data_root / "cancel_me", per_class=300, seed=23)
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _choose_folder_and_random_resnet18(page, url, folder)
    page.locator(".st-key-sidebar_nav a", has_text="Extract").click()
    page.locator("[data-testid='stSelectbox']", has_text="Device").click()
    page.get_by_role("option", name="cpu", exact=True).click()  # slow enough to stop mid-way on any machine
    page.get_by_role("button", name="Extract features").click()
    page.wait_for_selector("text=/601 images · /", timeout=120_000)  # a batch done, with its rate
    page.get_by_role("button", name="Cancel extraction").click()

    warning = page.get_by_text(re.compile(r"Extraction cancelled at [\d,]+ of 601 images"))
    warning.wait_for(timeout=60_000)
    stopped = int(re.search(r"cancelled at ([\d,]+) of", warning.inner_text()).group(1).replace(",", ""))
    assert 0 < stopped < 601
    extract = page.get_by_role("button", name="Extract features")
    extract.wait_for(timeout=15_000)  # still there: extracting again is one click
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Share this view").wait_for(timeout=15_000)
    sidebar.get_by_text("cancel_me", exact=False).first.wait_for(timeout=15_000)  # the summary of the choice
    page.screenshot(path=str(artifacts / "extract_cancelled.png"), full_page=True)

    extract.click()
    first = _progress_number(page)
    assert first >= stopped, (first, stopped)  # it goes on from the finished part, not from 0
    page.get_by_text("Extracted 600 feature vectors", exact=False).wait_for(timeout=300_000)
    done = page.get_by_text("Extracted 600 feature vectors", exact=False).inner_text()
    assert f"{stopped:,} of them resumed from an earlier run" in done, done
