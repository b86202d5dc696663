"""Feature extraction: images through a model up to a layer, batched, with predictions.

:func:`extract_features` does the work; :func:`compute_features` wraps it with the on-disk
store so that the same images, weights, layer and preprocessing are never run twice.
"""

from __future__ import annotations

import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from embedviz.data.featureset import FeatureSet
from embedviz.data.images import ImageCollection, collection_hash, file_hashes, find_duplicates
from embedviz.errors import ModelError
from embedviz.extract.devices import resolve_device
from embedviz.extract.layers import check_layer, output_layer
from embedviz.extract.models import LoadedModel, describe
from embedviz.extract.ray_options import RayOptions
from embedviz.extract.store import FeatureStore
from embedviz.hashing import sha256_json
from embedviz.progress import ProgressCallback

__all__ = ["RayOptions", "resolve_device", "feature_key", "identity_key", "extract_features", "extract_layers",
           "compute_features", "compute_layers"]

FORMAT_VERSION = 2  # 2: crop and resize in one step, normalisation fused
#: With this many classes or fewer, every class's probability becomes a column.
FULL_SOFTMAX_CLASSES = 10


def feature_key(images_sha256: str, model: LoadedModel, layer: str, pooling: str = "avg") -> str:
    """The store key: images, model identity (weights, architecture, preprocessing), layer, pooling."""
    return identity_key(images_sha256, model.identity(), layer, pooling)


def identity_key(images_sha256: str, identity: dict[str, Any], layer: str, pooling: str = "avg") -> str:
    """:func:`feature_key` from a model's :meth:`~embedviz.extract.models.LoadedModel.identity` alone, so
    a stored set can be found without loading the model (:mod:`embedviz.extract.model_index`)."""
    spec = {"v": FORMAT_VERSION, "images": images_sha256, "model": identity, "layer": layer}
    if pooling != "avg":  # only when set, so keys made before pooling was a choice stay valid
        spec["pooling"] = pooling
    return sha256_json(spec)[:32]


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
    import torch

    probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
    k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    lookup = np.asarray(names, dtype=object)
    table = pd.DataFrame({"prediction": lookup[order[:, 0]], "confidence": probs[np.arange(len(probs)), order[:, 0]]})
    for j in range(1, k):
        table[f"prediction_{j + 1}"] = lookup[order[:, j]]
        table[f"confidence_{j + 1}"] = probs[np.arange(len(probs)), order[:, j]]
    # How unsure the model is: entropy of the softmax (nats) and the gap between its top two classes.
    table["entropy"] = -(probs * np.log(np.clip(probs, 1e-300, None))).sum(axis=1)
    table["margin"] = table["confidence"] - (table["confidence_2"] if k > 1 else 0.0)
    if probs.shape[1] <= FULL_SOFTMAX_CLASSES:
        for j, name in enumerate(names):
            table[f"p_{name}"] = probs[:, j]
    if labels is not None and labels.dropna().astype(str).isin(names).any():
        # Only when the labels are names the model knows; otherwise "correct" would be meaningless.
        known = labels.notna().to_numpy()
        label_values = labels.astype(str).to_numpy()
        correct = table["prediction"].to_numpy() == label_values
        in_top = (lookup[order] == label_values[:, None]).any(axis=1)
        table["correct"] = pd.array(np.where(known, correct, None), dtype="boolean")
        table[f"top{k}_correct"] = pd.array(np.where(known, in_top, None), dtype="boolean")
    return table


def extract_layers(
    collection: ImageCollection,
    model: LoadedModel,
    layers: Sequence[str | None],
    *,
    device: str = "auto",
    batch_size: int | None = None,
    num_workers: int | None = None,
    pooling: str = "avg",
    top_k: int = 5,
    progress: ProgressCallback | None = None,
    work_dir: Path | str | None = None,
    ray: RayOptions | None = None,
) -> dict[str, FeatureSet]:
    """Run every image through ``model`` once, taking features from each of ``layers``.

    Returns one :class:`FeatureSet` per layer, rows in collection order minus unreadable images
    (listed in ``skipped`` with their reason). A classifier's predictions (top-k names and
    confidences, entropy, margin, ``correct`` when labels are known) join the samples table.
    With ``work_dir``, finished shards are kept there and a rerun resumes from them. With
    ``ray``, the images go through the model on a Ray cluster (:mod:`embedviz.extract.ray_engine`)
    instead of this process; the result is the same.
    """
    layers = list(dict.fromkeys(check_layer(model, layer) for layer in layers))
    if model.program:
        if len(layers) != 1 or pooling != "avg":
            raise ModelError("A program file runs one layer at a time with average pooling.")
        return {layers[0]: _extract_program(collection, model, layers[0], batch_size=batch_size or 64, top_k=top_k,
                                            progress=progress)}
    start = time.perf_counter()
    out_node = output_layer(model)
    want_logits = model.task == "classification" and model.num_classes is not None and out_node is not None
    common = dict(batch_size=batch_size, pooling=pooling, logits_node=out_node if want_logits else None,
                  work_dir=work_dir, progress=progress)
    if ray is not None:
        from embedviz.extract.ray_engine import run_ray_engine

        result = run_ray_engine(collection, model, layers, ray, **common)
    else:
        from embedviz.extract.engine import run_engine

        result = run_engine(collection, model, layers, device=resolve_device(device), num_workers=num_workers,
                            **common)
    samples, skipped = _read_samples(collection, model, result.kept, result.skipped, result.logits, top_k)
    sets = {}
    for layer in layers:
        fs = _feature_set(collection, model, layer, samples, skipped, result.features[layer], result.device, start)
        fs.manifest.update(pooling=pooling, engine_notes=result.notes, resumed_images=result.resumed_images,
                           layers_in_pass=layers)
        sets[layer] = fs
    return sets


def extract_features(
    collection: ImageCollection,
    model: LoadedModel,
    layer: str | None = None,
    **options,
) -> FeatureSet:
    """:func:`extract_layers` for one layer (default: the classifier's input)."""
    layer = check_layer(model, layer)
    return extract_layers(collection, model, [layer], **options)[layer]


def _extract_program(collection: ImageCollection, model: LoadedModel, layer: str, *, batch_size: int, top_k: int,
                     progress: ProgressCallback | None) -> FeatureSet:
    """A code-carrying model file, run by :mod:`embedviz.extract.trusted` in a child process on the CPU."""
    from embedviz.extract.trusted import run_program

    start = time.perf_counter()
    result = run_program(model.program, model.program_format, collection.paths(), model.preprocessing.to_dict(),
                         layer, batch_size=batch_size, progress=progress)
    samples, skipped = _read_samples(collection, model, result.kept, result.skipped, result.logits, top_k)
    return _feature_set(collection, model, layer, samples, skipped, result.features, "cpu", start)


def _read_samples(collection: ImageCollection, model: LoadedModel, kept: list[int], skipped: list[tuple[int, str]],
                  logits: np.ndarray | None, top_k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows that were read, with predictions joined once for every layer; and the skipped files."""
    samples = collection.samples.iloc[kept].reset_index(drop=True)
    if logits is not None:
        names = _class_names(model, collection, logits.shape[1])
        labels = samples["label"] if collection.has_labels else None
        samples = pd.concat([samples, _prediction_columns(logits, names, labels, top_k)], axis=1)
    path = collection.samples["path"]
    return samples, pd.DataFrame([(path.iat[i], reason) for i, reason in skipped], columns=["path", "reason"])


def _feature_set(collection: ImageCollection, model: LoadedModel, layer: str, samples: pd.DataFrame,
                 skipped: pd.DataFrame, features: np.ndarray, target: str, start: float) -> FeatureSet:
    """One layer's features with the samples table and the manifest."""
    features = np.ascontiguousarray(features, dtype=np.float32)
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
    return FeatureSet(features, samples, skipped, manifest)


def compute_layers(
    collection: ImageCollection,
    model: LoadedModel,
    layers: Sequence[str | None],
    *,
    store: FeatureStore | None = None,
    progress: ProgressCallback | None = None,
    hashes: list[str] | None = None,
    pooling: str = "avg",
    shards: str | Path | None = None,
    **options,
) -> dict[str, FeatureSet]:
    """:func:`extract_layers` through the store: stored layers are read, the rest extracted in one
    pass whose finished shards survive a crash or a cancel, so the next call resumes.

    The shards are kept in the store's work folder until the result is stored, or under
    ``shards`` (a folder or a URI such as ``s3://bucket/prefix``), where they stay."""
    layers = list(dict.fromkeys(check_layer(model, layer) for layer in layers))
    store = store or FeatureStore()
    hashes = file_hashes(collection) if hashes is None else hashes
    images_sha = collection_hash(collection, hashes)
    keys = {layer: feature_key(images_sha, model, layer, pooling) for layer in layers}
    found = {layer: store.get(key) for layer, key in keys.items()}
    missing = [layer for layer in layers if found[layer] is None]
    if missing:
        name = sha256_json([keys[layer] for layer in missing])[:32]
        work = f"{str(shards).rstrip('/')}/{name}" if shards is not None else store.work_folder(name)
        fresh = extract_layers(collection, model, missing, progress=progress, pooling=pooling, work_dir=work, **options)
        duplicates = find_duplicates(collection, hashes).set_axis(collection.samples["sample_id"])
        for layer, fs in fresh.items():
            if duplicates.notna().any():
                fs = replace(fs, samples=fs.samples.assign(
                    duplicate_of=duplicates.reindex(fs.samples["sample_id"]).to_numpy()))
            fs.manifest.update(images_sha256=images_sha, num_duplicates=int(duplicates.notna().sum()))
            store.put(keys[layer], fs)
            found[layer] = replace(store.get(keys[layer]), from_cache=False)  # memory-mapped, as every later read
        if shards is None:
            store.drop_work(work)
    return found


def compute_features(
    collection: ImageCollection,
    model: LoadedModel,
    layer: str | None = None,
    **options,
) -> FeatureSet:
    """:func:`compute_layers` for one layer: a second call with the same inputs is a read.

    ``hashes`` (an option) are the images' SHA-256s from :func:`~embedviz.data.images.file_hashes`,
    when the caller already has them; otherwise every file is read once here.
    """
    layer = check_layer(model, layer)
    return compute_layers(collection, model, [layer], **options)[layer]
