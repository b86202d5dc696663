"""The Explore page in a real browser at 1,000 to 1,000,000 points, in one invocation.

Run:  python -m benchmarks explore_browser [--sizes 1000,100000,300000,1000000] [--chromium /usr/bin/chromium]
      [--json PATH]

One ``streamlit run app.py`` serves every size; Debian's Chromium (headless, software WebGL)
drives it with Playwright. For each size a seeded map of 20 Gaussian classes (Metascatter's
Parquet: ``Paths``, ``X-Coord``, ``Y-Coord``, label, prediction, confidence) is opened through
Data & model -> Path on this server, as a user would; then:

1. draw: seconds from clicking "Explore" in the sidebar to the map's WebGL canvas holding its
   points, and the megabytes the websocket carried meanwhile (ratio against the first size);
2. select: a box holding about 10,000 points, and one holding about 60,000 (where the map has
   that many), drawn with the toolbar's Box Select: seconds from releasing the mouse to the
   gallery's heading giving the count and its first image row showing;
3. pan: seconds from a pan drag to the axis range having moved (the browser alone: no rerun).

Only ratios within one run are meaningful; the machine is noisy. The sizes run in order, so the
first one (1,000 points) is the baseline the others are compared with.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as ``python benchmarks/explore_browser.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402
from benchmarks.server import serve  # noqa: E402

WANTS = (10_000, 60_000)


def make_map(n: int, folder: Path, seed: int = 0) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = 20
    centres = np.array([[np.cos(a) * 14, np.sin(a) * 14] for a in np.linspace(0, 2 * np.pi, k, endpoint=False)])
    labels = rng.integers(0, k, n)
    xy = (centres[labels] + rng.normal(0, 2.0, (n, 2))).astype(np.float32)
    prediction = np.where(rng.random(n) < 0.9, labels, rng.integers(0, k, n))
    table = pd.DataFrame({"Paths": [f"img/{i:07d}.png" for i in range(n)], "X-Coord": xy[:, 0], "Y-Coord": xy[:, 1],
                          "label": [f"class {c}" for c in labels], "prediction": [f"class {c}" for c in prediction],
                          "confidence": rng.uniform(0.3, 1.0, n).round(3)})
    path = folder / f"map_{n}.parquet"
    table.to_parquet(path, index=False)
    return path, xy


def box_holding(xy: np.ndarray, count: int) -> tuple[float, float, float, float]:
    """A box around the map's centre (the classes lie on a ring) that holds about ``count`` points."""
    centre = np.zeros(2)
    low, high = 0.01, 60.0
    for _ in range(40):
        half = (low + high) / 2
        inside = int((np.abs(xy - centre) <= half).all(axis=1).sum())
        low, high = (half, high) if inside < count else (low, half)
    half = (low + high) / 2
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


_DRAWN = """() => { const p = document.querySelector('.js-plotly-plot');
  return !!(p && p._fullData && p._fullData.length && p.querySelector('canvas')); }"""
_PIXELS = """([x0, x1, y0, y1]) => { const p = document.querySelector('.js-plotly-plot');
  const r = p.getBoundingClientRect(), xa = p._fullLayout.xaxis, ya = p._fullLayout.yaxis;
  return [r.left + xa._offset + xa.l2p(x0), r.left + xa._offset + xa.l2p(x1),
          r.top + ya._offset + ya.l2p(y1), r.top + ya._offset + ya.l2p(y0)]; }"""
_SELECTED = """() => {
  const h = [...document.querySelectorAll('h3')].find(h => /Selection · [1-9]/.test(h.textContent));
  if (!h) return 0; const panel = document.querySelector('[role=tabpanel]');
  if (!panel || !panel.querySelector('[data-testid=stImage] img, [data-testid=stCaptionContainer]')) return 0;
  return parseInt(h.textContent.split('·')[1].replace(/,/g, '')); }"""


def measure(page, url: str, n: int, path: Path, xy: np.ndarray) -> dict:
    received = {"bytes": 0}
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.__setitem__(
        "bytes", received["bytes"] + len(payload))))
    page.goto(f"{url}/Data_and_model")
    page.locator("[data-testid='stRadio'] label", has_text="Path on this server").click()
    page.locator("[data-testid='stRadio'] label", has_text="Features or a map made elsewhere").click()
    page.get_by_label("Features file, TensorBoard projector folder or Metascatter CSV").fill(str(path))
    page.get_by_role("button", name="Use this path").click()
    try:
        page.wait_for_selector("text=a map with its own coordinates", timeout=300_000)
    except Exception:
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "explore_benchmark_failure.png"), full_page=True)
        raise
    page.wait_for_timeout(1500)
    result: dict = {"points": n}
    received["bytes"] = 0
    start = time.monotonic()
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    try:
        page.wait_for_function(_DRAWN, timeout=300_000, polling=50)
    except Exception:
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "explore_benchmark_failure.png"), full_page=True)
        raise
    result["draw_s"] = time.monotonic() - start
    result["draw_mb"] = received["bytes"] / 1e6
    page.wait_for_timeout(2000)
    drag = page.locator(".js-plotly-plot .nsewdrag").first
    area = drag.bounding_box()
    for want in WANTS:
        if n < want * 1.2:
            continue
        page.mouse.move(area["x"] + 30, area["y"] + 30)  # the toolbar shows on hover; a cleared selection resets it
        page.locator(".js-plotly-plot .modebar-btn[data-title='Box Select']").first.click()
        x0, x1, y0, y1 = box_holding(xy, want)
        expected = int(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).sum())
        left, right, top, bottom = page.evaluate(_PIXELS, [x0, x1, y0, y1])
        page.mouse.move(left, top)
        page.mouse.down()
        page.mouse.move(right, bottom, steps=6)
        start = time.monotonic()
        page.mouse.up()
        try:
            got = page.wait_for_function(f"() => {{ const n = ({_SELECTED})(); return n > 0 && n; }}",
                                         timeout=120_000, polling=50).json_value()
        except Exception:
            page.screenshot(path=str(Path(tempfile.gettempdir()) / "explore_benchmark_failure.png"), full_page=True)
            raise
        result[f"select_{want // 1000}k_s"] = time.monotonic() - start
        result[f"select_{want // 1000}k_n"] = f"{got:,} (box holds {expected:,})"
        page.mouse.dblclick(area["x"] + 5, area["y"] + area["height"] - 5)  # clear it
        page.wait_for_timeout(2500)
    page.locator(".js-plotly-plot .modebar-btn[data-title='Pan']").first.click()
    before = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.xaxis.range.slice()")
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 150, cy + 60, steps=5)
    start = time.monotonic()
    page.mouse.up()
    page.wait_for_function("(b) => document.querySelector('.js-plotly-plot')._fullLayout.xaxis.range[0] !== b[0]",
                           arg=before, timeout=60_000, polling=20)
    result["pan_s"] = time.monotonic() - start
    shown = page.locator("[data-testid='stCaptionContainer']").filter(has_text="drawn as points").all_inner_texts()
    result["note"] = shown[0] if shown else ""
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("explore_browser", __doc__)
    parser.add_argument("--sizes", default="1000,100000,300000,1000000")
    parser.add_argument("--chromium", default=os.environ.get("EMBEDVIZ_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"headless Chromium ({args.chromium}), software WebGL")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as home:
        # the maps are read through "Path on this server", which is off unless a folder is shared
        env = {"EMBEDVIZ_WARMUP": "0", "EMBEDVIZ_DATA_ROOTS": tmp}
        with serve(Path(home), Path(home) / "streamlit.log", env) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            for n in sizes:
                path, xy = make_map(n, Path(tmp))
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                result = measure(context.new_page(), url, n, path, xy)
                context.close()
                rows.append(result)
                print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in result.items()}, flush=True)
            browser.close()
    base = rows[0]["draw_s"]
    print(f"\n| points | drawn (s) | vs {rows[0]['points']:,} | websocket (MB) | box ~10k (s) | box ~60k (s) "
          "| pan (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r['points']:,}", f"{r['draw_s']:.2f}", f"{r['draw_s'] / base:.2f}x", f"{r['draw_mb']:.2f}",
                 f"{r['select_10k_s']:.2f}" if "select_10k_s" in r else "-",
                 f"{r['select_60k_s']:.2f}" if "select_60k_s" in r else "-", f"{r['pan_s']:.2f}"]
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        if r.get("note"):
            print(f"{r['points']:,}: {r['note']}")
    for r in rows:
        r["draw_vs_first"] = r["draw_s"] / base
    return save("explore_browser", args, {"chromium": args.chromium, "sizes": rows})


if __name__ == "__main__":
    main()
