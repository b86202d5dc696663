"""The extraction loop: a ``DataLoader`` that decodes in worker processes, the model on the best
device, several layers in one pass, and shards written as work proceeds so a killed run resumes.

Work is cut into fixed shards of ``shard_size`` images (a multiple of the batch size, so a batch
never straddles two). Each finished shard is written atomically into a work folder; a rerun with
the same inputs skips the shards already there and, batch for batch, computes exactly what the
first run would have, so the features come out bit for bit the same.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .decode import ImageRejected, open_image
from .errors import DataError, ModelError
from .images import ImageCollection
from .models import LoadedModel
from .progress import ProgressCallback, report

__all__ = ["POOLINGS", "EngineResult", "run_engine", "pool", "auto_workers", "auto_batch_size"]

#: ``avg``/``max`` over the spatial (or token) positions; ``flatten`` keeps them, averaged down to a
#: coarser grid when the vector would be longer than ``flatten_limit``.
POOLINGS = ("avg", "max", "flatten")


def auto_workers(count: int, batch_size: int) -> int:
    """Decoding processes: one core stays with the model; tiny jobs are not worth the start-up."""
    if count <= 2 * batch_size:
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def auto_batch_size(device: torch.device) -> int:
    """A first guess; on CUDA out-of-memory it is halved and the batch retried."""
    return 256 if device.type == "cuda" else 32


def pool(tensor, how: str = "avg", flatten_limit: int = 8192) -> torch.Tensor:
    """One vector per image. Spatial maps (N, C, H, W) and token maps (N, L, D) are averaged or
    maxed over positions, or flattened (at most ``flatten_limit`` values); several outputs at once (a
    feature pyramid's levels) are each pooled, then concatenated."""
    if isinstance(tensor, dict):
        tensor = list(tensor.values())
    if isinstance(tensor, (list, tuple)):
        return torch.cat([pool(t, how, flatten_limit) for t in tensor], dim=1)
    if tensor.ndim == 3:  # tokens: (N, L, D) -> (N, D, L, 1) so the same code applies
        tensor = tensor.transpose(1, 2).unsqueeze(-1)
    if tensor.ndim == 4:
        if how == "avg":
            return tensor.mean(dim=(2, 3))
        if how == "max":
            return tensor.amax(dim=(2, 3))
        n, c, h, w = tensor.shape
        if c * h * w > flatten_limit:
            side = max(1, int((flatten_limit / c) ** 0.5))
            tensor = torch.nn.functional.adaptive_avg_pool2d(tensor.float(), (min(h, side), min(w, side)))
        return tensor.reshape(n, -1)
    return tensor.reshape(tensor.shape[0], -1)


#: Devices whose convolutions run faster channels-last: cuDNN, and oneDNN on the CPU (resnet18 at
#: 224 px on this project's 2-core CPU: 40 images/s against 30-32 contiguous).
_CHANNELS_LAST = ("cuda", "cpu")


def _move(net: torch.nn.Module | None, device: torch.device) -> torch.device:
    """The model onto ``device``, channels-last where convolutions prefer it."""
    if net is not None:
        net.to(device)
        if device.type in _CHANNELS_LAST:
            net.to(memory_format=torch.channels_last)
    return device


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it, else fp16 on CUDA; full precision elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _call(net: torch.nn.Module, x: torch.Tensor, device: torch.device, autocast_dtype) -> dict[str, torch.Tensor]:
    """One forward pass: a non-blocking copy from pinned memory, channels-last, autocast on GPUs."""
    x = x.to(device, non_blocking=True)
    if x.ndim == 4 and device.type in _CHANNELS_LAST:
        x = x.contiguous(memory_format=torch.channels_last)
    if autocast_dtype is not None:
        with torch.autocast(device.type, dtype=autocast_dtype):
            return net(x)
    return net(x)


@dataclass(frozen=True)
class _Item:
    index: int
    tensor: torch.Tensor | None
    reason: str


class _Images(torch.utils.data.Dataset):
    """Decodes and preprocesses one image (in a worker process); an unreadable file is a reason."""

    def __init__(self, paths: Sequence[Path], preprocessing) -> None:
        self.paths = list(paths)
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> _Item:
        try:
            return _Item(index, self.preprocessing(open_image(self.paths[index])), "")
        except ImageRejected as exc:
            return _Item(index, None, str(exc))


def _collate(items: list[_Item]):
    """One tensor per batch, made in the worker, so only it crosses to the main process."""
    good = [item for item in items if item.tensor is not None]
    x = torch.stack([item.tensor for item in good]) if good else None
    return [item.index for item in good], x, [(item.index, item.reason) for item in items if item.tensor is None]


@dataclass
class EngineResult:
    """Features per layer (rows = ``kept``), logits if asked, skipped (index, reason), and notes."""

    kept: list[int]
    features: dict[str, np.ndarray]
    logits: np.ndarray | None
    skipped: list[tuple[int, str]]
    device: str
    notes: list[str] = field(default_factory=list)
    resumed_images: int = 0


class _Shards:
    """The work folder: ``shard-<start>.npz`` files, each written aside then renamed into place."""

    def __init__(self, folder: Path | None, layers: list[str]) -> None:
        self.folder, self.layers = folder, layers
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def path(self, start: int) -> Path:
        return self.folder / f"shard-{start:010d}.npz"

    def done(self, start: int) -> bool:
        return self.folder is not None and self.path(start).exists()

    def write(self, start: int, kept, feats, logits, skipped) -> None:
        if self.folder is None:
            return
        arrays = {f"f{i}": np.concatenate(feats[layer]) if feats[layer] else np.zeros((0, 0), np.float32)
                  for i, layer in enumerate(self.layers)}
        tmp = self.folder / f".{start}.{uuid.uuid4().hex[:8]}.npz"
        np.savez(tmp, kept=np.asarray(kept, np.int64),
                 logits=np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
                 skipped=np.array(json.dumps(skipped)), **arrays)
        os.replace(tmp, self.path(start))

    def read(self, start: int):
        with np.load(self.path(start), allow_pickle=False) as data:
            feats = {layer: data[f"f{i}"] for i, layer in enumerate(self.layers)}
            return (data["kept"].tolist(), feats, data["logits"] if data["logits"].size else None,
                    [tuple(s) for s in json.loads(str(data["skipped"]))])


def run_engine(
    collection: ImageCollection,
    model: LoadedModel,
    layers: list[str],
    *,
    device: torch.device,
    batch_size: int | None = None,
    num_workers: int | None = None,
    pooling: str = "avg",
    flatten_limit: int = 8192,
    logits_node: str | None = None,
    work_dir: Path | None = None,
    shard_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> EngineResult:
    """Every image through ``model``, features from each of ``layers`` (and the logits node)."""
    if pooling not in POOLINGS:
        raise DataError(f"Pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}.")
    batch_size = batch_size or auto_batch_size(device)
    if batch_size < 1:
        raise DataError("Batch size must be at least 1.")
    total = len(collection)
    if shard_size is None:  # about 16 shards a job, at most ~2,048 images each: a kill loses little
        shard_size = batch_size * min(max(1, -(-total // (16 * batch_size))), max(1, 2048 // batch_size))
    shard_size = max(batch_size, shard_size - shard_size % batch_size)
    shards = _Shards(work_dir, layers)
    notes: list[str] = []

    names = {layer: f"f{i}" for i, layer in enumerate(layers)}  # graph node -> output key
    logits_name = names.get(logits_node, "logits") if logits_node is not None else None
    net = None
    if model.module is not None:
        from torchvision.models.feature_extraction import create_feature_extractor

        nodes = names if logits_name in (None, *names.values()) else {**names, logits_node: "logits"}
        net = create_feature_extractor(model.module, return_nodes=nodes).eval()

    device = _move(net, device)
    autocast_dtype = _autocast_dtype(device)
    cuda = device.type == "cuda"

    starts = list(range(0, total, shard_size))
    todo = [s for s in starts if not shards.done(s)]
    indices = [i for s in todo for i in range(s, min(s + shard_size, total))]
    workers = auto_workers(len(indices), batch_size) if num_workers is None else num_workers
    dataset = torch.utils.data.Subset(_Images(collection.paths(), model.preprocessing), indices)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate, pin_memory=cuda,
        prefetch_factor=4 if workers else None, persistent_workers=False)

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if net is None:
            return {"f0": x.reshape(len(x), -1)}
        try:
            return _call(net, x, device, autocast_dtype)
        except torch.cuda.OutOfMemoryError:
            raise
        except RuntimeError as exc:  # shape or dtype mismatches inside the model
            if "out of memory" in str(exc).lower():
                raise torch.cuda.OutOfMemoryError(str(exc)) from None
            first = str(exc).strip().splitlines()[0][:140]
            raise ModelError(f"{model.architecture} cannot take inputs of shape {tuple(x.shape[1:])} "
                             f"({first}); check the size and channels under Preprocessing.") from None

    chunk = batch_size

    def run_batch(x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch in chunks; out of memory halves the chunk, and below 1 moves to the CPU."""
        nonlocal chunk, device, autocast_dtype
        while True:
            try:
                parts = [forward(x[i:i + chunk]) for i in range(0, len(x), chunk)]
                return {k: torch.cat([pool(p[k], pooling, flatten_limit).float() if k != "logits" and k != logits_name
                                      else p[k].float().reshape(len(p[k]), -1) for p in parts])
                        for k in parts[0]}
            except torch.cuda.OutOfMemoryError:
                if device.type == "cuda" and torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if chunk > 1:
                    chunk //= 2
                    notes.append(f"Out of memory on {device.type}; batches of {chunk} from now on.")
                    report(progress, done, total, notes[-1])
                    continue
                if device.type == "cpu":
                    raise ModelError("Out of memory even one image at a time on the CPU; use a smaller input "
                                     "size or a smaller model.") from None
                notes.append(f"Out of {device.type} memory even one image at a time; continued on the CPU.")
                device, autocast_dtype = _move(net, torch.device("cpu")), None
                report(progress, done, total, notes[-1])

    feats: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    shard_feats: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    logits: list[np.ndarray] = []
    shard_logits: list[np.ndarray] = []
    kept: list[int] = []
    shard_kept: list[int] = []
    skipped: list[tuple[int, str]] = []
    shard_skipped: list[tuple[int, str]] = []
    resumed = 0
    results: dict[int, tuple] = {}
    for s in starts:
        if s not in todo:
            results[s] = shards.read(s)
            resumed += min(s + shard_size, total) - s
    done = resumed
    report(progress, done, total, "images" + (f" ({resumed:,} from an earlier run)" if resumed else ""))

    position = 0  # into ``indices``
    with torch.inference_mode():
        for good, x, bad in loader:
            shard_skipped += bad
            if x is not None:
                out = run_batch(x)
                for layer in layers:
                    f = out[names[layer]]
                    if f.ndim != 2 or f.shape[0] != len(good):
                        raise ModelError(f"Layer {layer} gave an output of shape {tuple(f.shape)} for a batch of "
                                         f"{len(good)} images; choose a layer with one output per image.")
                    if not torch.isfinite(f).all():
                        raise ModelError(f"Layer {layer} produced NaN or infinite values; check the weights.")
                    shard_feats[layer].append(f.cpu().numpy())
                if logits_name is not None:
                    shard_logits.append(out[logits_name].cpu().numpy())
                shard_kept += good
            n = len(good) + len(bad)
            position += n
            done += n
            last = indices[position - 1]
            if position == len(indices) or (last + 1) % shard_size == 0:  # the shard is complete
                start = last - last % shard_size
                shards.write(start, shard_kept, shard_feats, shard_logits, shard_skipped)
                results[start] = (shard_kept, {k: np.concatenate(v) if v else None for k, v in shard_feats.items()},
                                  np.concatenate(shard_logits) if shard_logits else None, shard_skipped)
                shard_feats = {layer: [] for layer in layers}
                shard_logits, shard_kept, shard_skipped = [], [], []
            report(progress, done, total, "images")

    for s in starts:
        k, f, lg, sk = results[s]
        kept += k
        skipped += sk
        if k:
            for layer in layers:
                feats[layer].append(f[layer])
            if lg is not None:
                logits.append(lg)
    if not kept:
        raise DataError("None of the images could be read; see the skipped list for reasons.")
    features = {layer: np.ascontiguousarray(np.concatenate(feats[layer]), dtype=np.float32) for layer in layers}
    return EngineResult(kept, features, np.concatenate(logits) if logits_name is not None and logits else None,
                        skipped, str(device), notes, resumed)
