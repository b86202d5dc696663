"""How faithful a map is to the features it came from.

- *Trustworthiness* at k: are the map's near neighbours really near in feature space? (1 is perfect;
  points pulled together that were far apart lower it.)
- *Continuity* at k: are feature-space neighbours still near on the map? (points torn apart lower it.)
- *k-NN label agreement*: the share of each point's k nearest neighbours with its label, on the map and
  in feature space; a map that agrees less than the features is hiding structure.
- *Neighbourhood kept* per point: the share of its k feature-space neighbours that are also among its
  k map neighbours; it can colour the map to show where to distrust it.

Trustworthiness and continuity need exact ranks, so they are computed for a seeded random sample of
points (against all points); the result says how many.

After a slider move, :func:`map_move` says what the move changed: how far points moved once the
two maps are aligned (rotation, scale and position removed by Procrustes), and how many of each
point's k feature-space neighbours the map keeps before and after, at the k the parameter acts on
(about the perplexity for t-SNE, ``n_neighbors`` for UMAP): a move the 10-NN scores cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Faithfulness", "faithfulness", "trust_and_continuity", "neighbourhood_kept", "MapMove", "map_move",
           "align", "quality_seconds"]

#: Above this many points the per-point score is computed for the sample only.
ALL_POINTS_LIMIT = 20_000
#: Above this many points everything is measured within a seeded random subset of this many (ranks
#: against a million points would take many minutes; a subset's map keeps its neighbourhoods).
REFERENCE_LIMIT = 50_000


@dataclass(frozen=True)
class Faithfulness:
    k: int
    sampled: int
    total: int
    trustworthiness: float
    continuity: float
    label_agreement_map: float | None
    label_agreement_features: float | None
    #: Per point (``nan`` where not computed), in the features' row order.
    kept: np.ndarray
    #: Neighbours were looked for among a random subset of this many points (0: among all).
    among: int = 0

    def summary(self) -> str:
        text = (f"trustworthiness@{self.k} {self.trustworthiness:.3f} · continuity@{self.k} {self.continuity:.3f}")
        if self.label_agreement_map is not None:
            text += (f" · {self.k}-NN label agreement {self.label_agreement_map:.1%} on the map vs "
                     f"{self.label_agreement_features:.1%} in feature space")
        how = "all" if self.sampled == self.total else f"a random sample of {self.sampled:,} of"
        among = f", neighbours among a random {self.among:,}" if self.among else ""
        return text + f" (on {how} {self.total:,} points{among})"


def _neighbours(x: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Indices of each point's ``k`` nearest others (of ``rows`` only, if given), nearest first."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k + 1).fit(x)
    query = x if rows is None else x[rows]
    found = index.kneighbors(query, return_distance=False)
    own = np.arange(len(x)) if rows is None else rows
    # Drop the point itself (first, unless exact duplicates tie with it).
    out = np.empty((len(query), k), dtype=np.int64)
    for i, (row, me) in enumerate(zip(found, own)):
        others = row[row != me]
        out[i] = others[:k]
    return out


def _distances(x: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Squared distances from the points ``part`` to every point; each point's own is infinite."""
    x64 = x.astype(np.float64)
    sq = (x64 ** 2).sum(axis=1)
    d = sq[part, None] + sq[None, :] - 2.0 * x64[part] @ x64.T
    d[np.arange(len(part)), part] = np.inf
    return d


def trust_and_continuity(features: np.ndarray, coords: np.ndarray, k: int = 10,
                         rows: np.ndarray | None = None, chunk: int | None = None) -> tuple[float, float]:
    """Trustworthiness and continuity at ``k`` over ``rows`` (default: all points).

    No full sort: an intruder's rank is the count of points nearer than it, so the cost is the
    distance rows plus one comparison row per intruder."""
    n = len(features)
    rows = np.arange(n) if rows is None else np.asarray(rows)
    chunk = chunk or max(1, 2**23 // n)  # two distance blocks of at most 64 MiB each, whatever n is
    penalty = {"trust": 0.0, "continuity": 0.0}
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        df, dm = _distances(features, part), _distances(coords, part)
        nn_f = np.argpartition(df, k, axis=1)[:, :k]
        nn_m = np.argpartition(dm, k, axis=1)[:, :k]
        for i in range(len(part)):
            for name, own_d, own_nn, other_nn in (("trust", df[i], nn_f[i], nn_m[i]),
                                                   ("continuity", dm[i], nn_m[i], nn_f[i])):
                intruders = np.setdiff1d(other_nn, own_nn, assume_unique=True)
                if len(intruders):
                    ranks = (own_d[None, :] < own_d[intruders, None]).sum(axis=1) + 1
                    penalty[name] += float((ranks - k).sum())
    scale = 2.0 / (len(rows) * k * (2 * n - 3 * k - 1))
    return 1.0 - scale * penalty["trust"], 1.0 - scale * penalty["continuity"]


def neighbourhood_kept(features: np.ndarray, coords: np.ndarray, k: int = 10,
                       rows: np.ndarray | None = None) -> np.ndarray:
    """Per point, the share of its ``k`` feature-space neighbours that are also its map neighbours."""
    feat_nn, map_nn = _neighbours(features, k, rows), _neighbours(coords, k, rows)
    return np.array([len(np.intersect1d(a, b, assume_unique=True)) / k for a, b in zip(feat_nn, map_nn)])


def _agreement(neighbours: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float:
    return float((labels[neighbours] == labels[rows, None]).mean())


def faithfulness(features: np.ndarray, coords: np.ndarray, labels=None, *, k: int = 10, sample: int = 2_000,
                 seed: int = 0) -> Faithfulness:
    """All four measures; ranks on a seeded sample of ``sample`` points, neighbourhoods on all of
    them up to :data:`ALL_POINTS_LIMIT` points; above :data:`REFERENCE_LIMIT` points, all within a
    seeded random subset of that many (``among`` says so)."""
    n = len(features)
    if n > REFERENCE_LIMIT:
        subset = np.sort(np.random.default_rng(seed).choice(n, size=REFERENCE_LIMIT, replace=False))
        part = faithfulness(np.asarray(features[subset], dtype=np.float32), np.asarray(coords)[subset],
                            None if labels is None else np.asarray(labels, dtype=object)[subset],
                            k=k, sample=sample, seed=seed)
        kept = np.full(n, np.nan)
        kept[subset] = part.kept
        return replace(part, total=n, kept=kept, among=REFERENCE_LIMIT)
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(coords, dtype=np.float32)
    k = max(1, min(k, (n - 1) // 2))  # trustworthiness needs k < n / 2
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    trust, continuity = trust_and_continuity(x, y, k, rows)
    every = np.arange(n) if n <= ALL_POINTS_LIMIT else rows
    feat_nn, map_nn = _neighbours(x, k, every), _neighbours(y, k, every)  # row j is point every[j]
    kept = np.full(n, np.nan)
    kept[every] = [len(np.intersect1d(a, b, assume_unique=True)) / k for a, b in zip(feat_nn, map_nn)]
    agree_map = agree_feat = None
    if labels is not None:
        values = np.asarray(labels, dtype=object)
        known = np.array([v is not None and v == v for v in values])  # not None, not NaN
        if known[rows].any():
            values = np.where(known, values.astype(str), "\0missing")
            position = np.searchsorted(every, rows[known[rows]])
            labelled = every[position]
            agree_map = _agreement(map_nn[position], values, labelled)
            agree_feat = _agreement(feat_nn[position], values, labelled)
    return Faithfulness(k, len(rows), n, trust, continuity, agree_map, agree_feat, kept)


#: The per-point neighbourhood scores of a move are measured on at most this many seeded points.
MOVE_SAMPLE = 5_000


def quality_seconds(n: int, dim: int) -> float:
    """About how long :func:`faithfulness` takes on ``n`` points on the 2-core machine of
    docs/benchmarks.md, so the page's estimate includes it.

    Measured with the reducers' calibration (:data:`embedviz.maps.reducers.timing._COST`), on the demo's
    64-dim features: 0.3 s at 1,797 points, 1.1 s at 10,000 (quiet-machine equivalents); mostly the
    2,000 ranked rows, one distance row of every point each. Above :data:`REFERENCE_LIMIT` points it is
    measured within a subset of that many.
    """
    return 0.1 + 1e-4 * min(n, REFERENCE_LIMIT)


@dataclass(frozen=True)
class MapMove:
    """What moving a slider did to the map (``after`` compared with ``before``, same points)."""

    #: The scale the changed parameter acts on: neighbours counted per point.
    k: int
    #: Each point's distance from where it was, after alignment, in units of the map's spread.
    moved: np.ndarray
    #: Share of each point's ``k`` feature-space neighbours kept among its ``k`` map neighbours,
    #: averaged over the measured points, before and after.
    kept_before: float
    kept_after: float
    #: Points the neighbourhood scores were measured on (all, or a seeded sample).
    measured: int

    @property
    def median_moved(self) -> float:
        return float(np.median(self.moved))

    def summary(self) -> str:
        """``"points moved a median 2.1% of the map's spread ...; 50-NN kept 41.2% → 44.0%"``."""
        change = self.kept_after - self.kept_before
        trend = "more" if change > 0.0005 else "fewer" if change < -0.0005 else "about as many"
        return (f"points moved a median {self.median_moved:.1%} of the map's spread (after aligning rotation, "
                f"scale and position; the most-moved tenth more than {np.quantile(self.moved, 0.9):.1%}); "
                f"each point's {self.k} nearest feature-space neighbours kept on the map: "
                f"{self.kept_before:.1%} → {self.kept_after:.1%} ({trend})")


def align(before: np.ndarray, after: np.ndarray, *, trim: float = 0.1) -> np.ndarray:
    """``after`` rotated (or reflected), scaled and shifted to lie as close to ``before`` as it can
    (orthogonal Procrustes), so that only real changes of shape remain. The fit is made again
    without the ``trim`` share of points that moved most, so a few points sent far away do not
    turn and shrink the rest."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)

    def fit(rows: np.ndarray) -> np.ndarray:
        a_mean, b_mean = a[rows].mean(axis=0), b[rows].mean(axis=0)
        a0, b0 = a[rows] - a_mean, b[rows] - b_mean
        u, s, vt = np.linalg.svd(b0.T @ a0)
        norm = float((b0 ** 2).sum())
        scale = float(s.sum()) / norm if norm > 0 else 1.0
        return scale * (b - b_mean) @ (u @ vt) + a_mean

    aligned = fit(np.arange(len(a)))
    if trim > 0 and len(a) >= 10:
        residual = np.linalg.norm(aligned - a, axis=1)
        aligned = fit(np.flatnonzero(residual <= np.quantile(residual, 1 - trim)))
    return aligned


def map_move(features: np.ndarray, before: np.ndarray, after: np.ndarray, k: int, *,
             sample: int = MOVE_SAMPLE, seed: int = 0) -> MapMove:
    """How far ``after`` moved from ``before`` (aligned first; per point, relative to the spread of
    ``before``: the root-mean-square distance of its points from their centre) and each map's
    ``k``-NN preservation of the features, on up to ``sample`` seeded points."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"The maps have different shapes: {a.shape} and {b.shape}.")
    n = len(a)
    spread = float(np.sqrt(((a - a.mean(axis=0)) ** 2).sum(axis=1).mean())) or 1.0
    moved = np.linalg.norm(align(a, b) - a, axis=1) / spread
    k = max(1, min(int(k), n - 1))
    rows = None if n <= sample else np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    feat_nn = _neighbours(np.asarray(features, dtype=np.float32), k, rows)

    def kept(coords: np.ndarray) -> float:
        map_nn = _neighbours(coords.astype(np.float32), k, rows)
        return float(np.mean([len(np.intersect1d(f, m, assume_unique=True)) / k for f, m in zip(feat_nn, map_nn)]))

    kept_before, kept_after = kept(a), kept(b)
    return MapMove(k, moved, kept_before, kept_after, n if rows is None else len(rows))
