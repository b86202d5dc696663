"""What t-SNE and UMAP share and should compute once: the prepared features and their neighbour graph.

Preparing is optional scaling (standardise columns, or L2-normalise rows so Euclidean distance
ranks like cosine) and then PCA to k dimensions. The nearest-neighbour graph of the prepared
features is computed once per (features, preparation, metric), with more neighbours than asked
for (:data:`GRAPH_K`), and kept in memory and on disk: a new perplexity or ``n_neighbors`` within
that k only slices it. Up to :data:`EXACT_LIMIT` points the graph is exact (brute force on the PCA-
reduced features: 8 s at 50,000 points here, where Annoy took 32 s), above it Annoy's approximate
index (openTSNE bundles it), built on one thread so the same seed gives the same graph.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedviz.hashing import sha256_json
from embedviz.layout import layout
from embedviz.maps.reducers.params import SCALINGS

__all__ = ["SCALINGS", "Graph", "prepare", "prepared_key", "neighbour_graph", "GRAPH_K", "EXACT_LIMIT", "graph_stats"]

#: Neighbours computed per point whatever was asked, so that perplexity up to 50 and
#: n_neighbors up to 150 reuse the same graph.
GRAPH_K = 150
EXACT_LIMIT = 150_000
#: Prepared features larger than this are not kept in memory between calls.
PREPARED_BYTES = 256 * 2**20

_lock = threading.Lock()
_prepared: OrderedDict[str, np.ndarray] = OrderedDict()
_graphs: OrderedDict[str, "Graph"] = OrderedDict()
#: How many graphs were computed (not sliced from one already there), for tests and benchmarks.
graph_stats = {"computed": 0, "reused": 0}


@dataclass(frozen=True)
class Graph:
    """Each point's nearest other points, nearest first (the point itself excluded)."""

    indices: np.ndarray  # (n, k) int64
    distances: np.ndarray  # (n, k) float32
    exact: bool

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def first(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.indices[:, :k], self.distances[:, :k]


def _remember(cache: OrderedDict, key: str, value, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def prepared_key(key: str, scaling: str, pca_components: int, seed: int) -> str:
    """What identifies features ``key`` once prepared this way (the in-memory and graph caches use it)."""
    return sha256_json([key, scaling, pca_components, seed])


def prepare(x: np.ndarray, scaling: str, pca_components: int, seed: int, *, key: str | None = None,
            notes: list[str] | None = None) -> np.ndarray:
    """Scale, then PCA to ``pca_components`` dimensions when there are more (0 = keep all).

    With ``key`` (identifying ``x``) the result is kept in memory for the next call.
    """
    reduced = bool(pca_components) and x.shape[1] > pca_components < x.shape[0]
    if reduced and notes is not None:
        notes.append(f"Features reduced from {x.shape[1]} to {pca_components} PCA dimensions first.")
    cache_key = None if key is None else prepared_key(key, scaling, pca_components, seed)
    if cache_key is not None:
        with _lock:
            if cache_key in _prepared:
                _prepared.move_to_end(cache_key)
                return _prepared[cache_key]
    z = np.asarray(x, dtype=np.float32)
    if scaling == "standardise":
        spread = z.std(axis=0)
        z = (z - z.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    elif scaling == "l2":
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        z = z / np.where(norms > 0, norms, 1.0)
    if reduced:
        from sklearn.decomposition import PCA

        # scikit-learn picks the randomized solver itself for large inputs.
        z = PCA(n_components=pca_components, random_state=seed).fit_transform(z)
    z = np.ascontiguousarray(z, dtype=np.float32)
    if cache_key is not None and z.nbytes <= PREPARED_BYTES:
        with _lock:
            _remember(_prepared, cache_key, z, 4)
    return z


def _exact(z: np.ndarray, k: int, metric: str) -> Graph:
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric, n_jobs=-1).fit(z)
    distances, indices = index.kneighbors()  # no query: each point's own row is left out
    return Graph(indices.astype(np.int64), distances.astype(np.float32), True)


def _approximate(z: np.ndarray, k: int, metric: str, seed: int) -> Graph:
    from openTSNE.nearest_neighbors import Annoy

    indices, distances = Annoy(z, k, metric=metric, n_jobs=1, random_state=seed).build()
    return Graph(np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float32), False)


def neighbour_graph(z: np.ndarray, k: int, metric: str, seed: int, *, key: str | None = None,
                    cache_dir: Path | None = None) -> Graph:
    """The ``k`` (or more) nearest neighbours of every row of ``z``.

    With ``key`` (identifying ``z``: the features and how they were prepared) a graph with at
    least ``k`` neighbours computed before, in this process or on disk, is reused.
    """
    n = z.shape[0]
    k = min(k, n - 1)
    want = min(max(k, GRAPH_K), n - 1)
    graph_key = None if key is None else sha256_json([key, metric, seed, "graph-v1"])[:32]
    path = None
    if graph_key is not None:
        with _lock:
            found = _graphs.get(graph_key)
        if found is None:
            path = (cache_dir / f"{graph_key}.npz" if cache_dir else layout().graph_file(graph_key))
            if path.exists():
                with np.load(path, allow_pickle=False) as data:
                    found = Graph(data["indices"], data["distances"], bool(data["exact"]))
        if found is not None and found.k >= k:
            graph_stats["reused"] += 1
            with _lock:
                _remember(_graphs, graph_key, found, 4)
            return found
    graph = _exact(z, want, metric) if n <= EXACT_LIMIT else _approximate(z, want, metric, seed)
    graph_stats["computed"] += 1
    if graph_key is not None:
        with _lock:
            _remember(_graphs, graph_key, graph, 4)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.npz")
        np.savez(tmp, indices=graph.indices, distances=graph.distances, exact=np.array(graph.exact),
                 meta=np.array(json.dumps({"n": n, "k": graph.k, "metric": metric})))
        os.replace(tmp, path)
    return graph


def forget() -> None:
    """Drop the in-memory caches (tests use it to see the disk cache at work)."""
    with _lock:
        _prepared.clear()
        _graphs.clear()
