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

from embedviz.errors import DataError

__all__ = ["Clustering", "cluster_points", "make_up", "METHODS", "SPACES", "NOISE"]

METHODS = ("kmeans", "hdbscan")
SPACES = ("features", "map")
NOISE = "noise"
MINIBATCH_FROM = 50_000


@dataclass(frozen=True)
class Clustering:
    """One cluster name per point (``"1"``, ``"2"``, ... by size; ``noise`` for HDBSCAN's
    leftovers; ``None`` for a point that was not clustered, e.g. one the filters left out) and,
    per cluster, the rows of its most typical points."""

    names: np.ndarray
    representatives: dict[str, list[int]]
    method: str
    space: str
    description: str

    @property
    def clustered(self) -> int:
        """How many points were clustered (all of them unless ``rows`` chose some)."""
        return int(sum(name is not None for name in self.names))

    def summary(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Per cluster, over the points clustered (those its typical images are drawn from): its
        size and, with labels, the most common label, its share, the number of labels and the
        make-up in words (:func:`make_up`)."""
        table = pd.DataFrame({"cluster": self.names})
        if "label" in samples.columns:
            table["label"] = samples["label"].astype("string").fillna("(none)").to_numpy()
        table = table[table["cluster"].notna().to_numpy()]
        rows = []
        for name, group in table.groupby("cluster", sort=False):
            row = {"cluster": name, "points": len(group)}
            if "label" in group.columns:
                counts = group["label"].value_counts()
                row.update({"most common label": counts.index[0], "share": counts.iloc[0] / len(group),
                            "labels": int(counts.size), "make-up": make_up(counts)})
            rows.append(row)
        order = {name: i for i, name in enumerate(self.representatives)}
        return pd.DataFrame(rows).sort_values("cluster", key=lambda s: s.map(order)).reset_index(drop=True)


def make_up(counts: pd.Series) -> str:
    """A cluster's labels in a few words, from their counts (largest first): ``mostly 4 (81%)``
    when one label is more than half of it, else ``mixed: 4 41%, 9 38%, 7 12%`` (its three
    largest), so a cluster that is 41% fours is not called "mostly 4"."""
    total = int(counts.sum())
    if not total:
        return ""
    shares = [(str(name), count / total) for name, count in counts.sort_values(ascending=False, kind="stable").items()]
    if shares[0][1] > 0.5:
        return f"mostly {shares[0][0]} ({shares[0][1]:.0%})"
    return "mixed: " + ", ".join(f"{name} {share:.0%}" for name, share in shares[:3])


def _by_size(raw: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Rename cluster ids so that 1 is the largest; noise (-1) stays noise."""
    ids, counts = np.unique(raw[raw >= 0], return_counts=True)
    ranked = ids[np.argsort(-counts, kind="stable")]
    names = np.full(len(raw), NOISE, dtype=object)
    for rank, cid in enumerate(ranked, start=1):
        names[raw == cid] = str(rank)
    return names, [int(c) for c in ranked]


def cluster_points(x: np.ndarray, method: str = "kmeans", *, k: int = 10, min_cluster_size: int = 15,
                   seed: int = 0, representatives: int = 6, space: str = "features",
                   rows: np.ndarray | None = None) -> Clustering:
    """Cluster the rows of ``x``. Same input and seed, same clusters.

    Args:
        x: one row per point (prepared features, or the map's coordinates).
        method: ``kmeans`` (``k`` clusters) or ``hdbscan`` (clusters of at least ``min_cluster_size``).
        representatives: how many typical points (nearest the centre) to keep per cluster.
        space: what ``x`` is (``features`` or ``map``), for the description.
        rows: cluster only these rows (a boolean mask or row numbers, e.g. the points the filters
            keep); the others get no cluster (``None``). Representatives are row numbers of ``x``.
    """
    x = np.asarray(x, dtype=np.float32)
    total = len(x)
    if method not in METHODS:
        raise DataError(f"Unknown clustering {method!r}; choose one of {', '.join(METHODS)}.")
    if rows is None:
        chosen = np.arange(total)
    else:
        rows = np.asarray(rows)
        chosen = np.flatnonzero(rows) if rows.dtype == bool else np.unique(rows.astype(np.int64))
    n = len(chosen)
    if n < 2:
        kept = "the filters keep" if rows is not None else "there are"
        raise DataError(f"Clustering needs at least 2 points; {kept} "
                        f"{n}. Loosen the filters or add points.")
    part = x[chosen]
    where = f"on the {space}" + (f" of {n:,} of the {total:,} points" if n < total else "")
    if method == "kmeans":
        from sklearn.cluster import KMeans, MiniBatchKMeans

        k = int(min(max(k, 2), n))
        model = (MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096) if n > MINIBATCH_FROM
                 else KMeans(n_clusters=k, random_state=seed, n_init="auto"))
        raw = model.fit_predict(part)
        centres = model.cluster_centers_
        description = f"k-means, k = {k}, {where}"
    else:
        from sklearn.cluster import HDBSCAN

        size = int(min(max(min_cluster_size, 2), n))
        raw = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(part)
        centres = None
        description = f"HDBSCAN, clusters of at least {size} points, {where}"
    part_names, ranked = _by_size(raw)
    names = np.full(total, None, dtype=object)
    names[chosen] = part_names
    reps: dict[str, list[int]] = {}
    for rank, cid in enumerate(ranked, start=1):
        members = np.flatnonzero(raw == cid)
        centre = centres[cid] if centres is not None else part[members].mean(axis=0)
        distance = np.linalg.norm(part[members] - centre, axis=1)
        reps[str(rank)] = chosen[members[np.argsort(distance, kind="stable")[:representatives]]].tolist()
    noise = int((raw < 0).sum())
    if noise:
        description += f"; {noise:,} points belong to no cluster ({NOISE})"
    return Clustering(names=names, representatives=reps, method=method, space=space,
                      description=f"{len(ranked)} clusters: {description}")
