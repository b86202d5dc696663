"""The app in a real browser: the demo map draws on first start, and every page opens."""

from __future__ import annotations

import time

import pytest

from .conftest import points_drawn, wait_for_map

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
