"""Feature extraction: images through a model up to a layer, batched, with predictions.

:func:`extract_features` does the work; :func:`compute_features` wraps it with the on-disk
store so that the same images, weights, layer and preprocessing are never run twice.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch

from .decode import ImageRejected, open_image
from .errors import DataError, ModelError
from .home import sha256_json
from .images import ImageCollection, collection_hash, file_hashes, find_duplicates
from .layers import check_layer, output_layer
from .models import LoadedModel, describe
from .progress import ProgressCallback, report
from .store import FeatureSet, FeatureStore

__all__ = ["resolve_device", "feature_key", "extract_features", "compute_features"]

FORMAT_VERSION = 1


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("No CUDA GPU is visible here; use --device auto or cpu.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("Apple's MPS is not available here; use --device auto or cpu.")
    if device not in ("cpu", "cuda", "mps"):
        raise ModelError(f"Unknown device {device!r}; use auto, cpu, cuda or mps.")
    return torch.device(device)


def feature_key(images_sha256: str, model: LoadedModel, layer: str) -> str:
    """The store key: images, model identity (weights, architecture, preprocessing), layer."""
    return sha256_json({"v": FORMAT_VERSION, "images": images_sha256, "model": model.identity(), "layer": layer})[:32]


@dataclass(frozen=True)
class _Item:
    index: int
    tensor: torch.Tensor | None
    reason: str


class _Images(torch.utils.data.Dataset):
    """Decodes and preprocesses one image; an unreadable file becomes a reason, not an error."""

    def __init__(self, collection: ImageCollection, model: LoadedModel) -> None:
        self.paths = collection.paths()
        self.preprocessing = model.preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> _Item:
        try:
            return _Item(index, self.preprocessing(open_image(self.paths[index])), "")
        except ImageRejected as exc:
            return _Item(index, None, str(exc))


def _pool(tensor: torch.Tensor | dict | list | tuple) -> torch.Tensor:
    """One vector per image: spatial maps (N, C, H, W) and token maps (N, L, D) are averaged;
    several outputs at once (a feature pyramid's levels) are each averaged, then concatenated."""
    if isinstance(tensor, dict):
        tensor = list(tensor.values())
    if isinstance(tensor, (list, tuple)):
        return torch.cat([_pool(t) for t in tensor], dim=1)
    if tensor.ndim == 4:
        return tensor.mean(dim=(2, 3))
    if tensor.ndim == 3:
        return tensor.mean(dim=1)
    return tensor.reshape(tensor.shape[0], -1)


def _class_names(model: LoadedModel, collection: ImageCollection, width: int) -> list[str]:
    """Names for the ``width`` logits: the model's own, else sorted folder labels, else ids."""
    if model.class_names and len(model.class_names) == width:
        return list(model.class_names)
    if collection.has_labels:
        labels = sorted(collection.samples["label"].dropna().astype(str).unique())
        if len(labels) == width:  # the ImageFolder convention: sorted folder names
            return labels
    return [str(i) for i in range(width)]


def _prediction_columns(logits: np.ndarray, names: list[str], labels: pd.Series | None, top_k: int) -> pd.DataFrame:
    probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
    k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    lookup = np.asarray(names, dtype=object)
    table = pd.DataFrame({"prediction": lookup[order[:, 0]], "confidence": probs[np.arange(len(probs)), order[:, 0]]})
    for j in range(1, k):
        table[f"prediction_{j + 1}"] = lookup[order[:, j]]
        table[f"confidence_{j + 1}"] = probs[np.arange(len(probs)), order[:, j]]
    if labels is not None and labels.dropna().astype(str).isin(names).any():
        # Only when the labels are names the model knows; otherwise "correct" would be meaningless.
        known = labels.notna().to_numpy()
        label_values = labels.astype(str).to_numpy()
        correct = table["prediction"].to_numpy() == label_values
        in_top = (lookup[order] == label_values[:, None]).any(axis=1)
        table["correct"] = pd.array(np.where(known, correct, None), dtype="boolean")
        table[f"top{k}_correct"] = pd.array(np.where(known, in_top, None), dtype="boolean")
    return table


def extract_features(
    collection: ImageCollection,
    model: LoadedModel,
    layer: str | None = None,
    *,
    device: str = "auto",
    batch_size: int = 64,
    top_k: int = 5,
    progress: ProgressCallback | None = None,
) -> FeatureSet:
    """Run every image through ``model`` up to ``layer`` (default: the classifier's input).

    Returns features in collection order minus unreadable images, which are listed in
    ``skipped`` with their reason. A classifier's predictions (top-k names and
    confidences, ``correct`` when labels are known) join the samples table.
    """
    if batch_size < 1:
        raise DataError("Batch size must be at least 1.")
    layer = check_layer(model, layer)
    if model.program:
        return _extract_program(collection, model, layer, batch_size=batch_size, top_k=top_k, progress=progress)
    target = resolve_device(device)
    start = time.perf_counter()
    net = None
    out_node = output_layer(model)
    want_logits = model.task == "classification" and model.num_classes is not None and out_node is not None
    if model.module is not None:
        from torchvision.models.feature_extraction import create_feature_extractor

        nodes = {layer: "features"}
        if want_logits and out_node != layer:
            nodes[out_node] = "logits"
        net = create_feature_extractor(model.module, return_nodes=nodes).eval().to(target)

    loader = torch.utils.data.DataLoader(_Images(collection, model), batch_size=batch_size, collate_fn=list)
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    feats: list[np.ndarray] = []
    logits: list[np.ndarray] = []
    total, done = len(collection), 0
    report(progress, 0, total, "images")
    with torch.inference_mode():
        for batch in loader:
            good = [item for item in batch if item.tensor is not None]
            skipped += [(collection.samples["path"].iat[i.index], i.reason) for i in batch if i.tensor is None]
            if good:
                x = torch.stack([item.tensor for item in good]).to(target)
                if net is None:
                    feats.append(x.reshape(len(good), -1).cpu().numpy())
                else:
                    try:
                        out = net(x)
                    except torch.cuda.OutOfMemoryError:
                        raise
                    except RuntimeError as exc:  # shape or dtype mismatches inside the model
                        first = str(exc).strip().splitlines()[0][:140]
                        raise ModelError(f"{model.architecture} cannot take inputs of shape {tuple(x.shape[1:])} "
                                         f"({first}); check the size and channels under Preprocessing.") from None
                    f = _pool(out["features"]).float()
                    if not torch.isfinite(f).all():
                        raise ModelError(f"Layer {layer} produced NaN or infinite values; check the weights.")
                    feats.append(f.cpu().numpy())
                    if want_logits:
                        logit = out["logits"] if out_node != layer else out["features"]
                        logits.append(logit.float().reshape(len(good), -1).cpu().numpy())
                kept += [item.index for item in good]
            done += len(batch)
            report(progress, done, total, "images")
    return _finish(collection, model, layer, kept, skipped, feats, logits, target, start, top_k)


def _extract_program(collection: ImageCollection, model: LoadedModel, layer: str, *, batch_size: int, top_k: int,
                     progress: ProgressCallback | None) -> FeatureSet:
    """A code-carrying model file, run by :mod:`embedviz.trusted` in a child process on the CPU."""
    from .trusted import run_program

    start = time.perf_counter()
    result = run_program(model.program, model.program_format, collection.paths(), model.preprocessing.to_dict(),
                         layer, batch_size=batch_size, progress=progress)
    path = collection.samples["path"]
    skipped = [(path.iat[i], reason) for i, reason in result.skipped]
    logits = [result.logits] if result.logits is not None else []
    return _finish(collection, model, layer, result.kept, skipped, [result.features], logits,
                   torch.device("cpu"), start, top_k)


def _finish(collection: ImageCollection, model: LoadedModel, layer: str, kept: list[int],
            skipped: list[tuple[str, str]], feats: list[np.ndarray], logits: list[np.ndarray],
            target: torch.device, start: float, top_k: int) -> FeatureSet:
    """The samples that were read, with predictions joined, their features and the manifest."""
    if not kept:
        raise DataError("None of the images could be read; see the skipped list for reasons.")

    samples = collection.samples.iloc[kept].reset_index(drop=True)
    if logits:
        logits = [np.concatenate(logits)]
        names = _class_names(model, collection, logits[0].shape[1])
        labels = samples["label"] if collection.has_labels else None
        samples = pd.concat([samples, _prediction_columns(np.concatenate(logits), names, labels, top_k)], axis=1)
    features = np.ascontiguousarray(np.concatenate(feats), dtype=np.float32)
    manifest = {
        "model": model.architecture,
        "model_description": describe(model),
        "weights": model.weights_name,
        "weights_sha256": model.weights_sha256,
        "layer": layer,
        "preprocessing": model.preprocessing.to_dict(),
        "collection": collection.name,
        "num_images": len(collection),
        "num_features": int(features.shape[0]),
        "num_skipped": len(skipped),
        "dim": int(features.shape[1]),
        "device": str(target),
        "notes": list(model.notes),
        "seconds": round(time.perf_counter() - start, 3),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }
    return FeatureSet(features, samples, pd.DataFrame(skipped, columns=["path", "reason"]), manifest)


def compute_features(
    collection: ImageCollection,
    model: LoadedModel,
    layer: str | None = None,
    *,
    store: FeatureStore | None = None,
    progress: ProgressCallback | None = None,
    hashes: list[str] | None = None,
    **options,
) -> FeatureSet:
    """:func:`extract_features` through the store: a second call with the same inputs is a read.

    ``hashes`` are the images' SHA-256s from :func:`~embedviz.images.file_hashes`, when the
    caller already has them; otherwise every file is read once here.
    """
    layer = check_layer(model, layer)
    store = store or FeatureStore()
    hashes = file_hashes(collection) if hashes is None else hashes
    images_sha = collection_hash(collection, hashes)
    key = feature_key(images_sha, model, layer)
    cached = store.get(key)
    if cached is not None:
        return cached
    fresh = extract_features(collection, model, layer, progress=progress, **options)
    duplicates = find_duplicates(collection, hashes).set_axis(collection.samples["sample_id"])
    if duplicates.notna().any():
        fresh = replace(fresh, samples=fresh.samples.assign(
            duplicate_of=duplicates.reindex(fresh.samples["sample_id"]).to_numpy()))
    fresh.manifest.update(images_sha256=images_sha, num_duplicates=int(duplicates.notna().sum()))
    return store.put(key, fresh)
