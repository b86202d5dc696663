"""Text search over stored CLIP features: the first query against the ones after it, in one invocation.

Stored features: N vectors of open_clip ViT-B-32's width (512), seeded (their values do not change the
time; extracting 10,000 images through ViT-B-32 on 2 CPU cores would take minutes and measure the
extraction instead). The model: ViT-B-32 with random weights (seed 0), its text tower and tokenizer as
open_clip builds them (the same size as the published model).

1. The notebook's way, per query: build the model, tokenize, encode the text, normalise every
   feature, rank them (what re-running a cell costs).
2. embedviz: ``search_model(...)`` once, then ``encode_text`` and ``similarity`` + ``top`` per query,
   the text tower and the unit-length features kept between queries.

Target (issue 21): ≤ 0.5 s a query over 10,000 features after the first.
Run: python -m benchmarks search [--features 10000] [--queries 20] [--json PATH]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/search.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402

QUERIES = ["a dog on grass", "a red car", "two people at a table", "a cat asleep", "a city street at night",
           "a bowl of fruit", "a mountain lake", "a child with a kite", "a plane in the sky", "a handwritten digit"]


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("search", __doc__)
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args(argv)

    import logging

    import torch

    logging.getLogger().setLevel(logging.ERROR)  # open_clip says at the root logger that weights are random
    torch.set_num_threads(os.cpu_count() or 1)
    from embedviz.explore.search import search_model, similarity, top, unit_features

    rng = np.random.default_rng(0)
    stored = rng.normal(0, 1, (args.features, 512)).astype(np.float32)
    architecture = "clip:ViT-B-32"
    manifest = {"model": architecture, "weights_sha256": "random:seed0", "weights": "random", "layer": None}
    print(f"# Text search on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch {torch.__version__}")
    print(f"{args.features:,} stored features x 512, ViT-B-32 (random weights), {args.queries} queries")

    def notebook(text: str) -> np.ndarray:
        import open_clip

        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        with torch.inference_mode():
            query = model.encode_text(tokenizer([text])).float().numpy()[0]
        unit_rows = stored / np.linalg.norm(stored, axis=1, keepdims=True)
        scores = unit_rows @ (query / np.linalg.norm(query))
        return np.argsort(-scores)[:50]

    loop = []
    for text in QUERIES[:3]:
        start = time.perf_counter()
        notebook(text)
        loop.append(time.perf_counter() - start)

    start = time.perf_counter()
    model = search_model(manifest, None)
    first_rows = top(similarity(unit_features(stored, "bench"), model.encode_text([QUERIES[0]])[0]), 50)
    first_s = time.perf_counter() - start
    after = []
    for i in range(args.queries):
        start = time.perf_counter()
        scores = similarity(unit_features(stored, "bench"), model.encode_text([QUERIES[i % len(QUERIES)]])[0])
        rows = top(scores, 50)
        after.append(time.perf_counter() - start)
    same = bool(np.array_equal(first_rows, notebook(QUERIES[0])))
    median, worst = statistics.median(after), max(after)
    print(f"  notebook, per query (model built each time)  {statistics.median(loop):6.2f} s (median of {len(loop)})")
    print(f"  embedviz, the first query (tower built)      {first_s:6.2f} s")
    print(f"  embedviz, later queries                      {median:6.3f} s median, {worst:.3f} s worst "
          f"(target ≤ 0.5 s) = {statistics.median(loop) / median:,.0f}x faster than the notebook")
    print(f"  the same top 50 as the notebook's: {same}; {len(rows)} listed")
    return save("search", args, {"features": args.features, "notebook_s": statistics.median(loop),
                                 "first_s": first_s, "after_median_s": median, "after_worst_s": worst,
                                 "same_top": same})


if __name__ == "__main__":
    main()
