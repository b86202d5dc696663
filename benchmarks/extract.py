"""Extraction speed: a per-image loop, embedviz's pipeline and the model alone, on the same JPEGs.

In one invocation, on the same JPEG files and the same model:

1. the per-image loop the write-ups use (open, torchvision transforms, ``model(x[None])``);
2. embedviz's pipeline (``extract_features``: decode workers, batches, inference mode);
3. the model alone on tensors already in memory, in the same batches (the ceiling).

Then a kill at half-way and a rerun against a full run (resume cost, identical features), and
reopening a stored set of 10,000 x 512 features.

Run: python -m benchmarks extract [--images N] [--model resnet18] [--size 224] [--device auto] [--json PATH]
Only the ratios are meant to be compared across machines; these machines are noisy.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as ``python benchmarks/extract.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402


def make_jpegs(folder: Path, count: int, seed: int = 0) -> Path:
    """Photo-sized JPEGs (400x300, quality 90) with smooth colour fields and shapes, in 4 classes."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    for i in range(count):
        label = f"class{i % 4}"
        (folder / label).mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((400, 300), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, 400), rng.integers(0, 300)
            r = int(rng.integers(10, 60))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        image = image.filter(ImageFilter.GaussianBlur(1))
        image.save(folder / label / f"{i:05d}.jpg", quality=90)
    return folder


def per_image_loop(paths: list[Path], module, size: int, device) -> float:
    """What the write-ups do: one image at a time through torchvision's transforms and the model."""
    import torch
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose([
        transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    module = module.to(device).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            x = transform(Image.open(path).convert("RGB")).unsqueeze(0).to(device)
            module(x).cpu()
    _sync(device)
    return time.perf_counter() - start


def model_alone(module, count: int, size: int, batch_size: int, device) -> float:
    """The ceiling: the same batches from memory, no decoding, same precision and layout as ours."""
    import torch

    from embedviz.extract import engine

    net = module.to(device).eval()
    engine._move(net, device)
    dtype = engine._autocast_dtype(device)
    x = torch.randn(batch_size, 3, size, size)
    if device.type == "cuda":
        x = x.pin_memory()
    with torch.inference_mode():
        engine._call(net, x, device, dtype)  # warm-up (cuDNN autotuning, allocator)
        _sync(device)
        start = time.perf_counter()
        done = 0
        while done < count:
            n = min(batch_size, count - done)
            engine._call(net, x[:n], device, dtype).float().cpu()
            done += n
        _sync(device)
    return time.perf_counter() - start


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("extract", __doc__)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    from embedviz.data.featureset import FeatureSet
    from embedviz.data.images import load_folder
    from embedviz.errors import Cancelled
    from embedviz.extract.engine import auto_batch_size, auto_workers, decode_chunk
    from embedviz.extract.features import compute_features, extract_features, resolve_device
    from embedviz.extract.models import load_model
    from embedviz.extract.preprocessing import make_preprocessing
    from embedviz.extract.store import FeatureStore

    device = resolve_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="embedviz-bench-"))
    os.environ["EMBEDVIZ_HOME"] = str(tmp / "home")
    try:
        collection = load_folder(make_jpegs(tmp / "jpegs", args.images))
        model = load_model(args.model, "random")
        model = model.with_preprocessing(make_preprocessing(args.size, 3, model.preprocessing.mean,
                                                            model.preprocessing.std, "crop"))
        batch = args.batch_size or auto_batch_size(device)
        workers = auto_workers(len(collection), batch, device) if args.workers is None else args.workers
        chunk = decode_chunk(len(collection), batch, workers)
        print(f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
              f"torch {torch.__version__} ({torch.get_num_threads()} threads) · device {device}"
              + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
        print(f"{len(collection)} JPEGs 400x300 -> {args.model} at {args.size} px, batch {batch} "
              f"(decoded and run in chunks of {chunk}), {workers} decode workers")

        extract_features(collection, model, device=str(device), batch_size=batch, num_workers=workers)  # warm-up
        t = time.perf_counter()
        ours = extract_features(collection, model, device=str(device), batch_size=batch, num_workers=workers)
        pipeline = time.perf_counter() - t
        ceiling = model_alone(model.module, len(collection), args.size, batch, device)
        loop = per_image_loop(collection.paths(), model.module, args.size, device)
        n = len(collection)
        rate = {"per-image loop": n / loop, "embedviz pipeline": n / pipeline, "model alone (ceiling)": n / ceiling}
        for name, value in rate.items():
            print(f"  {name:24s} {value:9.1f} images/s")
        print(f"  pipeline / ceiling      {rate['embedviz pipeline'] / rate['model alone (ceiling)']:9.2f}")
        print(f"  pipeline / per-image    {rate['embedviz pipeline'] / rate['per-image loop']:9.2f}x")
        assert ours.features.shape[0] == n

        store = FeatureStore(tmp / "store")
        t = time.perf_counter()
        full = compute_features(collection, model, store=store, device=str(device), batch_size=batch,
                                num_workers=workers)
        full_seconds = time.perf_counter() - t
        shutil.rmtree(store.root)
        store = FeatureStore(tmp / "store")

        def stop_half_way(done, total, message):
            return done >= total // 2

        t = time.perf_counter()
        try:
            compute_features(collection, model, store=store, device=str(device), batch_size=batch,
                             num_workers=workers, progress=stop_half_way)
        except Cancelled:
            pass
        killed = time.perf_counter() - t
        t = time.perf_counter()
        resumed = compute_features(collection, model, store=store, device=str(device), batch_size=batch,
                                   num_workers=workers)
        rerun = time.perf_counter() - t
        same = np.array_equal(np.asarray(resumed.features), np.asarray(full.features))
        print(f"  full run {full_seconds:.1f} s · stopped half-way after {killed:.1f} s · rerun {rerun:.1f} s "
              f"({resumed.manifest['resumed_images']} images resumed) = {rerun / full_seconds:.2f} of a full run; "
              f"identical features: {same}")

        import pandas as pd

        big = FeatureSet(np.random.default_rng(0).normal(size=(10_000, 512)).astype(np.float32),
                         pd.DataFrame({"sample_id": [f"img/{i:05d}.jpg" for i in range(10_000)],
                                       "path": [f"img/{i:05d}.jpg" for i in range(10_000)],
                                       "label": [f"class{i % 100}" for i in range(10_000)],
                                       "confidence": np.random.default_rng(1).random(10_000)}),
                         pd.DataFrame(columns=["path", "reason"]), {})
        store.put("bench10k", big)
        t = time.perf_counter()
        again = FeatureStore(tmp / "store").get("bench10k")
        float(np.asarray(again.features).sum())  # touch every page of the memory map
        reopen = time.perf_counter() - t
        print(f"  reopening 10,000 x 512 stored features: {reopen:.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return save("extract", args, {
        "images": n, "model": args.model, "size": args.size, "device": str(device), "batch_size": batch,
        "workers": workers, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "images_per_s": rate, "pipeline_vs_ceiling": rate["embedviz pipeline"] / rate["model alone (ceiling)"],
        "pipeline_vs_per_image": rate["embedviz pipeline"] / rate["per-image loop"],
        "resume": {"full_s": full_seconds, "stopped_after_s": killed, "rerun_s": rerun,
                   "resumed_images": resumed.manifest["resumed_images"], "rerun_vs_full": rerun / full_seconds,
                   "identical": bool(same)},
        "reopen_10k_x_512_s": reopen})


if __name__ == "__main__":
    main()
