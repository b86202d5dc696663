"""Our reducers against the calls the write-ups make, on the same features in one invocation.

Run:  python -m benchmarks reduce [--sizes 10000,50000] [--dim 512] [--large 100000] [--cli] [--json PATH]

Features are a seeded mixture of 20 clusters, each spread over its own 16-dimensional subspace
of a 512-dimensional space, non-negative like pooled CNN features (float32).

1. t-SNE: scikit-learn's ``TSNE(n_components=2, random_state=0).fit_transform(x)`` against ours
   (a cold start: no neighbour graph on disk). UMAP: umap-learn's ``UMAP(random_state=0)`` on the raw
   features against ours. Seconds, trustworthiness@10 on a 2,000-point sample, and the speed-up.
2. Slider moves at the first size: perplexity 30 -> 50 and n_neighbors 15 -> 30, starting from the map
   made before (as the page does): seconds to the first updated frame and to the finished map.
3. ``--cli``: ``python -m embedviz reduce --method umap`` twice in fresh processes (the second finds
   numba's compile cache).
4. ``--large N``: every method on N points, with peak memory.
Only ratios within one run are meaningful; the machine is noisy.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/reduce.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402


def mixture(n: int, d: int = 512, k: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, (k, d)).astype(np.float32)
    basis = rng.normal(0, 0.25, (k, 16, d)).astype(np.float32)
    labels = rng.integers(0, k, n)
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 10_000):
        part = slice(start, start + 10_000)
        z = rng.normal(0, 1, (len(labels[part]), 16)).astype(np.float32)
        x[part] = centres[labels[part]] + np.einsum("nj,njd->nd", z, basis[labels[part]])
        x[part] += rng.normal(0, 0.3, x[part].shape).astype(np.float32)
    return np.maximum(x, 0), labels


def trust(x: np.ndarray, coords: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    rows = np.random.default_rng(0).choice(len(x), min(2000, len(x)), replace=False)
    return float(trustworthiness(x[rows], coords[rows], n_neighbors=10))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def ours(x, method, params=None, **kw):
    from embedviz.maps.reducers import compute_embedding

    return compute_embedding(x, method, params or {}, **kw)


def versus(sizes: list[int], dim: int, skip_sklearn_above: int) -> list[dict]:
    rows = []
    print("\n## Our methods against the library defaults (seconds, trustworthiness@10)\n")
    print("| points | method | theirs s | theirs trust | ours s | ours trust | speed-up |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in sizes:
        x, _ = mixture(n, dim)
        if n <= skip_sklearn_above:
            from sklearn.manifold import TSNE

            theirs, their_s = timed(lambda x=x: TSNE(n_components=2, random_state=0).fit_transform(x))
            their_t = trust(x, theirs)
        else:
            their_s = their_t = float("nan")
        with tempfile.TemporaryDirectory() as cache:
            mine, my_s = timed(lambda x=x, cache=cache: ours(x, "tsne", cache_dir=Path(cache)))
        rows.append({"points": n, "method": "tsne", "theirs_s": their_s, "theirs_trust": their_t, "ours_s": my_s,
                     "ours_trust": trust(x, mine.coords), "speed_up": their_s / my_s})
        print(f"| {n:,} | t-SNE | {their_s:.1f} | {their_t:.4f} | {my_s:.1f} | {rows[-1]['ours_trust']:.4f} "
              f"| {their_s / my_s:.1f}x |", flush=True)
        from embedviz.maps.reducers.methods import import_umap

        umap = import_umap()
        umap.UMAP(random_state=0).fit_transform(x[:300])  # compile before either is timed
        theirs, their_s = timed(lambda umap=umap, x=x: umap.UMAP(random_state=0).fit_transform(x))
        with tempfile.TemporaryDirectory() as cache:
            mine, my_s = timed(lambda x=x, cache=cache: ours(x, "umap", cache_dir=Path(cache)))
        rows.append({"points": n, "method": "umap", "theirs_s": their_s, "theirs_trust": trust(x, theirs),
                     "ours_s": my_s, "ours_trust": trust(x, mine.coords), "speed_up": their_s / my_s})
        print(f"| {n:,} | UMAP | {their_s:.1f} | {rows[-1]['theirs_trust']:.4f} | {my_s:.1f} "
              f"| {rows[-1]['ours_trust']:.4f} | {their_s / my_s:.1f}x |", flush=True)
    return rows


def slider_moves(n: int, dim: int) -> list[dict]:
    rows = []
    print(f"\n## Slider moves at {n:,} x {dim} (from the previous map; seconds)\n")
    print("| change | first updated frame | finished | map moved (Procrustes disparity) |")
    print("|---|---:|---:|---:|")
    from scipy.spatial import procrustes

    x, _ = mixture(n, dim)
    key = "benchmark-slider"
    with tempfile.TemporaryDirectory() as cache:
        for method, name, before, after in (("tsne", "perplexity", 30, 50), ("umap", "n_neighbors", 15, 30)):
            previous = ours(x, method, {name: before}, features_key=key, cache_dir=Path(cache))
            frames: list[float] = []
            start = time.perf_counter()
            moved = ours(x, method, {name: after}, features_key=key, cache_dir=Path(cache), init=previous,
                         on_frame=lambda coords, done, total, frames=frames, start=start:
                         frames.append(time.perf_counter() - start))
            finished = time.perf_counter() - start
            first = frames[0] if frames else finished
            disparity = procrustes(previous.coords, moved.coords)[2]
            rows.append({"method": method, "parameter": name, "before": before, "after": after,
                         "first_frame_s": first, "finished_s": finished, "procrustes_disparity": disparity})
            print(f"| {method} {name} {before} -> {after} | {first:.2f} | {finished:.2f} | {disparity:.4f} |",
                  flush=True)
    return rows


def cli_runs(n: int, dim: int) -> dict[str, float]:
    seconds = {}
    print(f"\n## UMAP from the command line, {n:,} x {dim}, two fresh processes (seconds)\n")
    x, _ = mixture(n, dim)
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "features.npy"
        np.save(path, x)
        env = {**os.environ, "EMBEDVIZ_HOME": home}
        for run in ("first (compiles)", "second"):
            out = Path(home) / f"map-{run[:5]}.csv"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "embedviz", "reduce", "--features", str(path), "--method", "umap",
                            "--out", str(out)], check=True, env=env, capture_output=True)
            seconds[run] = time.perf_counter() - start
            print(f"- {run}: {seconds[run]:.1f} s", flush=True)
            # the map itself is cached now; the next process must compute it again
            for stale in Path(home, "embeddings").glob("*.npz"):
                stale.unlink()
    return seconds


def large(n: int, dim: int) -> list[dict]:
    rows = []
    print(f"\n## Every method at {n:,} x {dim}\n")
    print("| method | seconds | peak memory of the process so far (GiB) |")
    print("|---|---:|---:|")
    x, _ = mixture(n, dim)
    with tempfile.TemporaryDirectory() as cache:
        for method in ("pca", "tsne", "umap"):
            steps = []
            _, seconds = timed(lambda method=method, steps=steps: ours(
                x, method, cache_dir=Path(cache), progress=lambda done, total, message: steps.append(message)))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            rows.append({"points": n, "method": method, "seconds": seconds, "progress_updates": len(steps),
                         "peak_gib": peak})
            print(f"| {method} ({len(steps)} progress updates) | {seconds:.1f} | {peak:.1f} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("reduce", __doc__)
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--skip-sklearn-above", type=int, default=50_000)
    parser.add_argument("--large", type=int, default=0)
    parser.add_argument("--cli", action="store_true")
    parser.add_argument("--only", choices=("versus", "sliders", "cli", "large"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ.setdefault("EMBEDVIZ_HOME", tempfile.mkdtemp(prefix="embedviz-bench-"))
    print(f"# Reducers on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    figures: dict = {"dim": args.dim}
    if args.only in (None, "versus"):
        figures["versus"] = versus(sizes, args.dim, args.skip_sklearn_above)
    if args.only in (None, "sliders"):
        figures["sliders"] = slider_moves(sizes[0], args.dim)
    if args.cli or args.only == "cli":
        figures["cli_umap_s"] = cli_runs(sizes[0], args.dim)
    if args.large or args.only == "large":
        figures["large"] = large(args.large or 100_000, args.dim)
    return save("reduce", args, figures)


if __name__ == "__main__":
    main()
