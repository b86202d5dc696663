"""Clusters of points, on the features or on the map, and a few representatives of each.

k-means (scikit-learn's ``KMeans``; ``MiniBatchKMeans`` above 50,000 points) needs a number of
clusters; HDBSCAN (scikit-learn's) finds as many as the density supports and leaves the rest as
noise. On the features they run on the same prepared features the reducers use (PCA to 50
dimensions), so "sub-groups inside a class" are groups the model's features make, not
artefacts of the 2-D picture; on the map they group what the eye sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["Clustering", "cluster_points", "METHODS", "SPACES", "NOISE"]

METHODS = ("kmeans", "hdbscan")
SPACES = ("features", "map")
NOISE = "noise"
MINIBATCH_FROM = 50_000


@dataclass(frozen=True)
class Clustering:
    """One cluster name per point (``"1"``, ``"2"``, ... by size; ``noise`` for HDBSCAN's
    leftovers) and, per cluster, the rows of its most typical points."""

    names: np.ndarray
    representatives: dict[str, list[int]]
    method: str
    space: str
    description: str

    def summary(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Per cluster: its size and, with labels, the most common label and its share."""
        table = pd.DataFrame({"cluster": self.names})
        if "label" in samples.columns:
            table["label"] = samples["label"].astype("string").fillna("(none)").to_numpy()
        rows = []
        for name, group in table.groupby("cluster", sort=False):
            row = {"cluster": name, "points": len(group)}
            if "label" in group.columns:
                counts = group["label"].value_counts()
                row.update({"most common label": counts.index[0], "share": counts.iloc[0] / len(group),
                            "labels": int(counts.size)})
            rows.append(row)
        order = {name: i for i, name in enumerate(self.representatives)}
        return pd.DataFrame(rows).sort_values("cluster", key=lambda s: s.map(order)).reset_index(drop=True)


def _by_size(raw: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Rename cluster ids so that 1 is the largest; noise (-1) stays noise."""
    ids, counts = np.unique(raw[raw >= 0], return_counts=True)
    ranked = ids[np.argsort(-counts, kind="stable")]
    names = np.full(len(raw), NOISE, dtype=object)
    for rank, cid in enumerate(ranked, start=1):
        names[raw == cid] = str(rank)
    return names, [int(c) for c in ranked]


def cluster_points(x: np.ndarray, method: str = "kmeans", *, k: int = 10, min_cluster_size: int = 15,
                   seed: int = 0, representatives: int = 6, space: str = "features") -> Clustering:
    """Cluster the rows of ``x``. Same input and seed, same clusters."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if method not in METHODS:
        raise DataError(f"Unknown clustering {method!r}; choose one of {', '.join(METHODS)}.")
    if n < 2:
        raise DataError("Clustering needs at least 2 points.")
    if method == "kmeans":
        from sklearn.cluster import KMeans, MiniBatchKMeans

        k = int(min(max(k, 2), n))
        model = (MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096) if n > MINIBATCH_FROM
                 else KMeans(n_clusters=k, random_state=seed, n_init="auto"))
        raw = model.fit_predict(x)
        centres = model.cluster_centers_
        description = f"k-means, k = {k}, on the {space}"
    else:
        from sklearn.cluster import HDBSCAN

        size = int(min(max(min_cluster_size, 2), n))
        raw = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(x)
        centres = None
        description = f"HDBSCAN, clusters of at least {size} points, on the {space}"
    names, ranked = _by_size(raw)
    reps: dict[str, list[int]] = {}
    for rank, cid in enumerate(ranked, start=1):
        rows = np.flatnonzero(raw == cid)
        centre = centres[cid] if centres is not None else x[rows].mean(axis=0)
        distance = np.linalg.norm(x[rows] - centre, axis=1)
        reps[str(rank)] = rows[np.argsort(distance, kind="stable")[:representatives]].tolist()
    noise = int((raw < 0).sum())
    if noise:
        description += f"; {noise:,} points belong to no cluster ({NOISE})"
    return Clustering(names=names, representatives=reps, method=method, space=space,
                      description=f"{len(ranked)} clusters: {description}")
