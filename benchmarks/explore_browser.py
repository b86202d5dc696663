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
3. pan: seconds from a pan drag to the axis range having moved (the browser alone: no rerun);
4. hover (sizes up to ``--images``, whose maps come with a small PNG per point): milliseconds from the
   pointer coming to rest on a point to its image showing in the preview (the atlas sheet loaded), for
   five points, the first on a cold page; the atlas is packed by a first visit from another browser
   session (its seconds are reported as "atlas packed"), so each size's measured draw is a new
   session's first visit to a server that has read the data, on both servers alike;
5. pictures: a zoom (``Plotly.relayout``, as a zoom drag ends) to a box holding about 1,000 points:
   seconds until every point in view is drawn as its image.

With ``--baseline REV`` (default: the last commit that drew the map with ``st.plotly_chart``) a second
server runs that commit from a temporary ``git worktree`` in the same invocation, and the draw and the
box selections are measured on it too, size by size, so the map component is compared with what it
replaced on the same machine at the same time.

Only ratios within one run are meaningful; the machine is noisy. The sizes run in order, so the
first one (1,000 points) is the baseline the others are compared with.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as ``python benchmarks/explore_browser.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402
from benchmarks.server import ROOT, serve  # noqa: E402

WANTS = (10_000, 60_000)
#: The last commit whose Explore page drew the map with ``st.plotly_chart`` (before the map component).
PLOTLY_CHART = "43a999e"


def make_images(n: int, folder: Path, labels: np.ndarray, seed: int = 0) -> None:
    """A 24-px PNG per point (``folder/img/NNNNNNN.png``): its class's colour with a seeded pattern."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    palette = rng.integers(40, 255, (int(labels.max()) + 1, 3))
    for i, label in enumerate(labels):
        pixels = np.clip(palette[label] + rng.integers(-40, 40, (24, 24, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "img" / f"{i:07d}.png")


def make_map(n: int, folder: Path, seed: int = 0, images: bool = False) -> tuple[Path, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
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
    if images:
        make_images(n, folder, labels, seed)
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


_POINT = """j => { const p = document.querySelector('.embedviz-map-plot');
  const fl = p._fullLayout, r = p.getBoundingClientRect();
  const traces = p._fullData.filter(t => t.type === 'scattergl' && t.x && t.x.length);
  let k = j % traces.reduce((n, t) => n + t.x.length, 0);
  for (const t of traces) {
    if (k < t.x.length) return [r.left + fl._size.l + fl.xaxis.d2p(t.x[k]), r.top + fl._size.t + fl.yaxis.d2p(t.y[k])];
    k -= t.x.length;
  } }"""
_PREVIEWED = """() => { const tip = document.querySelector('.embedviz-map-preview');
  const image = document.querySelector('.embedviz-map-preview-image');
  return !!(tip && tip.dataset.row && image && image.dataset.ready === '1'); }"""


def hover_and_pictures(page, xy: np.ndarray) -> dict:
    """Milliseconds from resting on a point to its image, and seconds to pictures after a zoom."""
    page.locator(".embedviz-map[data-state=ready]").first.wait_for(timeout=600_000)
    page.wait_for_timeout(1500)
    times = []
    for j in (0, 7, 300, 2000, 5000):
        page.mouse.move(5, 5)
        page.wait_for_function("() => !document.querySelector('.embedviz-map-preview').dataset.row", timeout=10_000)
        x, y = page.evaluate(_POINT, j)
        page.mouse.move(x - 3, y - 3)
        start = time.monotonic()
        page.mouse.move(x, y)
        page.wait_for_function(_PREVIEWED, timeout=30_000, polling="raf")
        times.append((time.monotonic() - start) * 1000)
    x0, x1, y0, y1 = box_holding(xy, 1000)
    start = time.monotonic()
    page.evaluate("""([x0, x1, y0, y1]) => Plotly.relayout(document.querySelector('.embedviz-map-plot'),
      {'xaxis.range': [x0, x1], 'yaxis.range': [y0, y1]})""", [x0, x1, y0, y1])
    page.wait_for_function("() => { const m = document.querySelector('.embedviz-map');"
                           " return m.dataset.inview && m.dataset.pictures === m.dataset.inview; }",
                           timeout=60_000, polling="raf")
    pictures_s = time.monotonic() - start
    root = page.locator(".embedviz-map").first
    return {"hover_ms": times, "hover_first_ms": times[0], "hover_max_later_ms": max(times[1:]),
            "pictures_s": pictures_s, "pictures_n": int(root.get_attribute("data-pictures"))}


def warm(browser, url: str, n: int, path: Path, xy: np.ndarray) -> float:
    """Open the map once in a browser session of its own (the server reads the data, and packs the
    images' atlas where there are images); the measured session is a fresh one, whose first draw is
    what a user's first visit costs. Returns the seconds the visit took."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    measure(page, url, n, path, xy, warm_up=True)
    start = time.monotonic()
    page.locator(".st-key-sidebar_nav a", has_text="Explore").click()
    page.wait_for_function(_DRAWN, timeout=900_000, polling=100)
    took = time.monotonic() - start
    context.close()
    return took


def measure(page, url: str, n: int, path: Path, xy: np.ndarray, previews: bool = False, warm_up: bool = False) -> dict:
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
    if warm_up:  # another session opened this map before (its atlas packed): only the server is warm
        return result
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
    if previews:
        page.mouse.dblclick(area["x"] + 5, area["y"] + area["height"] - 5)  # back to the whole map
        page.wait_for_timeout(1000)
        result.update(hover_and_pictures(page, xy))
    return result


@contextlib.contextmanager
def checkout(rev: str):
    """``rev`` of this repository in a temporary git worktree (removed after)."""
    folder = Path(tempfile.mkdtemp(prefix="embedviz-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("explore_browser", __doc__)
    parser.add_argument("--sizes", default="1000,100000,300000,1000000")
    parser.add_argument("--images", type=int, default=100_000,
                        help="maps of at most this many points come with an image per point (hover, pictures)")
    parser.add_argument("--baseline", default=PLOTLY_CHART,
                        help="a commit to measure beside this checkout in the same invocation ('' for none)")
    parser.add_argument("--chromium", default=os.environ.get("EMBEDVIZ_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"headless Chromium ({args.chromium}), software WebGL")
    rows, before = [], []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # the maps are read through "Path on this server", which is off unless a folder is shared
        env = {"EMBEDVIZ_WARMUP": "0", "EMBEDVIZ_DATA_ROOTS": tmp}
        url = stack.enter_context(serve(home / "now", home / "streamlit.log", env))
        old_url = None
        if args.baseline:
            old_root = stack.enter_context(checkout(args.baseline))
            old_url = stack.enter_context(serve(home / "before", home / "streamlit-before.log", env, root=old_root))
        p = stack.enter_context(sync_playwright())
        browser = p.chromium.launch(executable_path=args.chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        for n in sizes:
            images = n <= args.images
            start = time.monotonic()
            path, xy = make_map(n, Path(tmp) / f"set_{n}", images=images)
            made = time.monotonic() - start
            for target, into in ([(old_url, before)] if old_url else []) + [(url, rows)]:
                warm_s = warm(browser, target, n, path, xy)
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                result = measure(context.new_page(), target, n, path, xy, previews=images and target == url)
                context.close()
                result["warm_visit_s"] = warm_s
                if images and target == url:
                    result["images_made_s"] = made
                    result["atlas_s"] = warm_s  # the warm-up visit packed the atlas (and drew the map)
                into.append(result)
                print(("before: " if into is before else "") + str({k: (round(v, 2) if isinstance(v, float) else v)
                                                                   for k, v in result.items()}), flush=True)
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
    if before:
        print(f"\nThe map component against st.plotly_chart ({args.baseline}), same invocation:\n")
        print("| points | drawn before (s) | drawn now (s) | now / before | box ~10k before (s) | now (s) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for b, r in zip(before, rows):
            r["draw_vs_before"] = r["draw_s"] / b["draw_s"]
            cells = [f"{r['points']:,}", f"{b['draw_s']:.2f}", f"{r['draw_s']:.2f}", f"{r['draw_vs_before']:.2f}x",
                     f"{b['select_10k_s']:.2f}" if "select_10k_s" in b else "-",
                     f"{r['select_10k_s']:.2f}" if "select_10k_s" in r else "-"]
            print("| " + " | ".join(cells) + " |")
    if any("hover_ms" in r for r in rows):
        print("\n| points | atlas packed, with a first draw (s) | hover, cold page (ms) "
              "| hover, slowest of 4 more (ms) | pictures after a zoom to ~1,000 (s) |")
        print("|---:|---:|---:|---:|---:|")
        for r in rows:
            if "hover_ms" in r:
                print(f"| {r['points']:,} | {r['atlas_s']:.1f} | {r['hover_first_ms']:.0f} | "
                      f"{r['hover_max_later_ms']:.0f} | {r['pictures_s']:.2f} ({r['pictures_n']:,} pictures) |")
    for r in rows:
        if r.get("note"):
            print(f"{r['points']:,}: {r['note']}")
    for r in rows:
        r["draw_vs_first"] = r["draw_s"] / base
    return save("explore_browser", args, {"chromium": args.chromium, "sizes": rows, "before": before})


if __name__ == "__main__":
    main()
