"""Two strangers on one hosted server, in two Chromium contexts: neither can list, open, delete,
cancel or see the paths of the other's work; a guest cannot clear the store, an operator can; one
user's queue does not hold the other back; labels from a user's file show as text on every page and
no request leaves for another host."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from .conftest import _LOGS, serve, wait_for_map

pytestmark = pytest.mark.e2e

HEADER = "X-Forwarded-Email"
OPERATOR = "op@example.org"
HOSTILE = ["![x](http://evil.example/a.png)", "[Session expired – sign in again](http://evil.example/login)",
           "<img src=http://evil.example/b.png>", "see http://evil.example/c", ":red[alarm] :material/warning:"]
PAGES = ["", "Data_and_model", "Extract", "Reduce", "Explore", "Point", "Runs", "Compare"]


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """A server as a team would host it: sign-in by a proxy header, one operator, one data root."""
    home = tmp_path_factory.mktemp("hosted-home")
    root = tmp_path_factory.mktemp("data-root")
    from ..conftest import make_image_folder

    make_image_folder(root / "shapes", per_class=10, seed=3)
    log = tmp_path_factory.mktemp("hosted-logs") / "streamlit.log"
    _LOGS.append(log)
    env = {"EMBEDVIZ_USER_HEADER": HEADER, "EMBEDVIZ_OPERATORS": OPERATOR, "EMBEDVIZ_DATA_ROOTS": str(root),
           "EMBEDVIZ_JOBS_PER_USER": "12"}
    with serve(home, log, env) as url:
        yield url, home, root


def _user(browser, email: str):
    """A browser context signed in as ``email`` by the proxy header, that records every request
    leaving for a host other than the server."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, extra_http_headers={HEADER: email})
    context.outside = []
    context.on("request", lambda r: context.outside.append(r.url)
               if urlsplit(r.url).hostname not in ("127.0.0.1", "localhost", None)
               and not r.url.startswith(("data:", "blob:"))
               else None)
    return context


def _settle(page, timeout_ms: int = 120_000) -> None:
    """Until Streamlit has finished running the page's script."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_timeout(600)


def _no_markup_from(page, where: str) -> None:
    """Nothing a hostile label could produce: no link or image to another host, no raw HTML."""
    bad = page.evaluate("() => [...document.querySelectorAll('a[href], img[src]')]"
                        ".map(e => e.getAttribute('href') || e.getAttribute('src') || '')"
                        ".filter(u => u.includes('evil.example'))")
    assert bad == [], f"{where}: {bad}"
    assert page.locator(".stException").count() == 0, where


def _hostile_features(path: Path) -> Path:
    rng = np.random.default_rng(5)
    n = 60
    labels = [HOSTILE[i % len(HOSTILE)] for i in range(n)]
    centres = rng.normal(size=(len(HOSTILE), 8)) * 6
    vectors = [centres[i % len(HOSTILE)] + rng.normal(size=8) for i in range(n)]
    ids = [f"{HOSTILE[i % len(HOSTILE)]} #{i}" for i in range(n)]
    pd.DataFrame({"sample_id": ids, "embedding": [v.tolist() for v in vectors], "label": labels,
                  "[note](http://evil.example/col)": labels}).to_parquet(path)
    return path


def test_hostile_labels_render_as_text_on_every_page_and_nothing_is_fetched_elsewhere(hosted, browser, artifacts,
                                                                                      tmp_path):
    url, _, _ = hosted
    alice = _user(browser, "alice@example.org")
    page = alice.new_page()
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Upload").click()
    page.locator("[data-testid='stRadio'] label", has_text="Features or a map made elsewhere").click()
    uploader = page.locator("[data-testid='stFileUploader']", has_text="Features or map").first
    uploader.locator("input[type='file']").set_input_files(str(_hostile_features(tmp_path / "hostile.parquet")))
    page.get_by_role("button", name="Use these features").click()
    page.get_by_text("60 points", exact=False).first.wait_for(timeout=60_000)
    for name in PAGES:
        page.locator(".st-key-sidebar_nav a").nth(PAGES.index(name)).click()
        _settle(page)
        if name in ("Reduce", "Explore"):
            wait_for_map(page)
        if name == "Explore":
            page.get_by_role("tab", name="Clusters").click()
            for attempt in range(3):  # a click that lands while the page is still redrawing can be lost
                page.get_by_role("button", name="Find clusters").click()
                try:
                    page.wait_for_function("() => location.search.includes('ev_color=cluster')", timeout=60_000)
                    break
                except Exception:
                    if attempt == 2:
                        raise
            _settle(page)
            page.get_by_role("tab", name="Clusters").click()
            # the clusters' table is a data grid: its cells are text in the page's DOM, drawn on a canvas
            page.get_by_text("mostly", exact=False).first.wait_for(state="attached", timeout=60_000)
            shown = page.locator("[data-testid='stMain']").text_content().replace("\u2060", "")  # invisible joiners
            assert "mostly ![x](http://evil.example/a.png)" in shown or "mostly [Session expired" in shown, shown
            _no_markup_from(page, "Explore · Clusters")
            page.screenshot(path=str(artifacts / "hostile_Explore_clusters.png"), full_page=True)
            page.locator("[data-testid='stSelectbox']", has_text="Colour by").first.click()
            page.keyboard.type("label")
            page.keyboard.press("Enter")
            page.wait_for_function("() => location.search.includes('ev_color=label')", timeout=30_000)
            wait_for_map(page)
            page.get_by_role("tab", name="Mistakes").click()
            page.wait_for_timeout(800)
        _no_markup_from(page, name or "Home")
        page.screenshot(path=str(artifacts / f"hostile_{name or 'Home'}.png"), full_page=True)
    page.locator(".st-key-sidebar_nav a", has_text="Point").click()  # the same session
    _settle(page)
    page.wait_for_function("() => document.body.innerText.replace(/\u2060/g, '')"
                           ".includes('![x](http://evil.example/a.png) #0 · label')", timeout=60_000)
    _no_markup_from(page, "Point")

    # published, then opened by someone else: Bob's browser fetches nothing either
    page.get_by_role("button", name="Share this view").click()
    body = page.locator("[data-testid='stPopoverBody']")
    body.get_by_text("Anyone with the link may open it").click()
    page.wait_for_timeout(1500)
    if not body.is_visible():
        page.get_by_role("button", name="Share this view").click()
    link = body.locator("code").inner_text().strip()
    bob = _user(browser, "bob@example.org")
    other = bob.new_page()
    other.goto(link)
    _settle(other)
    try:
        other.wait_for_function("() => document.body.innerText.replace(/\u2060/g, '')"
                                ".includes('![x](http://evil.example/a.png) #0 · label')", timeout=60_000)
    finally:
        other.screenshot(path=str(artifacts / "hostile_Point_other_user.png"), full_page=True)
    _no_markup_from(other, "Point, opened by another user")
    other.screenshot(path=str(artifacts / "hostile_Point_other_user.png"), full_page=True)
    other.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    wait_for_map(other)
    _no_markup_from(other, "Explore, opened by another user")
    assert alice.outside == [] and bob.outside == [], (alice.outside, bob.outside)
    alice.close()
    bob.close()


def test_two_users_cannot_reach_each_others_work(hosted, browser, artifacts, tmp_path):
    url, home, root = hosted
    alice, bob, op = _user(browser, "alice@example.org"), _user(browser, "bob@example.org"), _user(browser, OPERATOR)
    a, b, o = alice.new_page(), bob.new_page(), op.new_page()

    # Alice makes a private map of the demo
    a.goto(f"{url}/Reduce")
    a.get_by_text("1,797 points · t-SNE 2-D", exact=False).wait_for(timeout=180_000)
    a.get_by_role("radio", name="PCA", exact=True).click()
    a.get_by_text("1,797 points · PCA 2-D", exact=False).wait_for(timeout=120_000)
    link = a.url
    assert "run=" in link

    # Bob: not listed, the link says one thing, nothing of Alice's paths
    b.goto(f"{url}/Runs")
    _settle(b)
    assert b.get_by_text("PCA 2-D: digits", exact=False).count() == 0
    b.goto(link)
    b.get_by_text("cannot be opened", exact=False).first.wait_for(timeout=60_000)
    said = b.get_by_text("cannot be opened", exact=False).first.inner_text()
    b.goto(f"{url}/Explore?run=0123456789ab")
    b.get_by_text("cannot be opened", exact=False).first.wait_for(timeout=60_000)
    assert b.get_by_text("cannot be opened", exact=False).first.inner_text().replace("0123456789ab", "") == \
        said.replace(urlsplit(link).query.split("run=")[1].split("&")[0], "")  # private and unknown read the same
    for name in ("Extract", "Runs", "Data_and_model"):
        b.goto(f"{url}/{name}")
        _settle(b)
        assert str(home) not in b.locator("[data-testid='stApp']").inner_text(), name
    assert b.get_by_role("button", name="Clear the feature store").count() == 0

    # Bob's path input cannot reach the home, its parent or anything outside the root
    b.goto(f"{url}/Data_and_model")
    b.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    for typed in (str(home / "sessions"), str(home.parent), "/", str(root / ".." / ".."), "/etc/passwd"):
        b.get_by_label("Folder, archive or CSV/Parquet manifest").fill(typed)
        b.get_by_role("button", name="Use this path").click()
        error = b.locator("[data-testid='stAlertContentError']").first
        error.wait_for(timeout=30_000)
        said = error.inner_text().strip().splitlines()[-1]  # after the icon's name
        assert ("outside the folders" in said or "own storage" in said
                                              or "whole file system" in said), (typed, said)
        assert "root:" not in said  # nothing of /etc/passwd
        b.get_by_text("1,797 images in 10 classes", exact=False).wait_for(timeout=30_000)  # the demo stays
    b.screenshot(path=str(artifacts / "isolation_bob_paths.png"), full_page=True)

    # a guest (no sign-in) has no button either
    guest = browser.new_context(viewport={"width": 1400, "height": 1000})
    g = guest.new_page()
    g.goto(f"{url}/Extract")
    _settle(g)
    g.get_by_text("Feature store", exact=False).first.click()
    g.wait_for_timeout(800)
    assert g.get_by_role("button", name="Clear the feature store").count() == 0
    assert str(home) not in g.locator("[data-testid='stApp']").inner_text()
    guest.close()

    # the operator may clear the store; Bob has no button
    o.goto(f"{url}/Extract")
    _settle(o)
    o.get_by_text("Feature store", exact=False).first.click()
    o.get_by_text("Yes, delete every stored feature set").click()
    o.get_by_role("button", name="Clear the feature store").click()
    o.get_by_text("Freed", exact=False).wait_for(timeout=30_000)
    o.screenshot(path=str(artifacts / "isolation_operator_clears.png"), full_page=True)
    assert alice.outside == bob.outside == op.outside == []
    for c in (alice, bob, op):
        c.close()


def _choose_resnet18(page, url: str, folder: str, layer: str | None = None) -> None:
    """Data & model: a shared folder through an untrained resnet18, at ``layer`` (default: its default)."""
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.get_by_label("Folder, archive or CSV/Parquet manifest").fill(folder)
    page.get_by_role("button", name="Use this path").click()
    page.get_by_text("images in 2 classes", exact=False).first.wait_for(timeout=60_000)
    page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    page.keyboard.type("resnet18")
    page.keyboard.press("Enter")
    page.locator("[data-testid='stRadio'] label", has_text="Random (untrained baseline)").click()
    page.get_by_text("Model: resnet18 (random", exact=False).wait_for(timeout=60_000)
    if layer:
        _settle(page)
        page.locator("[data-testid='stSelectbox']", has_text="Take features from").last.click()
        page.keyboard.type(layer)
        page.keyboard.press("Enter")
        page.wait_for_timeout(1500)


def _extract(page) -> None:
    page.locator(".st-key-sidebar_nav a", has_text="Extract").click()
    page.get_by_role("button", name="Extract features").click()
    page.get_by_role("button", name="Cancel extraction").wait_for(timeout=60_000)


def test_each_user_cancels_only_their_own_job_and_ten_jobs_of_one_user_do_not_hold_another_back(
        hosted, browser, artifacts):
    url, _, root = hosted
    from ..conftest import make_image_folder

    make_image_folder(root / "many", per_class=500, seed=11)
    alice, bob = _user(browser, "alice@example.org"), _user(browser, "bob@example.org")
    a, b = alice.new_page(), bob.new_page()

    # Alice: one job running and nine more queued (other layers of the same model)
    layers = (None, "avgpool", "maxpool", "layer1.0.conv1", "layer1.0.bn1", "layer2.0.conv1", "layer2.0.bn1",
              "layer3.0.conv1", "layer3.0.bn1", "layer4.0.conv1")
    for layer in layers:
        _choose_resnet18(a, url, str(root / "many"), layer)
        _extract(a)
    a.get_by_text("jobs ahead of it", exact=False).first.wait_for(timeout=60_000)

    # Bob asks for the last thing Alice queued: his own job (a job is keyed by owner and content), next in line
    # after her running one. Not her first: on a quick machine it is finished by now, and Bob's is a cache hit.
    _choose_resnet18(b, url, str(root / "many"), layers[-1])
    _extract(b)
    b.get_by_text("waiting in line", exact=False).or_(b.get_by_text("images/s", exact=False)).first \
        .wait_for(timeout=60_000)
    text = b.locator("[data-testid='stMain']").inner_text()
    assert "1 job ahead of it" in text or "images/s" in text, text  # Alice's queued nine wait behind him
    sidebar = b.locator("[data-testid='stSidebar']").inner_text()
    assert "avgpool" not in sidebar and "maxpool" not in sidebar  # others' jobs are a count, never by name
    b.screenshot(path=str(artifacts / "isolation_bob_queued.png"), full_page=True)

    # Bob cancels: his job ends, Alice's goes on
    b.get_by_role("button", name="Cancel extraction").click()
    b.get_by_text("cancelled", exact=False).first.wait_for(timeout=60_000)
    a.locator(".st-key-sidebar_nav a", has_text="Data and model").click()
    a.locator("[data-testid='stSidebar']").get_by_text("images/s", exact=False).first.wait_for(timeout=60_000)
    a.screenshot(path=str(artifacts / "isolation_alice_still_running.png"), full_page=True)
    assert "cancelled" not in a.locator("[data-testid='stSidebar']").inner_text()
    alice.close()
    bob.close()
