"""The sidebar's list of pages in a real browser (issue 17, item 16): the home page reads "Home",
every link opens its own page at its own address in the same session with the current page marked,
and a click that interrupts a long run (a t-SNE map being made) is followed by the pages clicked
after it, not by the home page (what listing the pages with st.navigation beside pages/ did)."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.e2e

#: The sidebar's links in order: label, the page's address (its path), its title (h1).
NAV = [
    ("Home", "/", "embedviz"),
    ("Data and model", "/Data_and_model", "Data & model"),
    ("Extract", "/Extract", "Extract features"),
    ("Reduce", "/Reduce", "Reduce to a map"),
    ("Explore", "/Explore", "Explore"),
    ("Point", "/Point", "A point up close"),
    ("Runs", "/Runs", "Runs"),
    ("Compare", "/Compare", "Compare feature sets"),
]
_LINKS = "() => [...document.querySelectorAll('[data-testid=stSidebar] a')].map(a => a.textContent.trim())"
# the label's font weight: Streamlit draws the current page's link in bold
_WEIGHTS = ("() => Object.fromEntries([...document.querySelectorAll('[data-testid=stSidebar] a')].map(a =>"
            " [a.textContent.trim(),"
            " Number(getComputedStyle(a.querySelector('p') || a.querySelector('span') || a).fontWeight)]))")


def _link(page, label: str):
    return page.locator("[data-testid='stSidebar']").get_by_role("link", name=label, exact=True)


def _shows(page, path: str, title: str, timeout_ms: int = 120_000) -> None:
    """Until the page at ``path`` is drawn: its address and its title (an earlier page's title is gone)."""
    page.wait_for_function(
        "([path, title]) => location.pathname === path && [...document.querySelectorAll('[data-testid=stMain] h1')]"
        ".map(h => h.textContent.trim()).join('|') === title", arg=[path, title], timeout=timeout_ms)


def _settle(page, timeout_ms: int = 300_000) -> None:
    """Until Streamlit has finished running the page's script."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_timeout(500)


def _click(page, label: str) -> None:
    """Click the sidebar's link to ``label`` and wait until that page is drawn, with its own address."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    _, path, title = next(entry for entry in NAV if entry[0] == label)
    _link(page, label).click()
    try:
        _shows(page, path, title)
    except PlaywrightTimeout:
        shown = page.evaluate("() => [...document.querySelectorAll('[data-testid=stMain] h1')].map(h => h.textContent)")
        raise AssertionError(f"clicked {label!r}: the address is {page.url}, the page shows {shown}") from None


def test_the_home_page_reads_home_in_the_sidebar(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    _link(page, "Compare").wait_for(timeout=120_000)
    links = page.evaluate(_LINKS)
    page.locator("[data-testid='stSidebar']").screenshot(path=str(artifacts / "nav_home_sidebar.png"))
    assert "app" not in links
    assert links[:len(NAV)] == [label for label, _, _ in NAV]
    assert links.count("Home") == 1
    page.close()


def test_every_link_opens_its_page_at_its_address(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    _shows(page, "/", "embedviz")
    _settle(page)
    page.evaluate("() => { window.__same_document = true; }")  # gone if a click loaded a new document
    addresses = {}
    for label, _path, _title in NAV[1:] + NAV[:1]:
        _click(page, label)
        _settle(page)
        assert page.evaluate("() => window.__same_document === true"), f"{label}: a new document, a new session"
        weights = page.evaluate(_WEIGHTS)
        assert weights[label] >= 600 and all(w < 600 for name, w in weights.items() if name != label), weights
        assert page.locator(".stException").count() == 0, label
        assert page.title() == f"{'Data & model' if label == 'Data and model' else label} · embedviz"
        addresses[label] = page.url
        if label == "Explore":
            page.locator("[data-testid='stSidebar']").screenshot(path=str(artifacts / "nav_explore_sidebar.png"))
    # each address opens its page on its own, as a bookmark or a shared link does
    for label, path, title in NAV:
        page.goto(addresses[label])
        _shows(page, path, title)
    page.close()


def test_links_clicked_after_a_run_was_interrupted_open_their_pages(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    seed = random.randrange(1_000, 1_000_000)  # a map no earlier test made: this one is computed, from scratch
    page.goto(f"{url}/Reduce?ev_seed={seed}")
    _shows(page, "/Reduce", "Reduce to a map")
    # the t-SNE map is being made (after the features, on a cold store)
    page.wait_for_function("() => /t-SNE map: t-SNE: (early exaggeration, )?iteration [1-9]/"
                           ".test(document.body.innerText)", timeout=300_000)
    _click(page, "Runs")  # interrupts the map
    _click(page, "Extract")
    _click(page, "Data and model")
    page.screenshot(path=str(artifacts / "nav_after_interrupt.png"), full_page=True)
    _click(page, "Home")
    # back on Reduce through the sidebar: the seed the address named is the page's again, and in its address
    _click(page, "Reduce")
    page.wait_for_function("s => location.search.includes('ev_seed=' + s)", arg=str(seed), timeout=60_000)
    seed_input = page.locator("[data-testid='stNumberInput']", has_text="Seed").locator("input")
    assert seed_input.input_value() == str(seed)
    assert parse_qs(urlsplit(page.url).query)["ev_seed"] == [str(seed)]
    page.close()
