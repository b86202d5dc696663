"""The app in a real browser: the demo map draws on first start, and every page opens."""

from __future__ import annotations

import time

import pytest

from .conftest import points_drawn, serve, upload_images, wait_for_map, wait_until_idle

pytestmark = pytest.mark.e2e

PAGES = [("", "home"), ("Data_and_model", "data_and_model"), ("Extract", "extract"), ("Reduce", "reduce"),
         ("Explore", "explore"), ("Point", "point"), ("Runs", "runs"), ("Compare", "compare")]


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


def test_a_click_on_a_point_selects_it(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    wait_for_map(page)
    # where the first point of the first trace is drawn, from plotly's own axes
    x, y, sample = page.evaluate(
        "() => { const p = document.querySelector('.js-plotly-plot');"
        " const t = p._fullData.find(t => t.x && t.x.length && !String(t.name).startsWith('highlighted'));"
        " const xa = p._fullLayout.xaxis, ya = p._fullLayout.yaxis, r = p.getBoundingClientRect();"
        " return [r.left + xa._offset + xa.l2p(t.x[0]), r.top + ya._offset + ya.l2p(t.y[0]), t.customdata[0]]; }")
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => /Selection · 1 image(?!s)/.test(h.textContent))",
        timeout=60_000)
    page.get_by_role("tabpanel").first.locator("[data-testid='stImage'] img").first.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "explore_click.png"), full_page=True)
    assert sample is not None


def test_lasso_fills_the_gallery(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Explore")
    wait_for_map(page)
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)  # the toolbar shows on hover
    page.locator(".js-plotly-plot .modebar-btn[data-title='Lasso Select']").first.click()
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
    tab = page.get_by_role("tabpanel").first  # the Selection tab
    tab.locator("[data-testid='stImage'] img").first.wait_for(timeout=30_000)
    page.wait_for_function("n => document.querySelector('[role=tabpanel]').querySelectorAll("
                           "'[data-testid=stImage] img').length >= n", arg=min(count, 24), timeout=30_000)
    images = tab.locator("[data-testid='stImage'] img").count()
    assert images == min(count, 24)  # the first page of the gallery
    captions = tab.locator("[data-testid='stImage']").first.inner_text()
    assert "label" in captions and "pred" in captions
    page.screenshot(path=str(artifacts / "explore_lasso.png"), full_page=True)

    # keep it as a named set: it becomes a column to colour the map by
    page.get_by_placeholder("a name for this selection").fill("middle")
    page.get_by_role("button", name="Save as a set").click()
    page.get_by_text(f"middle: {count:,} points", exact=False).wait_for(timeout=30_000)
    first = tab.locator("[data-testid='stImage']").first.inner_text().split(" · ")[0]
    page.get_by_role("link", name="Look closer at the first selected point", exact=False).click()
    page.get_by_text("A point up close").wait_for(timeout=60_000)  # the Point page, on that point
    page.locator("h2, h3", has_text=first).first.wait_for(timeout=30_000)


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
        print(f"second start: Extract page says cache hit and the map draws {time.monotonic() - start:.1f} s "
              "after opening")
        assert points_drawn(page) == 1797


def test_upload_a_zip_and_see_its_map(app_server, browser, artifacts, tmp_path):
    from ..conftest import make_image_folder, zip_folder

    archive = zip_folder(make_image_folder(tmp_path / "shapes", per_class=12, seed=5), tmp_path / "shapes.zip")
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    upload_images(page, url, archive)
    # A fresh page load is a new session; a user moves on through the sidebar, which keeps it.
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    wait_for_map(page)
    assert points_drawn(page) == 24  # 25 image files; the unreadable one is left out
    assert "shapes.zip" in page.locator("[data-testid='stSidebar']").inner_text()
    page.screenshot(path=str(artifacts / "upload_zip_explore.png"), full_page=True)


def test_upload_a_metascatter_map_and_a_refused_torchscript_file(app_server, browser, artifacts, tmp_path):
    import numpy as np
    import pandas as pd
    import torch

    from embedviz.extract.models import DigitsCNN

    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [8, 1], [3, 7]])
    labels = rng.integers(0, 3, 300)
    xy = centres[labels] + rng.normal(size=(300, 2))
    pd.DataFrame({"Paths": [f"img/{i}.png" for i in range(300)], "X-Coord": xy[:, 0], "Y-Coord": xy[:, 1],
                  "label": np.array(["cat", "dog", "bird"])[labels]}).to_csv(tmp_path / "metascatter.csv", index=False)
    torch.jit.save(torch.jit.script(DigitsCNN().eval()), tmp_path / "scripted.pt")

    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Upload").click()
    page.locator("[data-testid='stRadio'] label", has_text="Features or a map made elsewhere").click()
    uploader = page.locator("[data-testid='stFileUploader']", has_text="Features or map")
    uploader.locator("input[type='file']").set_input_files(str(tmp_path / "metascatter.csv"))
    page.get_by_role("button", name="Use these features").click()
    page.wait_for_selector("text=300 points, a map with its own coordinates, 3 classes", timeout=60_000)
    page.locator(".st-key-sidebar_nav a", has_text="Reduce").click()
    wait_for_map(page)
    assert points_drawn(page) == 300
    assert "nothing was reduced" in page.inner_text("body")
    page.screenshot(path=str(artifacts / "metascatter_map.png"), full_page=True)

    page.locator(".st-key-sidebar_nav a", has_text="Data").click()
    page.locator("[data-testid='stRadio'] label", has_text="Built-in demo").click()
    page.wait_for_selector("text=1,797 images", timeout=60_000)
    page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    page.keyboard.type("resnet18")  # the list is long and virtualised: filter it as a user would
    page.keyboard.press("Enter")
    weights = page.locator("[data-testid='stFileUploader']", has_text="State dict")
    weights.locator("input[type='file']").set_input_files(str(tmp_path / "scripted.pt"))
    error = page.locator("[data-testid='stAlertContentError']", has_text="is a TorchScript archive")
    error.wait_for(timeout=60_000)
    assert error.count() == 1 and "EMBEDVIZ_TRUSTED_MODELS=1" in error.inner_text()
    assert "resnet18 — waiting for its weights" in page.inner_text("body")  # nothing of the refused file is used
    page.screenshot(path=str(artifacts / "torchscript_refused.png"), full_page=True)


def _choose_folder_and_random_resnet18(page, url: str, folder) -> None:
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.get_by_label("Folder, archive or CSV/Parquet manifest").fill(str(folder))
    page.get_by_role("button", name="Use this path").click()
    page.wait_for_selector("text=1,201 images in 2 classes", timeout=60_000)
    page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    page.keyboard.type("resnet18")  # the list is long and virtualised: filter it as a user would
    page.keyboard.press("Enter")
    page.locator("[data-testid='stRadio'] label", has_text="Random (untrained baseline)").click()


def test_extraction_runs_on_through_a_refresh_and_a_second_tab(app_server, browser, artifacts, data_root):
    from ..conftest import make_image_folder

    folder = make_image_folder(data_root / "many", per_class=600, seed=9)
    url, _ = app_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    _choose_folder_and_random_resnet18(page, url, folder)
    page.wait_for_selector("text=Model: resnet18 (random", timeout=60_000)
    page.locator(".st-key-sidebar_nav a", has_text="Extract").click()
    page.get_by_role("button", name="Extract features").click()
    page.wait_for_selector("text=/images\\/s/", timeout=60_000)

    page.reload()  # a new session: back on the demo, but the job goes on and shows in the sidebar
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Extractions").wait_for(timeout=60_000)
    # the job's line: running, or its outcome if a fast machine finished it during the reload
    line = sidebar.get_by_text("many through resnet18", exact=False).first
    line.wait_for(timeout=30_000)
    other = context.new_page()  # a second tab sees the same job, and does not start another
    other.goto(f"{url}/Data_and_model")
    other.locator("[data-testid='stSidebar']").get_by_text("many through resnet18",
                                                           exact=False).wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "extraction_in_background.png"), full_page=True)
    other.close()
    sidebar.get_by_text("done: 1,201 images in", exact=False).wait_for(timeout=180_000)  # finished, and says so
    assert sidebar.get_by_text("many through resnet18", exact=False).count() == 1  # one job, not two

    _choose_folder_and_random_resnet18(page, url, folder)  # the same choice again: the result is stored
    page.wait_for_selector("text=already stored", timeout=60_000)
    context.close()


def _move_slider(page, label: str, steps: int) -> None:
    """Move a bound slider ``steps`` to the right and wait until the address has its new value; keys
    pressed while the page was redrawing the slider are pressed again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # while a run redraws the controls, the slider of the run before can still be on the page: wait for one
    page.wait_for_function("l => [...document.querySelectorAll('[data-testid=stSlider]')]"
                           ".filter(s => s.textContent.includes(l)).length === 1", arg=label, timeout=180_000)
    slider = page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")
    start = int(float(slider.input_value()))
    target = start + steps
    for _ in range(3):
        slider.focus()
        now = int(float(slider.input_value()))
        for _ in range(target - now):
            page.keyboard.press("ArrowRight")
        try:
            page.wait_for_function("v => location.search.includes(v)", arg=f"{label}={target}", timeout=60_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the {label} slider did not reach {target}")


def _map_x(page) -> list[float]:
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p._fullData.flatMap(t => Array.from(t.x || [])).slice(0, 50); }")


def test_a_perplexity_move_shows_the_map_moving_and_stop_keeps_it(app_server, browser, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/Reduce")
    page.get_by_text("1,797 points · t-SNE 2-D", exact=False).wait_for(timeout=120_000)  # the first map is done
    wait_for_map(page)
    before = _map_x(page)
    _move_slider(page, "perplexity", 10)  # 30 -> 40: a new map, from the one on screen
    stop = page.get_by_role("button", name="Stop and keep the map as it is")
    try:  # a warm start takes a second or two; a busy browser can miss its Stop button (two CI runs did)
        stop.wait_for(timeout=20_000)
        page.screenshot(path=str(artifacts / "reduce_frames.png"), full_page=True)  # the map while it moves
    except PlaywrightTimeout:
        pass  # what the move made is checked below
    page.get_by_text("Started from the previous map", exact=False).wait_for(timeout=120_000)
    wait_for_map(page)
    assert points_drawn(page) == 1797 and _map_x(page) != before
    page.screenshot(path=str(artifacts / "reduce_after_perplexity.png"), full_page=True)


def test_a_fresh_start_stopped_part_way_keeps_its_map(app_server, browser, artifacts):
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/Reduce")
    page.get_by_text("1,797 points · t-SNE 2-D", exact=False).wait_for(timeout=120_000)
    wait_for_map(page)
    stop = page.get_by_role("button", name="Stop and keep the map as it is")
    # a fresh start (about ten seconds here), stopped part-way
    page.get_by_text("Start from the previous map").first.click()
    page.get_by_text("a new map takes about", exact=False).wait_for(timeout=30_000)
    _move_slider(page, "perplexity", 10)
    stop.wait_for(timeout=60_000)
    # press Stop once the run has drawn frames (Stop before the first frame has nothing to keep)
    page.wait_for_function("() => /t-SNE map: t-SNE: (early exaggeration, )?iteration [1-9]/"
                           ".test(document.body.innerText)", timeout=60_000)
    stop.click()
    page.get_by_text("Stopped at ", exact=False).first.wait_for(timeout=60_000)
    wait_for_map(page)
    assert points_drawn(page) == 1797
    assert page.get_by_role("button", name="Continue").count() == 1
    page.screenshot(path=str(artifacts / "reduce_stopped.png"), full_page=True)
    assert page.locator(".stException").count() == 0


def test_a_points_page_follows_a_neighbour(app_server, browser, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Point")
    page.get_by_text("nearest in feature space", exact=False).wait_for(timeout=120_000)
    # the point and its 12 neighbours (images arrive one by one)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stImage] img').length === 13",
                           timeout=60_000)
    wait_until_idle(page)  # the page has finished loading, as a user would see before clicking
    page.screenshot(path=str(artifacts / "point_page.png"), full_page=True)
    target = page.locator("[data-testid='stCaptionContainer']").filter(has_text="distance").first.inner_text()
    target_id = target.split(" · ")[0]
    page.get_by_role("button", name="Go to this point").first.click()
    try:
        page.wait_for_function("id => [...document.querySelectorAll('h3')].some(h => h.textContent.startsWith(id))",
                               arg=target_id, timeout=60_000)
    except PlaywrightTimeout:
        headings = page.evaluate("() => [...document.querySelectorAll('h3')].map(h => h.textContent)")
        pytest.fail(f"a click on {target_id!r}'s 'Go to this point' left the page at {headings} ({page.url})")
    page.get_by_text("nearest in feature space", exact=False).first.wait_for(timeout=60_000)
    assert page.locator(".stException").count() == 0


def test_a_large_map_draws_a_sample_over_all_points_and_a_box_selects_from_all(app_server, browser, artifacts,
                                                                              data_root):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 60_000
    xy = rng.uniform(-10, 10, (n, 2)).astype(np.float32)
    pd.DataFrame({"Paths": [f"img/{i}.png" for i in range(n)], "X-Coord": xy[:, 0], "Y-Coord": xy[:, 1],
                  "label": [f"c{i}" for i in rng.integers(0, 8, n)]}).to_parquet(data_root / "big.parquet")
    url, _ = app_server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.locator("[data-testid='stRadio'] label", has_text="Features or a map made elsewhere").click()
    page.get_by_label("Features file, TensorBoard projector folder or Metascatter CSV").fill(
        str(data_root / "big.parquet"))
    page.get_by_role("button", name="Use this path").click()
    page.wait_for_selector("text=a map with its own coordinates", timeout=120_000)
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    page.get_by_text("60,000 points: 10,000 of them", exact=False).wait_for(timeout=120_000)
    wait_for_map(page)
    assert points_drawn(page) == 10_000
    assert page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.images.length") == 1
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + 30, area["y"] + 30)
    page.locator(".js-plotly-plot .modebar-btn[data-title='Box Select']").first.click()
    left, right, top, bottom = page.evaluate(
        "() => { const p = document.querySelector('.js-plotly-plot'), r = p.getBoundingClientRect();"
        " const xa = p._fullLayout.xaxis, ya = p._fullLayout.yaxis;"
        " return [r.left + xa._offset + xa.l2p(-5), r.left + xa._offset + xa.l2p(5),"
        "         r.top + ya._offset + ya.l2p(5), r.top + ya._offset + ya.l2p(-5)]; }")
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move(right, bottom, steps=6)
    page.mouse.up()
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => /Selection · [1-9]/.test(h.textContent))", timeout=60_000)
    heading = page.get_by_text("Selection · ", exact=False).first.inner_text()
    count = int(heading.split("·")[1].split()[0].replace(",", ""))
    expected = int(((np.abs(xy) <= 5).all(axis=1)).sum())  # about a quarter of all points, not of the drawn ones
    assert abs(count - expected) < expected * 0.03, (count, expected)
    page.screenshot(path=str(artifacts / "explore_large_map.png"), full_page=True)
