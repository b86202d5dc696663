"""The demo path, cold and then cached, in one invocation: what a first and a second start cost.

Run: python -m benchmarks pipeline [--json PATH]
Prints seconds per stage for a cold store (an empty EMBEDVIZ_HOME), then for the same calls again,
and the ratio cold/warm. Only ratios within this run are meaningful; the machine is noisy.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/pipeline.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402


def stages() -> dict[str, float]:
    from embedviz.data.demo import demo_collection
    from embedviz.extract.features import compute_features
    from embedviz.extract.models import load_model
    from embedviz.maps.reducers import compute_embedding

    seconds = {}
    t = time.perf_counter()
    collection = demo_collection()
    seconds["demo images"] = time.perf_counter() - t
    t = time.perf_counter()
    features = compute_features(collection, load_model("demo"))
    seconds["features"] = time.perf_counter() - t
    t = time.perf_counter()
    compute_embedding(features.features, "tsne", features_key=features.key)
    seconds["t-SNE map"] = time.perf_counter() - t
    return seconds


def main(argv: list[str] | None = None) -> dict:
    args = make_parser("pipeline", __doc__).parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        os.environ["EMBEDVIZ_HOME"] = home
        import torch  # imported before timing: both runs pay it equally in a real start

        cold = stages()
        warm = stages()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'stage':<14}{'cold s':>9}{'cached s':>10}{'ratio':>8}")
    for name in cold:
        print(f"{name:<14}{cold[name]:>9.2f}{warm[name]:>10.3f}{cold[name] / max(warm[name], 1e-6):>8.0f}x")
    total_cold, total_warm = sum(cold.values()), sum(warm.values())
    print(f"{'total':<14}{total_cold:>9.2f}{total_warm:>10.3f}{total_cold / max(total_warm, 1e-6):>8.0f}x")
    return save("pipeline", args, {"torch": torch.__version__, "threads": torch.get_num_threads(),
                                   "cold_s": {**cold, "total": total_cold}, "cached_s": {**warm, "total": total_warm}})


if __name__ == "__main__":
    main()
