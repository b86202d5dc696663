"""The Point page in a real browser, in one session: the Explore page's link opens the point it
names even after an earlier visit, and Back returns to where the user was."""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import wait_for_map

pytestmark = pytest.mark.e2e

_HEADING = "() => document.querySelector('[data-testid=stMain] h3')?.textContent || ''"


def _click_point(page, index: int) -> None:
    """Click the ``index``-th point of the map's first trace, where plotly draws it."""
    x, y = page.evaluate(
        "i => { const p = document.querySelector('.js-plotly-plot');"
        " const t = p._fullData.find(t => t.x && t.x.length > i && !String(t.name).startsWith('highlighted'));"
        " const xa = p._fullLayout.xaxis, ya = p._fullLayout.yaxis, r = p.getBoundingClientRect();"
        " return [r.left + xa._offset + xa.l2p(t.x[i]), r.top + ya._offset + ya.l2p(t.y[i])]; }", index)
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => /Selection · 1 image(?!s)/.test(h.textContent))",
        timeout=60_000)


def _point_shown(page, expected: str | None = None) -> str:
    """The id of the point the Point page shows, once it has settled (on ``expected``, if it comes)."""
    page.get_by_text("A point up close").wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({_HEADING})().includes(' · label')", timeout=60_000)
    if expected is not None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with contextlib.suppress(PlaywrightTimeout):  # a wrong point is reported by the caller's assert
            page.wait_for_function(f"p => ({_HEADING})().startsWith(p + ' ')", arg=expected, timeout=20_000)
    page.wait_for_timeout(1500)  # let reruns the link triggered finish
    return page.evaluate(_HEADING).split(" · ")[0].strip()


def _address_point(page) -> str | None:
    return parse_qs(urlsplit(page.url).query).get("ev_point", [None])[0]


def _neighbours(page) -> str:
    return page.locator("[data-testid='stNumberInput']", has_text="Neighbours").locator("input").input_value()


def _open_from_explore(page, index: int) -> str:
    """On Explore: select one point and follow the link to it; returns its id."""
    wait_for_map(page, 240_000)  # the first test on a fresh server extracts the demo's features
    _click_point(page, index)
    link = page.get_by_role("link", name="Look closer at the first selected point", exact=False)
    chosen = parse_qs(urlsplit(link.get_attribute("href")).query)["ev_point"][0]  # the point the link names
    link.click()
    return chosen


def test_the_link_to_a_point_opens_that_point_after_an_earlier_visit(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    first = _open_from_explore(page, 3)
    assert _point_shown(page, first) == first
    assert _address_point(page) == first
    # back to Explore through the sidebar (the same session), another point, the link again
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    second = _open_from_explore(page, 7)
    assert second != first
    shown = _point_shown(page, second)
    page.screenshot(path=str(artifacts / "point_link_second.png"), full_page=True)
    assert shown == second, f"the link named {second}, the page shows {shown}"
    assert _address_point(page) == second


def test_back_returns_to_the_point_before_with_its_neighbours(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    first = _open_from_explore(page, 4)
    assert _point_shown(page, first) == first
    box = page.locator("[data-testid='stNumberInput']", has_text="Neighbours").locator("input")
    box.fill("5")
    box.press("Enter")
    page.get_by_text("5 nearest in feature space", exact=False).wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    go = page.get_by_role("button", name="Go to this point")
    assert go.count() == 5
    go.first.click()
    page.wait_for_function(f"p => !({_HEADING})().startsWith(p + ' ')", arg=first, timeout=60_000)
    neighbour = _point_shown(page)
    assert neighbour != first and _neighbours(page) == "5"
    assert _address_point(page) == neighbour

    page.go_back()  # to the point before, as the user left it
    back = _point_shown(page, first)
    assert back == first, f"Back should return to {first}, shows {back}"
    assert _neighbours(page) == "5" and _address_point(page) == first
    page.get_by_text("5 nearest in feature space", exact=False).wait_for(timeout=30_000)
    page.go_back()  # to Explore, where the link was followed (it used to stay on Point, with 1 neighbour)
    page.wait_for_function("() => location.pathname.endsWith('/Explore')", timeout=30_000)
    page.get_by_role("heading", name="Explore").wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "point_back_to_explore.png"), full_page=True)
    assert page.get_by_text("A point up close").count() == 0

    again = _open_from_explore(page, 9)  # the link carries the Neighbours the user set on Point
    assert _point_shown(page, again) == again and _neighbours(page) == "5"
    page.go_back()  # straight back to Explore: arriving added no second history entry
    page.wait_for_function("() => location.pathname.endsWith('/Explore')", timeout=30_000)
