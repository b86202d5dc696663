"""Load test on loopback: N browser sessions browse the demo while one extraction runs.

    python benchmarks/load.py [--sessions 10] [--images 1500] [--seconds 240]

Starts ``streamlit run app.py`` on a free port with a fresh ``$EMBEDVIZ_HOME``, warms it (the demo's
features and map are made once), then, in one asyncio loop driving Debian's Chromium:

1. baseline: one session opens each page alone, a few times;
2. load: ``--sessions`` sessions (each its own browser context, so its own user) cycle through
   Home, Explore, Reduce, Point and Runs, while an extra session starts an extraction of
   ``--images`` generated images through a randomly initialised ResNet-18 (on this server's
   device) and waits for it.

A page's response time runs from navigation until its title is shown, its map (if any) has drawn
and Streamlit has finished the script run. Errors are Streamlit exception boxes, error alerts and
pages that did not become ready within two minutes. Prints the times (median, 90th percentile,
max) per page, alone and under load, with their ratio. Bounded by ``--seconds`` of load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("EMBEDVIZ_CHROMIUM", "/usr/bin/chromium")
PAGES = [("Home", "", True), ("Explore", "Explore", True), ("Reduce", "Reduce", True), ("Point", "Point", False),
         ("Runs", "Runs", False)]
READY = """() => {
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  const running = status && /Running|Stop/.test(status.innerText);
  return !running && document.querySelector('h1') !== null;
}"""
MAP = """() => { const p = document.querySelector('.js-plotly-plot');
  return p && p._fullData && p._fullData.length > 0 && (p.querySelector('canvas') || p.querySelector('.point')); }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _images(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(4):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = (rng.random((96, 96, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"class{i % 4}" / f"{i:05d}.png")
    return folder


async def _open(page, url: str, has_map: bool, timeout_ms: int = 120_000) -> tuple[float, str | None]:
    start = time.monotonic()
    try:
        await page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
        await page.wait_for_selector("h1", timeout=timeout_ms)
        if has_map:
            await page.wait_for_function(MAP, timeout=timeout_ms)
        await page.wait_for_function(READY, timeout=timeout_ms)
    except Exception as exc:  # a page that never became ready is an error of the run
        return time.monotonic() - start, f"not ready: {type(exc).__name__}"
    seconds = time.monotonic() - start
    if await page.locator(".stException").count():
        return seconds, "exception shown"
    if await page.locator("[data-testid='stAlertContentError']").count():
        return seconds, "error shown: " + (await page.locator("[data-testid='stAlertContentError']").first.inner_text())[:120]
    return seconds, None


async def _session(browser, url: str, until: float, times: dict, errors: list, index: int) -> None:
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    i = index  # sessions start at different pages
    while time.monotonic() < until:
        name, path, has_map = PAGES[i % len(PAGES)]
        seconds, error = await _open(page, f"{url}/{path}", has_map)
        times.setdefault(name, []).append(seconds)
        if error:
            errors.append(f"session {index}, {name}: {error}")
        i += 1
    await context.close()


async def _extraction(browser, url: str, folder: Path, result: dict) -> None:
    context = await browser.new_context(viewport={"width": 1300, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/Data_and_model")
    await page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    await page.get_by_placeholder("/data/test_images").fill(str(folder))
    await page.get_by_role("button", name="Use this path").click()
    await page.get_by_text("images in 4 classes", exact=False).first.wait_for(timeout=120_000)
    await page.locator("[data-testid='stSelectbox']", has_text="Architecture").click()
    await page.keyboard.type("resnet18")
    await page.keyboard.press("Enter")
    await page.locator("[data-testid='stRadio'] label", has_text="Random (untrained baseline)").click()
    await page.locator("[data-testid='stSidebar']", has_text="resnet18").wait_for(timeout=120_000)
    await page.locator("[data-testid='stSidebarNav'] a", has_text="Extract").click()
    await page.get_by_role("button", name="Extract features").click()
    result["started"] = time.monotonic()
    await page.get_by_text("Extracted ", exact=False).first.wait_for(timeout=900_000)
    result["seconds"] = time.monotonic() - result["started"]
    result["text"] = await page.get_by_text("Extracted ", exact=False).first.inner_text()
    await context.close()


def _summary(times: dict[str, list[float]]) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for name, values in times.items():
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        out[name] = (statistics.median(values), p90, values[-1], len(values))
    return out


async def main(args) -> int:
    from playwright.async_api import async_playwright

    home = Path(tempfile.mkdtemp(prefix="embedviz-load-"))
    folder = _images(Path(tempfile.mkdtemp(prefix="embedviz-load-images-")), args.images)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(home / "streamlit.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "EMBEDVIZ_HOME": str(home), "EMBEDVIZ_WARMUP": "0"})
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            warm = await browser.new_context()
            page = await warm.new_page()
            for name, path, has_map in PAGES:
                _, error = await _open(page, f"{url}/{path}", has_map, timeout_ms=300_000)
                if error:
                    print(f"warm-up: {name}: {error}")
            await warm.close()

            alone: dict[str, list[float]] = {}
            alone_errors: list[str] = []
            await _session(browser, url, time.monotonic() + args.baseline, alone, alone_errors, 0)

            loaded: dict[str, list[float]] = {}
            errors: list[str] = []
            extraction: dict = {}
            until = time.monotonic() + args.seconds
            job = asyncio.create_task(_extraction(browser, url, folder, extraction))
            sessions = [asyncio.create_task(_session(browser, url, until, loaded, errors, i))
                        for i in range(args.sessions)]
            await asyncio.gather(*sessions)
            overlap = extraction.get("seconds") is None  # still running when the browsing ended
            await job
            await browser.close()
    finally:
        server.terminate()
        server.wait(20)
        log.close()

    base, load = _summary(alone), _summary(loaded)
    print(f"{args.sessions} sessions browsing the demo for {args.seconds} s while one extraction of "
          f"{args.images:,} images (ResNet-18, random weights) ran on this server")
    print(f"extraction: {extraction.get('text', '?')} (started by a browser, {extraction.get('seconds', 0):.0f} s "
          f"from its button to its result; {'it outlasted' if overlap else 'it ended within'} the browsing)")
    print(f"{'page':8s} {'alone: median':>14s} {'p90':>6s} | {'under load: median':>19s} {'p90':>6s} {'max':>6s} "
          f"{'loads':>6s} | {'ratio':>6s}")
    for name, *_ in PAGES:
        if name not in load:
            continue
        b, l = base.get(name, (float("nan"),) * 4), load[name]
        print(f"{name:8s} {b[0]:13.2f}s {b[1]:5.2f}s | {l[0]:18.2f}s {l[1]:5.2f}s {l[2]:5.2f}s {l[3]:6d} | "
              f"{l[0] / b[0]:5.2f}x")
    total = sum(v[3] for v in load.values())
    print(f"page loads under load: {total}; errors: {len(errors)} (alone: {len(alone_errors)})")
    for line in (alone_errors + errors)[:20]:
        print("  ", line)
    return 1 if errors or alone_errors else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--baseline", type=float, default=60, help="seconds of one session alone first")
    sys.exit(asyncio.run(main(parser.parse_args())))
