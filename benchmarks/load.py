"""Load test on loopback: N browser sessions browse the demo while one extraction runs.

    python -m benchmarks load [--sessions 10] [--images 1500] [--seconds 240] [--json PATH]

Starts ``streamlit run app.py`` on a free port with a fresh ``$EMBEDVIZ_HOME``, warms it (the demo's
features and map are made once), then, in one asyncio loop driving Debian's Chromium:

1. baseline: one session opens each page alone, a few times;
2. load: ``--sessions`` sessions (each its own browser context, so its own user) cycle through
   Home, Explore, Reduce, Point and Runs, while an extra session starts an extraction of
   ``--images`` generated images through a randomly initialised ResNet-18 (on this server's
   device) and waits for it.

Each session opens the app once, then moves from page to page through the sidebar's links, as a
user does (one Streamlit session, no reload). A page's response time runs from the click until its
title is shown, its map (if any) has drawn and Streamlit has finished the script run. Errors are
Streamlit exception boxes, error alerts and pages that did not become ready within two minutes.
Prints the times (median, 90th percentile, max) per page, alone and under load, with their ratio.
Bounded by ``--seconds`` of load. Exits with status 1 (after printing and writing the figures) when a
page showed an error.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as ``python benchmarks/load.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402
from benchmarks.server import start  # noqa: E402

CHROMIUM = os.environ.get("EMBEDVIZ_CHROMIUM", "/usr/bin/chromium")
#: (sidebar link text, the page's title, whether it draws a map)
PAGES = [("Home", "embedviz", True), ("Explore", "Explore", True), ("Reduce", "Reduce to a map", True),
         ("Point", "A point up close", False), ("Runs", "Runs", False)]
READY = """title => {
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  const running = status && /Running|Stop/.test(status.innerText);
  const h1 = document.querySelector('h1');
  return !running && h1 !== null && h1.innerText.trim() === title;
}"""
MAP = """() => { const p = document.querySelector('.js-plotly-plot');
  return p && p._fullData && p._fullData.length > 0 && (p.querySelector('canvas') || p.querySelector('.point')); }"""


def _images(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(4):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = (rng.random((96, 96, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"class{i % 4}" / f"{i:05d}.png")
    return folder


async def _ready(page, title: str, has_map: bool, timeout_ms: int) -> str | None:
    from playwright.async_api import Error as PlaywrightError  # its TimeoutError too

    try:
        await page.wait_for_function(READY, arg=title, timeout=timeout_ms)
        if has_map:
            await page.wait_for_function(MAP, timeout=timeout_ms)
        await page.wait_for_function(READY, arg=title, timeout=timeout_ms)
    except PlaywrightError as exc:  # a page that never became ready is an error of the run
        return f"not ready: {type(exc).__name__}"
    if await page.locator(".stException").count():
        return "exception shown"
    if await page.locator("[data-testid='stAlertContentError']").count():
        return "error shown: " + (await page.locator("[data-testid='stAlertContentError']").first.inner_text())[:120]
    return None


async def _visit(page, link: str, title: str, has_map: bool, timeout_ms: int = 120_000) -> tuple[float, str | None]:
    """Click the sidebar's link to a page (as a user moves through the app: one session, no reload)
    and time it until the page is ready."""
    start = time.monotonic()
    await page.locator(".st-key-sidebar_nav a", has_text=link).first.click(timeout=timeout_ms)
    error = await _ready(page, title, has_map, timeout_ms)
    return time.monotonic() - start, error


async def _session(browser, url: str, until: float, times: dict, errors: list, index: int) -> None:
    """One user: opens the app, then moves from page to page through the sidebar until ``until``."""
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    start = time.monotonic()
    await page.goto(url, timeout=300_000)
    error = await _ready(page, "embedviz", True, 300_000)
    times.setdefault("first open", []).append(time.monotonic() - start)
    if error:
        errors.append(f"session {index}, first open: {error}")
    i = index + 1  # sessions start at different pages
    while time.monotonic() < until:
        link, title, has_map = PAGES[i % len(PAGES)]
        seconds, error = await _visit(page, link, title, has_map)
        times.setdefault(title, []).append(seconds)
        if error:
            errors.append(f"session {index}, {title}: {error}")
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
    try:
        await page.wait_for_function(READY, arg="Data & model", timeout=120_000)  # the choice's rerun is over
        await page.locator(".st-key-sidebar_nav a", has_text="Extract").click()
        await page.wait_for_function(READY, arg="Extract features", timeout=120_000)
        await page.get_by_role("button", name="Extract features").click(timeout=120_000)
    except Exception:
        await page.screenshot(path=str(Path(tempfile.gettempdir()) / "load_benchmark_failure.png"), full_page=True)
        raise
    result["started"] = time.monotonic()
    done = page.get_by_text(re.compile(r"^Extracted [0-9,]+ feature vectors"))
    await done.first.wait_for(timeout=900_000)
    result["seconds"] = time.monotonic() - result["started"]
    result["text"] = await done.first.inner_text()
    await context.close()


def _cpu_seconds(pids: list[int] | None = None, name: str | None = None) -> float:
    """CPU seconds (user + system, children waited for included) of these processes, or of every
    process whose command is ``name`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
        except (OSError, ValueError):
            continue
        if (pids is not None and int(entry.name) in pids) or (name is not None and comm.startswith(name)):
            total += sum(int(v) for v in fields[11:15]) / tick
    return total


def _server_family(pid: int) -> list[int]:
    """The server and the processes it started (decode workers, the warm-up child)."""
    family, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                except (OSError, ValueError):
                    continue
                if ppid == parent and int(entry.name) not in family:
                    family.add(int(entry.name))
                    frontier.append(int(entry.name))
    return list(family)


def _summary(times: dict[str, list[float]]) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for name, values in times.items():
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        out[name] = (statistics.median(values), p90, values[-1], len(values))
    return out


async def run(args) -> dict:
    """The load test; returns its figures (``errors`` and ``alone_errors`` list what went wrong)."""
    from playwright.async_api import async_playwright

    home = Path(tempfile.mkdtemp(prefix="embedviz-load-"))
    folder = _images(Path(tempfile.mkdtemp(prefix="embedviz-load-images-")), args.images)
    # the extraction reads the images through "Path on this server", which is off unless a folder is shared
    env = {"EMBEDVIZ_WARMUP": "0", "EMBEDVIZ_DATA_ROOTS": str(folder)}
    with start(home, home / "streamlit.log", env) as running:
        url, server = running.url, running.pid
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            warm: dict[str, list[float]] = {}
            warm_errors: list[str] = []  # the first session makes the demo's features and map
            await _session(browser, url, time.monotonic() + 1, warm, warm_errors, 0)
            for line in warm_errors:
                print("warm-up:", line)

            alone: dict[str, list[float]] = {}
            alone_errors: list[str] = []
            await _session(browser, url, time.monotonic() + args.baseline, alone, alone_errors, 0)

            loaded: dict[str, list[float]] = {}
            errors: list[str] = []
            extraction: dict = {}
            until = time.monotonic() + args.seconds
            cpu_start = (_cpu_seconds(_server_family(server)), _cpu_seconds(name="chrom"), time.monotonic())
            job = (asyncio.create_task(_extraction(browser, url, folder, extraction)) if args.images
                   else asyncio.sleep(0))
            sessions = [asyncio.create_task(_session(browser, url, until, loaded, errors, i))
                        for i in range(args.sessions)]
            await asyncio.gather(*sessions)
            cpu = (_cpu_seconds(_server_family(server)) - cpu_start[0], _cpu_seconds(name="chrom") - cpu_start[1],
                   time.monotonic() - cpu_start[2])
            overlap = extraction.get("seconds") is None  # still running when the browsing ended
            await job
            await browser.close()

    base, load = _summary(alone), _summary(loaded)
    print(f"{args.sessions} sessions browsing the demo for {args.seconds:.0f} s" + (
        f" while one extraction of {args.images:,} images (ResNet-18, random weights) ran on this server"
        if args.images else ", no extraction"))
    if args.images:
        print(f"extraction: {extraction.get('text', '?')} (started by a browser, {extraction.get('seconds', 0):.0f} s "
              f"from its button to its result; {'it outlasted' if overlap else 'it ended within'} the browsing)")
    cores = os.cpu_count() or 1
    print(f"CPU while browsing: {cpu[2] * cores:.0f} core-seconds available ({cores} cores x {cpu[2]:.0f} s); "
          f"the server (with its job and decode workers) used {cpu[0]:.0f}, the {args.sessions + 1} browser "
          f"contexts (headless Chromium, software WebGL) {cpu[1]:.0f}")
    print(f"{'page':17s} {'alone: median':>14s} {'p90':>6s} | {'under load: median':>19s} {'p90':>6s} {'max':>6s} "
          f"{'visits':>6s} | {'ratio':>6s}")
    for name in ["first open", *(title for _, title, _ in PAGES)]:
        if name not in load:
            continue
        b, u = base.get(name, (float("nan"),) * 4), load[name]
        print(f"{name:17s} {b[0]:13.2f}s {b[1]:5.2f}s | {u[0]:18.2f}s {u[1]:5.2f}s {u[2]:5.2f}s {u[3]:6d} | "
              f"{u[0] / b[0]:5.2f}x")
    total = sum(v[3] for v in load.values())
    print(f"page visits under load: {total}; errors: {len(errors)} (alone: {len(alone_errors)})")
    for line in (alone_errors + errors)[:20]:
        print("  ", line)

    def pages(summary: dict) -> dict:
        return {name: {"median_s": m, "p90_s": p90, "max_s": top, "visits": visits}
                for name, (m, p90, top, visits) in summary.items()}

    return {"sessions": args.sessions, "images": args.images, "seconds": args.seconds, "alone": pages(base),
            "under_load": pages(load), "median_ratio": {name: load[name][0] / base[name][0]
                                                         for name in load if name in base},
            "extraction": {"text": extraction.get("text"), "seconds": extraction.get("seconds"),
                           "outlasted_browsing": overlap} if args.images else None,
            "cpu": {"wall_s": cpu[2], "cores": cores, "server_s": cpu[0], "browsers_s": cpu[1]},
            "visits_under_load": total, "errors": errors, "alone_errors": alone_errors}


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("load", __doc__)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--images", type=int, default=1500, help="0: no extraction, browsing alone")
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--baseline", type=float, default=60, help="seconds of one session alone first")
    args = parser.parse_args(argv)
    figures = save("load", args, asyncio.run(run(args)))
    if figures["errors"] or figures["alone_errors"]:
        sys.exit(1)
    return figures


if __name__ == "__main__":
    main()
