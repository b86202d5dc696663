"""Reduce features to a 2-D or 3-D map, cached on disk by (features, method, params, seed)."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReducerError
from ..home import home_dir, sha256_json
from ..progress import ProgressCallback
from .methods import get_reducer
from .params import make_params

__all__ = ["Embedding", "reduce", "compute_embedding", "scale_for_display", "features_digest"]


@dataclass(frozen=True)
class Embedding:
    """Map coordinates, row for row with the feature set they came from."""

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    n_components: int
    random_state: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    key: str = ""
    from_cache: bool = False


def scale_for_display(coords: np.ndarray) -> np.ndarray:
    """Centre on the origin and scale so the farthest point is at distance 1 on its axis."""
    coords = np.asarray(coords, dtype=np.float64)
    centred = coords - coords.mean(axis=0, keepdims=True)
    extent = np.abs(centred).max()
    return (centred / extent if extent > 0 else centred).astype(np.float32)


def features_digest(features: np.ndarray) -> str:
    """SHA-256 of a feature matrix's shape and bytes (never sampled)."""
    array = np.ascontiguousarray(features, dtype=np.float32)
    return sha256_json({"shape": list(array.shape), "sha": __import__("hashlib").sha256(array.data).hexdigest()})


def reduce(
    features: np.ndarray,
    method: str = "tsne",
    params: dict[str, Any] | Any | None = None,
    *,
    n_components: int = 2,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
) -> Embedding:
    """Fit ``method`` on ``features`` and return display-scaled coordinates.

    ``params`` is the method's dataclass or a dict of its fields (checked against their
    bounds). Adjustments made for this data (a perplexity too large for few points) are in
    ``notes``.
    """
    reducer = get_reducer(method)
    if n_components not in (2, 3):
        raise ReducerError(f"Maps are 2-D or 3-D; got n_components={n_components}.")
    p = params if isinstance(params, reducer.params_class) else make_params(reducer.params_class, params)
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ReducerError(f"Features must be a 2-D matrix; got shape {x.shape}.")
    if x.shape[0] < max(4, n_components + 1):
        raise ReducerError(f"{x.shape[0]} points are too few to make a map; keep at least 4.")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ReducerError(f"{bad} feature rows contain NaN or infinite values; remove them first.")
    start = time.perf_counter()
    coords, notes = reducer.fit(x, p, n_components, random_state, progress)
    # Given coordinates are kept exactly (they are exported again as they came); maps are scaled.
    shown = coords.astype(np.float32) if reducer.name == "precomputed" else scale_for_display(coords)
    return Embedding(shown, reducer.name, asdict(p), n_components, random_state,
                     round(time.perf_counter() - start, 3), tuple(notes))


def compute_embedding(
    features: np.ndarray,
    method: str = "tsne",
    params: dict[str, Any] | None = None,
    *,
    n_components: int = 2,
    random_state: int = 0,
    features_key: str | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cache_only: bool = False,
) -> Embedding:
    """:func:`reduce` through an on-disk cache; ``features_key`` skips re-hashing a stored set.

    With ``cache_only`` a map not computed before raises :class:`LookupError` instead.
    """
    reducer = get_reducer(method)
    p = make_params(reducer.params_class, params) if not isinstance(params, reducer.params_class) else params
    key = sha256_json({"features": features_key or features_digest(features), "method": reducer.name,
                       "params": asdict(p), "n": n_components, "seed": random_state})[:32]
    folder = cache_dir or home_dir() / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return Embedding(data["coords"], meta["method"], meta["params"], meta["n_components"],
                             meta["random_state"], meta["seconds"], tuple(meta["notes"]), key, True)
    if cache_only:
        raise LookupError(key)
    result = reduce(features, reducer.name, p, n_components=n_components, random_state=random_state, progress=progress)
    meta = {k: getattr(result, k) for k in ("method", "params", "n_components", "random_state", "seconds")}
    meta["notes"] = list(result.notes)
    tmp = folder / f".{key}.{uuid.uuid4().hex[:8]}.npz"
    np.savez(tmp, coords=result.coords, meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)
    return Embedding(result.coords, result.method, result.params, n_components, random_state, result.seconds,
                     result.notes, key, False)
