"""A user's whole path in a real browser, and sharing it: upload images and weights, extract,
reduce, move a slider, lasso, copy the link, and open it as someone else."""

from __future__ import annotations

import pytest

from .conftest import upload_images, wait_for_map

pytestmark = pytest.mark.e2e


def _coords(page) -> list[list[float]]:
    """Every drawn point's (x, y), in trace order, leaving out the ring drawn over highlighted points:
    what two views must share to be the same picture."""
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p._fullData.filter(t => !String(t.name).startsWith('highlighted'))"
                         ".flatMap(t => Array.from(t.x || []).map((x, i) => [x, t.y[i]])); }")


def _ringed(page) -> int:
    return page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData"
                         ".filter(t => String(t.name).startsWith('highlighted')).reduce((n, t) => n + t.x.length, 0)")


def _share(page, publish: bool) -> str:
    """Open "Share this view", publish the run if asked, and copy the link with the copy button."""
    page.get_by_role("button", name="Share this view").click()
    body = page.locator("[data-testid='stPopoverBody']")
    body.locator("code").wait_for(timeout=30_000)
    if publish:
        body.get_by_text("Anyone with the link may open it").click()
        page.wait_for_timeout(1500)
        if not body.is_visible():
            page.get_by_role("button", name="Share this view").click()
        body.locator("code").wait_for(timeout=30_000)
    shown = body.locator("code").inner_text().strip()
    body.locator("code").hover()
    body.locator("button[aria-label='Copy to clipboard']").click()
    copied = page.evaluate("() => navigator.clipboard.readText()").strip()
    assert copied == shown, "the copy button must copy the link shown"
    page.keyboard.press("Escape")
    return copied


def _lasso_all(page) -> int:
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.locator(".js-plotly-plot .modebar-btn[data-title='Lasso Select']").first.click()
    x0, y0, x1, y1 = box["x"] + 4, box["y"] + 4, box["x"] + box["width"] - 4, box["y"] + box["height"] - 4
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => /Selection · [1-9]/.test(h.textContent))",
        timeout=60_000)
    heading = page.locator("h3", has_text="Selection · ").first.inner_text()
    return int(heading.split("·")[1].split()[0].replace(",", ""))


def _weights(path):
    import torch
    from safetensors.torch import save_file
    from torchvision.models import shufflenet_v2_x0_5

    torch.manual_seed(0)
    model = shufflenet_v2_x0_5(num_classes=2)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_upload_extract_reduce_lasso_and_open_the_copied_link_as_someone_else(app_server, browser, artifacts, tmp_path):
    from ..conftest import make_image_folder, zip_folder

    archive = zip_folder(make_image_folder(tmp_path / "shapes", per_class=12, seed=7), tmp_path / "shapes.zip")
    weights = _weights(tmp_path / "shufflenet_2_classes.safetensors")
    url, _ = app_server
    owner = browser.new_context(viewport={"width": 1400, "height": 1100},
                                permissions=["clipboard-read", "clipboard-write"])
    page = owner.new_page()

    # 1. the images and the weights
    upload_images(page, url, archive)
    page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    page.keyboard.type("shufflenet_v2_x0_5")
    page.keyboard.press("Enter")
    page.locator("[data-testid='stFileUploader']", has_text="State dict").locator("input[type='file']") \
        .set_input_files(str(weights))
    try:
        page.locator("[data-testid='stSidebar']", has_text="shufflenet_2_classes.safetensors").wait_for(timeout=90_000)
    finally:
        page.screenshot(path=str(artifacts / "share_1_upload.png"), full_page=True)
    page.screenshot(path=str(artifacts / "share_1_upload.png"), full_page=True)

    # 2. extract (a background job) and reduce
    page.locator(".st-key-sidebar_nav a", has_text="Extract").click()
    page.get_by_role("button", name="Extract features").click()
    page.get_by_text("Extracted 24 feature vectors", exact=False).wait_for(timeout=180_000)
    page.locator(".st-key-sidebar_nav a", has_text="Reduce").click()
    page.get_by_text("24 points · t-SNE 2-D", exact=False).wait_for(timeout=120_000)
    wait_for_map(page)
    before = _coords(page)
    slider = page.locator("[data-testid='stSlider']").filter(has_text="perplexity").locator("input[type='range']")
    slider.focus()
    page.keyboard.press("ArrowLeft")  # perplexity is capped by the 24 points; one step down is a new map
    page.wait_for_function("b => { const p = document.querySelector('.js-plotly-plot');"
                           " const x = p._fullData.flatMap(t => Array.from(t.x || []));"
                           " return x.length === 24 && JSON.stringify(x.slice(0, 5)) !== b; }",
                           arg=str([c[0] for c in before[:5]]).replace(" ", ""), timeout=120_000)
    page.get_by_text("24 points · t-SNE 2-D", exact=False).wait_for(timeout=120_000)
    wait_for_map(page)
    assert _coords(page) != before
    assert "ev_p_tsne_perplexity=" in page.url and "run=" in page.url
    page.screenshot(path=str(artifacts / "share_2_reduce.png"), full_page=True)

    # 3. explore: colour by prediction, lasso every point, see the gallery
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    wait_for_map(page)
    page.get_by_label("Colour by").first.click()
    page.get_by_role("option", name="prediction", exact=True).click()
    page.wait_for_function("() => location.search.includes('ev_color=prediction')", timeout=30_000)
    wait_for_map(page)
    selected = _lasso_all(page)
    assert selected == 24
    page.get_by_role("tabpanel").first.locator("[data-testid='stImage'] img").nth(23).wait_for(timeout=30_000)
    page.wait_for_function("() => location.search.includes('sel=')", timeout=30_000)
    page.screenshot(path=str(artifacts / "share_3_explore_lasso.png"), full_page=True)
    seen = _coords(page)

    # 4. the link: private first, so a colleague is told so; then published
    private_link = _share(page, publish=False)
    colleague = browser.new_context(viewport={"width": 1400, "height": 1100})
    other = colleague.new_page()
    other.goto(private_link)
    other.get_by_text("is private to the person who made it", exact=False).wait_for(timeout=60_000)
    other.screenshot(path=str(artifacts / "share_4_private_link.png"), full_page=True)

    link = _share(page, publish=True)
    fresh = colleague.new_page()
    fresh.goto(link)
    wait_for_map(fresh)
    fresh.get_by_text("Selection · 24 images").wait_for(timeout=60_000)
    assert len(_coords(fresh)) == 24 and _ringed(fresh) == 24  # the link's selection is ringed
    fresh.get_by_text("the points selected in the link you opened", exact=False).wait_for(timeout=30_000)
    assert _coords(fresh) == seen  # the same map, not one made again
    assert "ev_color=prediction" in fresh.url
    colour = fresh.locator("[data-testid='stSelectbox']", has_text="Colour by").first.evaluate(
        "e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value + ' ' + "
        "(i.getAttribute('aria-label') || '')).join(' ')")
    assert "prediction" in colour, colour
    assert "shapes.zip" in fresh.locator("[data-testid='stSidebar']").inner_text()
    assert fresh.locator(".stException").count() == 0
    fresh.screenshot(path=str(artifacts / "share_5_link_opened_elsewhere.png"), full_page=True)
    owner.close()
    colleague.close()


def test_two_users_see_their_own_private_runs_and_published_ones(app_server, browser, artifacts):
    url, _ = app_server
    alice = browser.new_context(viewport={"width": 1400, "height": 1000})
    bob = browser.new_context(viewport={"width": 1400, "height": 1000})
    a, b = alice.new_page(), bob.new_page()
    a.goto(f"{url}/Reduce")
    a.get_by_text("1,797 points · t-SNE 2-D", exact=False).wait_for(timeout=180_000)
    a.get_by_role("radio", name="PCA", exact=True).click()
    a.get_by_text("1,797 points · PCA 2-D", exact=False).wait_for(timeout=120_000)
    a.locator(".st-key-sidebar_nav a", has_text="Runs").click()
    card = a.locator("[class*='st-key-run_card_']", has_text="PCA 2-D: digits").first
    try:
        card.wait_for(timeout=60_000)
    finally:
        a.screenshot(path=str(artifacts / "runs_alice.png"), full_page=True)
    assert "by you" in card.inner_text() and "private" in card.inner_text()
    a.screenshot(path=str(artifacts / "runs_alice.png"), full_page=True)

    b.goto(f"{url}/Runs")
    b.get_by_text("Every extraction and map is a run", exact=False).wait_for(timeout=120_000)
    b.wait_for_timeout(1500)
    assert b.get_by_text("PCA 2-D: digits", exact=False).count() == 0  # Alice's map is private

    card.get_by_role("button", name="Publish").click()
    a.locator("[class*='st-key-run_card_']", has_text="PCA 2-D: digits").first \
        .get_by_role("button", name="Make private").wait_for(timeout=30_000)
    b.reload()
    theirs = b.locator("[class*='st-key-run_card_']", has_text="PCA 2-D: digits").first
    theirs.wait_for(timeout=60_000)
    assert "by a guest (browser" in theirs.inner_text() and "published" in theirs.inner_text()
    assert theirs.get_by_role("button", name="Delete").count() == 0  # not Bob's to delete
    b.screenshot(path=str(artifacts / "runs_bob_published.png"), full_page=True)
    theirs.get_by_role("button", name="Open").click()
    wait_for_map(b)
    assert "Explore" in b.url and "run=" in b.url
    b.get_by_text("1,797", exact=False).first.wait_for(timeout=30_000)
    alice.close()
    bob.close()


def test_compare_selects_in_one_map_and_rings_the_points_in_the_other(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(f"{url}/Compare")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=300_000)
    page.wait_for_timeout(1500)
    first = page.locator(".js-plotly-plot").nth(0)
    box = first.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    first.locator(".modebar-btn[data-title='Box Select']").click()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=10)
    page.mouse.up()
    page.get_by_text("points selected, ringed in every map", exact=False).wait_for(timeout=120_000)
    count_rings = ("() => [...document.querySelectorAll('.js-plotly-plot')].slice(0, 2).map(p => "
                   "p._fullData.filter(t => String(t.name).startsWith('highlighted'))"
                   ".reduce((n, t) => n + t.x.length, 0))")
    # the other map is redrawn a moment after the caption shows (a CI run read it before)
    page.wait_for_function(f"() => ({count_rings})().every(n => n > 0)", timeout=30_000)
    ringed = page.evaluate(count_rings)
    said = int(page.get_by_text("points selected, ringed in every map", exact=False).inner_text().split()[0]
               .replace(",", ""))
    assert ringed[0] == ringed[1] == said > 0  # the same points ringed in the other map
    paths = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[2]._fullData"
                          ".filter(t => String(t.name).startsWith('path over')).length")
    assert paths == 1  # the step-through traces the selected points
    page.get_by_role("tab", name="Separation by class").click()
    page.get_by_text("k-NN accuracy (share of a class", exact=False).wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "compare_linked_selection.png"), full_page=True)
    assert page.locator(".stException").count() == 0
