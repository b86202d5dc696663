"""What a CUDA GPU changes: PCA maps and extracted features, each against the CPU, in one invocation.

1. PCA: scikit-learn's ``PCA(n_components=2).fit_transform(x)`` against embedviz's PCA map
   (``compute_embedding(x, "pca")``, a thin SVD in torch on the GPU when there is one), at each of
   ``--sizes`` x ``--dim`` (the seeded mixture of benchmarks/reduce.py; stored features, so not hashed
   again, as in the app); seconds, the speed-up, the
   explained variance of each, and the largest difference between the two maps relative to their spread.
2. Features: the same images through the same model on the CPU (float32) and on the GPU (bf16 autocast,
   channels-last, as the engine runs there): the demo model on the demo digits and ``--model`` (random
   weights) on photo-sized JPEGs; per-image cosine similarity of the features (lowest and median), the
   largest difference relative to the features' spread, and the share of images given the same top class.

Run: python -m benchmarks gpu [--sizes 100000,1000000] [--dim 512] [--model resnet50] [--images 512] [--json PATH]
Without a CUDA GPU it says so and measures nothing.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/gpu.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402


def pca_rows(sizes: list[int], dim: int) -> list[dict]:
    from sklearn.decomposition import PCA

    from benchmarks.reduce import mixture, timed
    from embedviz.maps.reducers import compute_embedding

    rows = []
    print("\n## PCA: scikit-learn on the CPU against embedviz on the GPU\n")
    print("| points | scikit-learn (s) | embedviz (s) | speed-up | backend | explained (sklearn / ours) | "
          "largest difference / spread |")
    print("|---:|---:|---:|---:|---|---|---:|")
    for n in sizes:
        x, _ = mixture(n, dim)
        reference = PCA(n_components=2, random_state=0)
        theirs, sklearn_s = timed(lambda reference=reference, x=x: reference.fit_transform(x))
        with tempfile.TemporaryDirectory() as cache:
            compute_embedding(x[:1000], "pca", cache_dir=Path(cache))  # warm-up: CUDA context, cuSOLVER
            # features_key as the app passes it for a stored set: the features are not hashed again
            embedding, ours_s = timed(lambda x=x, cache=cache: compute_embedding(
                x, "pca", cache_dir=Path(cache), features_key=f"bench-{len(x)}"))
        coords = np.asarray(embedding.raw if embedding.raw is not None else embedding.coords)
        spread = float(np.abs(theirs).max())
        difference = float(np.abs(coords - theirs).max()) / spread
        explained = float(reference.explained_variance_ratio_.sum())
        details = " ".join(embedding.details)
        row = {"points": n, "dim": dim, "sklearn_s": sklearn_s, "embedviz_s": ours_s, "speedup": sklearn_s / ours_s,
               "backend": embedding.backend, "sklearn_explained": explained, "embedviz_details": details,
               "max_difference_over_spread": difference}
        rows.append(row)
        print(f"| {n:,} | {sklearn_s:.2f} | {ours_s:.2f} | {sklearn_s / ours_s:.1f}x | {embedding.backend} | "
              f"{explained:.3f} / {details} | {difference:.1e} |", flush=True)
    return rows


def agreement(cpu, gpu) -> dict:
    a, b = np.asarray(cpu.features, dtype=np.float64), np.asarray(gpu.features, dtype=np.float64)
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    same = (cpu.samples["prediction"] == gpu.samples["prediction"]).mean() if "prediction" in cpu.samples else None
    return {"images": len(a), "dim": a.shape[1], "cosine_min": float(cosine.min()),
            "cosine_median": float(np.median(cosine)),
            "max_difference_over_spread": float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12)),
            "same_top_class": None if same is None else float(same),
            "gpu_device": gpu.manifest["device"]}


def feature_rows(model_name: str, images: int) -> list[dict]:
    from benchmarks.extract import make_jpegs
    from embedviz.data.demo import demo_collection
    from embedviz.data.images import load_folder
    from embedviz.extract.features import extract_features
    from embedviz.extract.models import load_model

    rows = []
    print("\n## Features: the GPU (bf16 autocast) against the CPU (float32), same images and model\n")
    print("| model | images x dim | cosine lowest / median | largest difference / spread | same top class |")
    print("|---|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("demo (digits)", demo_collection(), load_model("demo")),
                 (f"{model_name} (random weights)", load_folder(make_jpegs(Path(tmp) / "jpegs", images)),
                  load_model(model_name, "random"))]
        for name, collection, model in cases:
            cpu = extract_features(collection, model, device="cpu")
            gpu = extract_features(collection, model, device="cuda")
            row = {"model": name, **agreement(cpu, gpu)}
            rows.append(row)
            same = "n/a" if row["same_top_class"] is None else f"{row['same_top_class']:.1%}"
            print(f"| {name} | {row['images']:,} x {row['dim']} | {row['cosine_min']:.5f} / "
                  f"{row['cosine_median']:.5f} | {row['max_difference_over_spread']:.1e} | {same} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("gpu", __doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU here: nothing to measure.")
        return save("gpu", args, {"gpu": None})
    os.environ.setdefault("EMBEDVIZ_HOME", tempfile.mkdtemp(prefix="embedviz-bench-"))
    gpu = torch.cuda.get_device_name()
    print(f"# {gpu} · {platform.machine()}, {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"torch {torch.__version__} (CUDA {torch.version.cuda})")
    start = time.perf_counter()
    figures = {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
               "pca": pca_rows([int(s) for s in args.sizes.split(",")], args.dim),
               "features": feature_rows(args.model, args.images)}
    figures["total_s"] = time.perf_counter() - start
    return save("gpu", args, figures)


if __name__ == "__main__":
    main()
