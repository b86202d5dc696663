"""Walk the app as a new user would and photograph every page for the README.

    python scripts/walkthrough.py [--data DIR] [--out docs/images]

Starts ``streamlit run app.py`` with an empty ``EMBEDVIZ_HOME`` that shares one folder, writes a few
thousand images in class folders there (``scripts/journey_data.py``: data no test was written
against) with a resnet18 trained on them for a few minutes, then in headless Chromium: the demo's
home page; the folder with no model (``pixels``); Extract; Reduce; Explore with a lasso, clusters and
mistakes; the resnet18 with its uploaded weights and class index; Point; Runs; Compare. Each page is
saved as ``OUT/tour_<name>.png``. Anything that looks wrong on the way (an exception, an error box, an
empty map) is printed at the end and makes the exit status 1.

Needs Debian's chromium and playwright (``requirements-dev.txt``). Takes about ten minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

import journey_data  # noqa: E402

from benchmarks.server import serve  # noqa: E402

CHROMIUM = os.environ.get("EMBEDVIZ_CHROMIUM", "/usr/bin/chromium")
PROBLEMS: list[str] = []


def wait_for_map(page, timeout_ms: int = 180_000) -> None:
    page.wait_for_function(
        "() => { const p = document.querySelector('.js-plotly-plot');"
        " return p && p._fullData && p._fullData.length > 0"
        " && (p.querySelector('canvas') || p.querySelector('.point')); }",
        timeout=timeout_ms)
    page.wait_for_timeout(1200)


def idle(page, timeout_ms: int = 300_000) -> None:
    """Until the page has settled: no spinner or progress bar, and nothing greyed out as stale."""
    page.wait_for_timeout(1000)
    page.wait_for_function("() => !document.querySelector('[data-testid=stSpinner], [data-testid=stProgress], "
                           "[data-stale=true]')", timeout=timeout_ms)
    page.wait_for_timeout(1000)


def check(page, where: str) -> None:
    if page.locator(".stException").count():
        PROBLEMS.append(f"{where}: an exception is shown: {page.locator('.stException').first.inner_text()[:300]}")
    for alert in page.locator("[data-testid='stAlertContentError']").all():
        PROBLEMS.append(f"{where}: an error box: {alert.inner_text()[:300]}")


def shoot(page, out: Path, name: str, top: bool = True) -> None:
    check(page, name)
    if top:  # the page scrolls inside Streamlit's main container, not the window
        page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollTo(0, 0)")
        page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"tour_{name}.png"), full_page=True)
    print(f"  {name}: {out / f'tour_{name}.png'}")


def nav(page, label: str) -> None:
    page.locator(".st-key-sidebar_nav a", has_text=label).first.click()
    page.wait_for_timeout(500)
    idle(page)


def lasso(page) -> None:
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.locator(".js-plotly-plot .modebar-btn[data-title='Lasso Select']").first.click()
    cx, cy = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5
    rx, ry = box["width"] * 0.18, box["height"] * 0.2
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in [(cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => [...document.querySelectorAll('h3')].some(h => /Selection · [1-9]/.test(h.textContent))",
        timeout=60_000)
    idle(page)


def walk(url: str, data: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder, weights, classes = data / "shapes", data / "resnet18_shapes.pt", data / "classes.json"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})

        print("home (the demo)")
        page.goto(url)
        wait_for_map(page)
        shoot(page, out, "home")

        print("data & model: a folder on the server, no model")
        nav(page, "Data")
        page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
        page.get_by_label("Folder, archive or CSV/Parquet manifest").fill(str(folder))
        page.get_by_role("button", name="Use this path").click()
        page.wait_for_selector("text=/3,000 images in 5 classes/", timeout=120_000)
        page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
        page.keyboard.type("pixels")
        page.keyboard.press("Enter")
        idle(page)
        shoot(page, out, "data_and_model")

        print("extract")
        nav(page, "Extract")
        page.get_by_role("button", name="Extract features").click()
        page.get_by_text("Extracted ", exact=False).first.wait_for(timeout=600_000)
        idle(page)
        shoot(page, out, "extract")

        print("reduce")
        nav(page, "Reduce")
        wait_for_map(page, 600_000)
        idle(page, 600_000)
        shoot(page, out, "reduce")

        print("explore: lasso, clusters")
        nav(page, "Explore")
        wait_for_map(page)
        lasso(page)
        shoot(page, out, "explore", top=False)
        page.get_by_role("tab", name="Clusters").click()
        page.get_by_role("button", name="Find clusters").click()
        idle(page)
        shoot(page, out, "explore_clusters", top=False)

        print("data & model: resnet18 with uploaded weights and a class index")
        nav(page, "Data")
        page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
        page.keyboard.type("resnet18")
        page.keyboard.press("Enter")
        idle(page)
        page.locator("[data-testid='stFileUploader']").first.locator("input[type='file']").set_input_files(str(weights))
        page.get_by_text("resnet18", exact=False).first.wait_for(timeout=60_000)
        idle(page)
        index = page.locator("[data-testid='stFileUploader']", has_text="Class index")
        index.locator("input[type='file']").set_input_files(str(classes))
        idle(page)
        shoot(page, out, "data_and_model_resnet18")
        nav(page, "Extract")
        page.get_by_role("button", name="Extract features").click()
        page.get_by_text("Extracted ", exact=False).first.wait_for(timeout=900_000)
        idle(page)
        nav(page, "Explore")
        wait_for_map(page, 600_000)
        idle(page, 600_000)
        page.get_by_role("tab", name="Mistakes").click()
        idle(page)
        shoot(page, out, "explore_mistakes", top=False)
        lasso(page)
        page.get_by_role("link", name="Look closer at the first selected point", exact=False).click()
        page.get_by_text("nearest in feature space", exact=False).first.wait_for(timeout=120_000)
        idle(page)
        shoot(page, out, "point")

        print("runs, compare")
        nav(page, "Runs")
        shoot(page, out, "runs")
        nav(page, "Compare")
        idle(page, 600_000)
        page.wait_for_timeout(2000)
        shoot(page, out, "compare")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="where journey_data.py wrote (or should write) its files")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch) / "data"
        if not (data / "resnet18_shapes.pt").exists():
            root = journey_data.write_images(data, 600)
            journey_data.train(root, data, 240)
        args.out.mkdir(parents=True, exist_ok=True)
        log = Path(scratch) / "streamlit.log"
        with serve(Path(scratch) / "home", log, {"EMBEDVIZ_DATA_ROOTS": str(data)}) as url:
            try:
                walk(url, data, args.out)
            finally:
                errors = [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line
                          or "Error" in line]
                PROBLEMS.extend(f"server log: {line}" for line in errors[:20])
    for problem in PROBLEMS:
        print("PROBLEM", problem)
    sys.exit(1 if PROBLEMS else 0)


if __name__ == "__main__":
    main()
