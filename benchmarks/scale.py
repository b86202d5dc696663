"""Work at scale: the Ray engine against the local one, and a map of a million points.

Measured in one invocation.

``--part extract``: the same JPEG files through the same model with the local engine and then
with the Ray engine on a local Ray cluster started here (``--ray-cpus``), or on the cluster at
``--address``; throughput of each, their ratio, and whether the features are identical. The
cluster's start-up is timed apart: a team's cluster is already running.

``--part map``: a map of ``--points`` x ``--dim`` synthetic features (a seeded mixture of 20
clusters, each spread over its own 16-dimensional subspace), fitted on a stratified sample and the
rest placed in parallel batches; seconds per stage, peak memory of the process, and the
trustworthiness of the sample against the same number of points fitted alone.

Run: python -m benchmarks scale --part extract [--images 1024] [--model resnet18] [--batch-size 32]
            [--device auto] [--num-gpus-per-worker N] [--address ADDR] [--json PATH]
     python -m benchmarks scale --part map [--points 1000000] [--dim 512] [--method tsne] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/scale.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def extract_part(args: argparse.Namespace) -> dict:
    from benchmarks.extract import make_jpegs
    from embedviz.data.images import load_collection
    from embedviz.extract.features import RayOptions, extract_features
    from embedviz.extract.models import load_model
    from embedviz.extract.ray_engine import cluster_summary, connect

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_jpegs(Path(tmp) / "images", args.images)
        collection = load_collection(folder)
        model = load_model(args.model, "random")
        options = dict(batch_size=args.batch_size, device=args.device)
        extract_features(collection, model, **options)  # warm: files in the page cache, kernels chosen
        start = time.perf_counter()
        local = extract_features(collection, model, **options)
        local_s = time.perf_counter() - start

        start = time.perf_counter()
        connect(args.address, num_cpus=args.ray_cpus if not args.address else None)
        connect_s = time.perf_counter() - start
        cluster = cluster_summary()
        ray = RayOptions(address=args.address, num_gpus_per_worker=args.num_gpus_per_worker)
        runs, steady = [], []
        for _ in range(args.repeat):
            seen: list[tuple[float, int]] = []
            start = time.perf_counter()
            distributed = extract_features(collection, model, ray=ray, batch_size=args.batch_size,
                                           progress=lambda done, total, msg, seen=seen:
                                           seen.append((time.perf_counter(), done)))
            runs.append(time.perf_counter() - start)
            first = next((t, d) for t, d in seen if d > 0)  # after the first batch: actors up, model loaded
            span = seen[-1][0] - first[0]  # zero when all the images fit in one batch
            steady.append((seen[-1][1] - first[1]) / span if span > 0 else float("nan"))
        same = np.array_equal(local.features, distributed.features) and local.samples.equals(distributed.samples)
    n = len(collection)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; "
          f"cluster: {cluster['nodes']:g} node(s), {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs")
    print(f"{n} JPEGs 400x300, {args.model} (random weights), batch {args.batch_size}")
    print(f"local engine: {local_s:.1f} s = {n / local_s:.1f} img/s")
    print(f"Ray cluster start (not in the rate): {connect_s:.1f} s")
    for i, seconds in enumerate(runs, 1):
        print(f"Ray engine run {i}: {seconds:.1f} s = {n / seconds:.1f} img/s = {local_s / seconds:.2f}x the local "
              f"engine (target >= 0.8x); after its first batch {steady[i - 1]:.1f} img/s")
    print(f"features identical: {same}; device {distributed.manifest['device']}")
    return {"images": n, "model": args.model, "batch_size": args.batch_size, "cluster": cluster,
            "local_s": local_s, "local_images_per_s": n / local_s, "ray_connect_s": connect_s,
            "ray_runs_s": runs, "ray_vs_local": [local_s / seconds for seconds in runs],
            "ray_after_first_batch_images_per_s": steady, "identical": bool(same),
            "device": distributed.manifest["device"]}


def map_part(args: argparse.Namespace) -> dict:
    from benchmarks.reduce import mixture, trust
    from embedviz.maps.reducers import Sample, compute_embedding

    start = time.perf_counter()
    x, labels = mixture(args.points, args.dim)
    make_s = time.perf_counter() - start
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(f"{args.points:,} x {args.dim} float32 features ({x.nbytes / 2**30:.2f} GiB) made in {make_s:.1f} s; "
          f"peak so far {_peak_gib():.2f} GiB")
    stages: list[tuple[float, str]] = []
    last = {"t": time.perf_counter(), "msg": ""}

    def progress(done: int, total: int, message: str) -> None:
        head = message.split(":")[0].split(" iteration")[0]
        if head != last["msg"]:
            now = time.perf_counter()
            stages.append((now, head))
            print(f"  {now - start:7.1f} s  {message}", flush=True)
            last["msg"] = head

    start = time.perf_counter()
    embedding = compute_embedding(x, args.method, n_components=2, random_state=0,
                                  sample=Sample(args.sample, "label"), strata=labels, progress=progress)
    total_s = time.perf_counter() - start
    print(f"{args.method} map of {args.points:,} points, fitted on a stratified sample of {args.sample:,}: "
          f"{total_s:.1f} s (target < 900 s); peak memory {_peak_gib():.2f} GiB (target < 8)")
    for note in embedding.notes + embedding.details:
        print(f"  note: {note}")
    trustworthiness = trust(x, embedding.coords)
    print(f"trustworthiness@10 on 2,000 random points: {trustworthiness:.4f}")
    return {"points": args.points, "dim": args.dim, "method": args.method, "sample": args.sample,
            "features_gib": x.nbytes / 2**30, "make_s": make_s, "total_s": total_s, "peak_gib": _peak_gib(),
            "stages": [{"at_s": at - start, "stage": name} for at, name in stages],
            "notes": list(embedding.notes + embedding.details), "trustworthiness": trustworthiness}


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("scale", __doc__)
    parser.add_argument("--part", choices=("extract", "map"), required=True)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count())
    parser.add_argument("--address", default=None)
    parser.add_argument("--device", default="auto", help="the local engine's device")
    parser.add_argument("--num-gpus-per-worker", type=float, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--method", default="tsne", choices=("tsne", "umap", "pca"))
    args = parser.parse_args(argv)
    figures = extract_part(args) if args.part == "extract" else map_part(args)
    return save("scale", args, {"part": args.part, **figures})


if __name__ == "__main__":
    main()
