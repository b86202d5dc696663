"""Comparing feature sets of the same images: layers of one model, checkpoints, two models.

- :func:`align` turns one map onto another (rotation or reflection, uniform scale, shift: a
  Procrustes fit), so the same point sits in a comparable place; :func:`align_series` does so for a
  series of maps, each onto the one before it (checkpoints over training).
- :func:`neighbourhood_overlap` says, per point, how much of its ``k`` nearest neighbours two feature
  sets share (1: the same neighbours, 0: none); one minus it is how much the point "moved".
- :func:`separation_by_class` gives each class a number per feature set: the mean silhouette of its
  points and the share of them whose nearest neighbours mostly share their class (k-NN accuracy), so
  "layer 3 separates cats from dogs, layer 2 doesn't" is a number.

Everything works on arrays with rows in the same order (the same sample ids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from embedviz.errors import DataError
from embedviz.maps.quality import neighbourhood_kept
from embedviz.maps.reducers.methods import COMPARE_METHODS

__all__ = ["Alignment", "align", "align_series", "neighbourhood_overlap", "separation_by_class", "same_rows",
           "compare_feature_sets", "METHODS"]

#: The reducers a comparison offers: each set's own map, aligned (a map given as is has nothing to align).
METHODS = COMPARE_METHODS


@dataclass(frozen=True)
class Alignment:
    """``coords`` turned onto the reference; ``disparity`` is the remaining squared error relative to
    the reference's spread (0: a perfect fit; scale-free, like scipy's ``procrustes``)."""

    coords: np.ndarray
    rotation: np.ndarray
    scale: float
    shift: np.ndarray
    disparity: float


def align(reference: np.ndarray, moving: np.ndarray) -> Alignment:
    """``moving`` rotated (or reflected), scaled and shifted to lie as close as it can to ``reference``
    (least squares over all rows). The reference is left as it is."""
    from scipy.linalg import orthogonal_procrustes

    reference, moving = np.asarray(reference, np.float64), np.asarray(moving, np.float64)
    if reference.shape != moving.shape or reference.ndim != 2:
        raise DataError(f"Maps to align must have the same shape; got {reference.shape} and {moving.shape}.")
    ref_mean, mov_mean = reference.mean(axis=0), moving.mean(axis=0)
    ref_c, mov_c = reference - ref_mean, moving - mov_mean
    norm = float((mov_c ** 2).sum())
    if norm == 0.0:  # every point in one place: nothing to turn
        coords = np.broadcast_to(ref_mean, reference.shape).copy()
        return Alignment(coords, np.eye(reference.shape[1]), 0.0, ref_mean, float((ref_c ** 2).sum() > 0))
    rotation, sigma = orthogonal_procrustes(mov_c, ref_c)
    scale = float(sigma / norm)
    coords = scale * mov_c @ rotation + ref_mean
    spread = float((ref_c ** 2).sum()) or 1.0
    disparity = float(((coords - reference) ** 2).sum() / spread)
    return Alignment(coords, rotation, scale, ref_mean - scale * mov_mean @ rotation, disparity)


def align_series(maps: list[np.ndarray]) -> list[Alignment]:
    """Each map aligned onto the previous one once that one is aligned (the first stays as it is),
    so a series of checkpoints can be stepped through without the picture spinning."""
    if not maps:
        return []
    first = np.asarray(maps[0], np.float64)
    out = [Alignment(first, np.eye(first.shape[1]), 1.0, np.zeros(first.shape[1]), 0.0)]
    for coords in maps[1:]:
        out.append(align(out[-1].coords, coords))
    return out


def same_rows(ids_a, ids_b) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in each of two feature sets of the sample ids they share, in the first's order
    (feature sets of the same images may skip different unreadable files)."""
    a = pd.Index(pd.Series(ids_a).astype(str))
    b = pd.Index(pd.Series(ids_b).astype(str))
    if a.has_duplicates or b.has_duplicates:
        raise DataError("Sample ids repeat in a feature set; rows cannot be matched between feature sets.")
    shared = a[a.isin(b)]
    if len(shared) == 0:
        raise DataError("These feature sets share no sample ids: they are not of the same images.")
    return a.get_indexer(shared), b.get_indexer(shared)


def neighbourhood_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> np.ndarray:
    """Per point, the share of its ``k`` nearest neighbours in ``a`` that are also among its ``k``
    nearest in ``b`` (rows are the same points in both)."""
    if len(a) != len(b):
        raise DataError(f"Feature sets to compare must have the same rows; got {len(a)} and {len(b)}.")
    k = max(1, min(int(k), len(a) - 1))
    return neighbourhood_kept(np.asarray(a, np.float32), np.asarray(b, np.float32), k)


def separation_by_class(features: np.ndarray, labels, k: int = 10, sample: int = 5_000,
                        seed: int = 0) -> pd.DataFrame:
    """Per class: ``silhouette`` (mean over its points, Euclidean, on at most ``sample`` points) and
    ``knn_accuracy`` (the share of its points whose ``k`` nearest others are mostly of its class),
    with ``points`` (its count). Classes of one point get no silhouette."""
    from sklearn.metrics import silhouette_samples
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(features, np.float32)
    y = pd.Series(labels).astype(str).to_numpy()
    if len(x) != len(y):
        raise DataError(f"{len(x)} feature rows but {len(y)} labels.")
    if len(set(y)) < 2:
        raise DataError("Separation needs at least two classes.")
    rows = np.arange(len(x))
    if len(x) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), sample, replace=False))
    xs, ys = x[rows], y[rows]
    silhouette = silhouette_samples(xs, ys) if len(set(ys)) > 1 else np.full(len(xs), np.nan)
    k = max(1, min(int(k), len(xs) - 1))
    found = NearestNeighbors(n_neighbors=k + 1).fit(xs).kneighbors(xs, return_distance=False)
    same = np.array([(ys[row[row != i][:k]] == ys[i]).mean() for i, row in enumerate(found)])
    table = pd.DataFrame({"label": ys, "silhouette": silhouette, "knn_accuracy": same > 0.5})
    out = table.groupby("label", sort=False).agg(points=("label", "size"), silhouette=("silhouette", "mean"),
                                                   knn_accuracy=("knn_accuracy", "mean")).reset_index()
    out.loc[out["points"] < 2, "silhouette"] = np.nan
    from embedviz.data.classes import natural_order

    order = {v: i for i, v in enumerate(natural_order(out["label"].unique()))}
    return out.sort_values("label", key=lambda s: s.map(order)).reset_index(drop=True)


def compare_feature_sets(feature_sets: list, names: list[str], method: str = "tsne", params: dict | None = None, *,
                         n_components: int = 2, random_state: int = 0, k: int = 10,
                         progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Maps of several feature sets of the same images, each started from the previous one's map and
    aligned onto it, with each point's neighbourhood overlap between consecutive sets and each class's
    separation per set.

    Returns (``maps``: ``sample_id``, the first set's metadata, ``<name>_x``, ``<name>_y`` [, ``_z``]
    per set and ``overlap_<a>_<b>`` per consecutive pair; ``separation``: ``set``, ``label``,
    ``points``, ``silhouette``, ``knn_accuracy`` when the samples have labels).
    """
    import hashlib

    from embedviz.maps.reducers import compute_embedding

    if len(feature_sets) < 2 or len(names) != len(feature_sets):
        raise DataError("Compare needs two or more feature sets, each with a name.")
    rows = [np.arange(len(feature_sets[0]))]
    ids = feature_sets[0].samples["sample_id"]
    for other in feature_sets[1:]:
        left, right = same_rows(ids, other.samples["sample_id"])
        rows = [r[left] for r in rows] + [right]
        ids = ids.iloc[left].reset_index(drop=True)
    # rows[i] are feature set i's rows of the ids every set has, in the same order
    samples = feature_sets[0].samples.iloc[rows[0]].reset_index(drop=True)
    matrices, keys = [], []
    for fs, r in zip(feature_sets, rows):
        matrices.append(np.asarray(fs.features)[r])
        whole = len(r) == len(fs)
        token = hashlib.sha256(np.asarray(r, np.int64).tobytes()).hexdigest()[:12]
        keys.append((fs.key if whole else f"{fs.key}-rows-{token}") if fs.key else None)
    maps, previous = [], None
    for x, key in zip(matrices, keys):
        embedding = compute_embedding(x, method, params, n_components=n_components, random_state=random_state,
                                      features_key=key, init=previous, progress=progress)
        maps.append(embedding.coords)
        previous = embedding
    aligned = align_series(maps)
    table = samples.copy()
    axes = "xyz"[:n_components]
    for name, result in zip(names, aligned):
        for j, axis in enumerate(axes):
            table[f"{name}_{axis}"] = result.coords[:, j]
    for (a, xa), (b, xb) in zip(zip(names, matrices), zip(names[1:], matrices[1:])):
        table[f"overlap_{a}_{b}"] = neighbourhood_overlap(xa, xb, k)
    separation = pd.DataFrame(columns=["set", "label", "points", "silhouette", "knn_accuracy"])
    if "label" in samples.columns and samples["label"].notna().any() and samples["label"].nunique() > 1:
        labelled = samples["label"].notna().to_numpy()
        separation = pd.concat([separation_by_class(x[labelled], samples["label"][labelled], k).assign(set=name)
                                for name, x in zip(names, matrices)], ignore_index=True)
        separation = separation[["set", "label", "points", "silhouette", "knn_accuracy"]]
    return table, separation
