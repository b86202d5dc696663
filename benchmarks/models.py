"""Model families: timm:resnet50 against torchvision's resnet50 through the same extraction, same images.

In one invocation, on the same JPEG files, the same preprocessing (224 px, crop from 256), the same
batch size and decode workers, random weights (seed 0): embedviz's ``extract_features`` with
``timm:resnet50`` and with torchvision's ``resnet50``, each at its default layer (the pooled 2048-d
pre-logits), alternating, ``--rounds`` times each after a warm-up; the best round of each is compared
(target: within 5%). With ``--clip`` (meant for a GPU), ``clip:ViT-B-32``'s image tower through embedviz
against the same images decoded the same way and fed to open_clip's ``encode_image`` in a plain loop.

Run: python -m benchmarks models [--images N] [--rounds R] [--batch-size B] [--device auto] [--clip] [--json PATH]
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/models.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.extract import make_jpegs  # noqa: E402
from benchmarks.report import make_parser, save  # noqa: E402


def _best(run, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times)


def _encode_image_loop(collection, model, preprocessing, batch: int, workers: int, device) -> None:
    """open_clip's own call on the images decoded as embedviz decodes them (a DataLoader, same workers)."""
    import torch
    from PIL import Image

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(collection)

        def __getitem__(self, i):
            return preprocessing(Image.open(collection.paths()[i]))

    loader = torch.utils.data.DataLoader(Images(), batch_size=batch, num_workers=workers)
    with torch.inference_mode():
        for x in loader:
            model.encode_image(x.to(device)).float().cpu()
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("models", __doc__)
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--clip", action="store_true", help="also clip:ViT-B-32's image tower against encode_image")
    args = parser.parse_args(argv)

    import torch

    from embedviz.data.images import load_folder
    from embedviz.extract.engine import auto_workers
    from embedviz.extract.features import extract_features, resolve_device
    from embedviz.extract.layers import default_layer
    from embedviz.extract.models import load_model
    from embedviz.extract.preprocessing import Preprocessing

    device = resolve_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="embedviz-bench-"))
    os.environ["EMBEDVIZ_HOME"] = str(tmp / "home")
    figures: dict = {}
    try:
        collection = load_folder(make_jpegs(tmp / "jpegs", args.images))
        n, batch = len(collection), args.batch_size
        workers = auto_workers(n, batch, device) if args.workers is None else args.workers
        same = Preprocessing(size=224, resize="crop", resize_to=256)
        models = {name: load_model(name, "random").with_preprocessing(same) for name in ("timm:resnet50", "resnet50")}
        print(f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
              f"torch {torch.__version__} ({torch.get_num_threads()} threads) · device {device}"
              + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
        print(f"{n} JPEGs 400x300 -> {same.describe()}, batch {batch}, {workers} decode workers, "
              f"best of {args.rounds} rounds")

        def run(name):
            return extract_features(collection, models[name], device=str(device), batch_size=batch,
                                    num_workers=workers)

        dims = {name: run(name).features.shape[1] for name in models}  # warm-up, and the layers' widths
        times = {name: [] for name in models}
        for _ in range(args.rounds):  # alternating, so a slow spell of the machine hits both
            for name in models:
                times[name].append(_best(lambda name=name: run(name), 1))
        rate = {name: n / min(values) for name, values in times.items()}
        for name in models:
            print(f"  {name:16s} {rate[name]:8.1f} images/s  (layer {default_layer(models[name])}, {dims[name]}-d; "
                  f"rounds {', '.join(f'{t:.1f}' for t in times[name])} s)")
        ratio = rate["timm:resnet50"] / rate["resnet50"]
        print(f"  timm / torchvision {ratio:.3f} (target 0.95-1.05)")
        figures.update(images=n, batch_size=batch, workers=workers, device=str(device),
                       images_per_s=rate, seconds=times, timm_over_torchvision=ratio)

        if args.clip:
            from embedviz.extract.clip import clip_model

            clip = load_model("clip:ViT-B-32", "random")
            whole = clip_model("clip:ViT-B-32", "random").to(device).eval()

            def ours():
                extract_features(collection, clip, device=str(device), batch_size=batch, num_workers=workers)

            def theirs():
                _encode_image_loop(collection, whole, clip.preprocessing, batch, workers, device)

            ours(), theirs()  # warm-up
            clip_times = {"embedviz clip:ViT-B-32": [], "open_clip encode_image": []}
            for _ in range(args.rounds):
                clip_times["embedviz clip:ViT-B-32"].append(_best(ours, 1))
                clip_times["open_clip encode_image"].append(_best(theirs, 1))
            clip_rate = {name: n / min(values) for name, values in clip_times.items()}
            for name, value in clip_rate.items():
                print(f"  {name:24s} {value:8.1f} images/s")
            clip_ratio = clip_rate["embedviz clip:ViT-B-32"] / clip_rate["open_clip encode_image"]
            print(f"  embedviz / open_clip {clip_ratio:.3f}")
            figures.update(clip_images_per_s=clip_rate, clip_seconds=clip_times,
                           clip_embedviz_over_open_clip=clip_ratio)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return save("models", args, figures)


if __name__ == "__main__":
    main()
