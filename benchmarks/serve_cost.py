"""Server CPU per page visit, with Python's collector as Streamlit leaves it and with embedviz's freeze.

    python -m benchmarks serve_cost [--rounds 4] [--soak 500] [--json PATH]

In one invocation, on one ``$EMBEDVIZ_HOME`` (the demo's features and map made once, by the first
server), two servers in turn: ``EMBEDVIZ_GC_FREEZE=0`` (Streamlit's full collection after every script
run walks every object) and ``=1`` (embedviz freezes the long-lived objects after new imports, see
``embedviz/serve/memory.py``). For each, one browser session opens the app, visits every page twice to
warm it (imports, caches), then moves through the sidebar ``--rounds`` times. Each visit's cost is the
CPU the server and its children used from the click until the page is ready and the server is idle
again (read from ``/proc``), in core-seconds; the table gives each page's median for both servers, their
ratio, and the server's resident memory at the end. ``--soak N``: N more visits on the frozen server,
its resident memory read every 50.

Targets (issue 22): ≤ 0.06 core-s a visit for Home, Data & model, Extract, Point and Runs; ≤ 0.1 for
Explore and Reduce (0.26-0.34 for all before).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/serve_cost.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.load import CHROMIUM, _cpu_seconds, _ready, _server_family, _visit  # noqa: E402
from benchmarks.report import make_parser, save  # noqa: E402
from benchmarks.server import start  # noqa: E402

#: (sidebar link text, the page's title, whether it draws a map, the target in core-seconds)
PAGES = [("Home", "embedviz", True, 0.06), ("Data and model", "Data & model", False, 0.06),
         ("Extract", "Extract features", False, 0.06), ("Reduce", "Reduce to a map", True, 0.1),
         ("Explore", "Explore", True, 0.1), ("Point", "A point up close", False, 0.06), ("Runs", "Runs", False, 0.06)]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _idle_cpu(pids: list[int], quiet: float = 0.3, limit: float = 10.0) -> float:
    """The server family's CPU seconds once it has used none for ``quiet`` seconds (its collection
    after the script run, and any fragment, are over)."""
    deadline = time.monotonic() + limit
    last = _cpu_seconds(pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = _cpu_seconds(pids)
        if now - last < 0.01:
            return now
        last = now
    return last


async def measure(home: Path, freeze: bool, rounds: int, soak: int = 0) -> dict:
    from playwright.async_api import async_playwright

    env = {"EMBEDVIZ_WARMUP": "0", "EMBEDVIZ_GC_FREEZE": "1" if freeze else "0"}
    costs: dict[str, list[float]] = {}
    errors: list[str] = []
    with start(home, home / f"streamlit-freeze-{int(freeze)}.log", env) as running:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = await (await browser.new_context(viewport={"width": 1300, "height": 900})).new_page()
            await page.goto(running.url, timeout=300_000)
            error = await _ready(page, "embedviz", True, 300_000)
            if error:
                errors.append(f"first open: {error}")
            for _ in range(2):  # warm: every page's imports, caches and map
                for link, title, has_map, _ in PAGES:
                    _, error = await _visit(page, link, title, has_map, 300_000)
                    if error:
                        errors.append(f"warming {title}: {error}")
            for _ in range(rounds):
                for link, title, has_map, _ in PAGES:
                    pids = _server_family(running.pid)
                    before = await _idle_cpu(pids)
                    _, error = await _visit(page, link, title, has_map)
                    after = await _idle_cpu(_server_family(running.pid))
                    costs.setdefault(title, []).append(after - before)
                    if error:
                        errors.append(f"{title}: {error}")
            rss = _rss_mib(running.pid)
            soaked = []  # (visits, resident MiB) every 50 visits
            for visit in range(1, soak + 1):
                link, title, has_map, _ = PAGES[visit % len(PAGES)]
                _, error = await _visit(page, link, title, has_map)
                if error:
                    errors.append(f"soak, {title}: {error}")
                if visit % 50 == 0:
                    soaked.append((visit, _rss_mib(running.pid)))
            await browser.close()
    return {"freeze": freeze, "median_core_s": {t: statistics.median(v) for t, v in costs.items()},
            "all_core_s": costs, "rss_mib": rss, "soak_rss_mib": soaked, "errors": errors}


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("serve_cost", __doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--soak", type=int, default=0, help="then this many more visits on the frozen server, "
                        "its resident memory read every 50 (target: the last within 10%% of the first)")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="embedviz-serve-cost-"))
    off = asyncio.run(measure(home, False, args.rounds))
    on = asyncio.run(measure(home, True, args.rounds, args.soak))
    print(f"one session, {args.rounds} rounds over {len(PAGES)} pages after two warm rounds; "
          f"{os.cpu_count()} cores; core-seconds of the server and its children per visit (median)")
    print(f"{'page':18s} {'collector as is':>16s} {'frozen':>8s} {'ratio':>7s} {'target':>7s} {'met':>4s}")
    met = {}
    for _, title, _, target in PAGES:
        a, b = off["median_core_s"].get(title, float("nan")), on["median_core_s"].get(title, float("nan"))
        met[title] = b <= target
        print(f"{title:18s} {a:16.3f} {b:8.3f} {a / b if b else float('nan'):6.1f}x {target:7.2f} "
              f"{'yes' if met[title] else 'no':>4s}")
    print(f"server memory at the end: {off['rss_mib']:.0f} MiB (as is), {on['rss_mib']:.0f} MiB (frozen)")
    if on["soak_rss_mib"]:
        (first_n, first), (last_n, last) = on["soak_rss_mib"][0], on["soak_rss_mib"][-1]
        print(f"soak, frozen server: {first:.0f} MiB after {first_n} visits, {last:.0f} MiB after {last_n} "
              f"({(last - first) / first:+.1%}; target within 10%): "
              + ", ".join(f"{mib:.0f}" for _, mib in on["soak_rss_mib"]))
    for line in off["errors"] + on["errors"]:
        print("  error:", line)
    return save("serve_cost", args, {"rounds": args.rounds, "as_is": off, "frozen": on, "met": met})


if __name__ == "__main__":
    main()
