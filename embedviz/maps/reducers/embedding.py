"""Reduce features to a 2-D or 3-D map, cached on disk by (features, method, params, seed, start, sample).

:func:`reduce` does what every method shares: it checks the input, handles data too small or too
uniform for a method (with a notice, never a failure), prepares the features once (scaling,
PCA-k; kept for the next call), hands the neighbour-based methods a shared neighbour graph,
starts from the previous map when given one, fits on a sample and places the rest when asked,
and passes intermediate frames on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedviz.errors import ReducerError
from embedviz.hashing import sha256_json
from embedviz.layout import layout
from embedviz.maps.reducers.methods import Context, get_reducer
from embedviz.maps.reducers.neighbours import neighbour_graph, prepare, prepared_key
from embedviz.maps.reducers.params import make_params
from embedviz.maps.reducers.timing import estimate_seconds
from embedviz.progress import ProgressCallback, report

__all__ = ["Embedding", "MapRequest", "Sample", "sample_rows", "Placer", "place_here", "reduce", "compute_embedding",
           "load_embedding", "scale_for_display", "features_digest", "estimate_seconds", "TINY"]

#: With this many points or fewer, t-SNE and UMAP have nothing to work with: PCA places them.
TINY = 5
#: Points placed per call of a method's transform after a fit on a sample.
PLACE_BATCH = 5_000


@dataclass(frozen=True)
class Sample:
    """Fit the map on ``size`` points (random, or stratified by a column) and place the rest."""

    size: int
    stratify_by: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"size": self.size, "stratify_by": self.stratify_by}


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
    #: The method's own coordinates (``coords`` are centred and scaled for display); a warm start uses them.
    raw: np.ndarray | None = None
    #: The user stopped it before it finished; such maps are never cached.
    partial: bool = False
    #: What computed it ("openTSNE", "umap-learn", "cuML on the GPU", ...).
    backend: str = ""
    #: The key of the map this one started from, if any.
    init_from: str = ""
    #: Routine remarks on how it was made (notes are what the user must see).
    details: tuple[str, ...] = field(default_factory=tuple)


def scale_for_display(coords: np.ndarray) -> np.ndarray:
    """Centre on the origin and scale so the farthest point is at distance 1 on its axis."""
    coords = np.asarray(coords, dtype=np.float64)
    centred = coords - coords.mean(axis=0, keepdims=True)
    extent = np.abs(centred).max() if centred.size else 0
    return (centred / extent if extent > 0 else centred).astype(np.float32)


def features_digest(features: np.ndarray) -> str:
    """SHA-256 of a feature matrix's shape and bytes (never sampled)."""
    array = np.ascontiguousarray(features, dtype=np.float32)
    return sha256_json({"shape": list(array.shape), "sha": hashlib.sha256(array.data).hexdigest()})


def _tiny_pca(x: np.ndarray, n_components: int) -> np.ndarray:
    """PCA for a handful of points (scikit-learn refuses fewer points than components): missing axes are 0."""
    centred = x - x.mean(axis=0, keepdims=True)
    out = np.zeros((len(x), n_components))
    if len(x) > 1 and np.abs(centred).max() > 0:
        u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        k = min(n_components, len(s))
        out[:, :k] = u[:, :k] * s[:k]
    return out


def _duplicates(x: np.ndarray, chunk: int = 65_536) -> int:
    """How many rows repeat an earlier row exactly (byte for byte).

    Rows are hashed to 64 bits in chunks (a multiply-add over their 8-byte words), and only rows that
    share a hash are compared. Sorting the rows themselves, as ``np.unique`` does, took 2.9 s of a
    6.0 s PCA map of 300,000 x 512 on this project's machine.
    """
    a = np.ascontiguousarray(x)
    if a.ndim != 2 or len(a) < 2:
        return 0
    width = a.shape[1] * a.dtype.itemsize
    raw = a.view(np.uint8).reshape(len(a), width)
    words = -(-width // 8)
    weights = np.random.default_rng(0).integers(1, 2**62, size=words, dtype=np.uint64) | np.uint64(1)
    hashes = np.empty(len(a), np.uint64)
    for start in range(0, len(a), chunk):
        part = raw[start:start + chunk]
        if width % 8:
            part = np.pad(part, ((0, 0), (0, 8 * words - width)))
        with np.errstate(over="ignore"):
            hashes[start:start + chunk] = (np.ascontiguousarray(part).view(np.uint64) * weights).sum(
                axis=1, dtype=np.uint64)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    shared = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not len(shared):
        return 0
    candidates = np.unique(np.concatenate([order[shared], order[shared + 1]]))
    rows = raw[candidates].copy().view(np.dtype((np.void, width))).ravel()
    return len(rows) - len(np.unique(rows))


def sample_rows(n: int, sample: Sample, strata: np.ndarray | None, seed: int) -> np.ndarray:
    """Sorted row numbers of a seeded sample; stratified keeps each group's share (at least one each)."""
    rng = np.random.default_rng(seed)
    if sample.stratify_by is None or strata is None:
        return np.sort(rng.choice(n, size=sample.size, replace=False))
    groups = {}
    for value in np.unique(strata.astype(str)):
        groups[value] = np.flatnonzero(strata.astype(str) == value)
    quota = {g: max(1, int(round(sample.size * len(rows) / n))) for g, rows in groups.items()}
    chosen = [rng.choice(rows, size=min(len(rows), quota[g]), replace=False) for g, rows in groups.items()]
    return np.sort(np.concatenate(chosen))


#: ``placer(place, model, batches, ctx, on_done)`` returns ``place(model, batch, ctx)`` for every batch,
#: in order, calling ``on_done(points placed so far)`` as batches finish.
Placer = Callable[[Callable, Any, list, Context, Callable[[int], None]], list]


def place_here(place: Callable, model: Any, batches: list[np.ndarray], ctx: Context,
               on_done: Callable[[int], None]) -> list[np.ndarray]:
    """Batch after batch in this process."""
    out, done = [], 0
    for batch in batches:
        on_done(done)
        out.append(place(model, batch, ctx))
        done += len(batch)
    on_done(done)
    return out


def reduce(
    features: np.ndarray,
    method: str = "tsne",
    params: dict[str, Any] | Any | None = None,
    *,
    n_components: int = 2,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
    on_frame: Callable[[np.ndarray, int, int], None] | None = None,
    init: "Embedding | None" = None,
    sample: Sample | None = None,
    strata: np.ndarray | None = None,
    features_key: str | None = None,
    placer: Placer | None = None,
) -> Embedding:
    """Fit ``method`` on ``features`` and return display-scaled coordinates.

    ``params`` is the method's dataclass or a dict of its fields (checked against their bounds).
    ``init``, a previous map of the same method and size, is where a neighbour-based method starts.
    ``sample`` fits on a sample (stratified by ``strata`` values when it names a column) and places
    the rest. ``on_frame(coords, done, total)`` receives display-scaled intermediate maps.
    ``features_key`` identifies the features so that their preparation and neighbour graph are
    reused across calls. Adjustments made for this data are in ``notes``. ``placer`` places the
    points left out of a sample's fit elsewhere (e.g. :func:`embedviz.maps.ray_placer.place_on_cluster`);
    by default they are placed here, batch after batch (each batch already uses every core).
    """
    reducer = get_reducer(method)
    if n_components not in (2, 3):
        raise ReducerError(f"Maps are 2-D or 3-D; got n_components={n_components}.")
    p = params if isinstance(params, reducer.params_class) else make_params(reducer.params_class, params)
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ReducerError(f"Features must be a 2-D matrix; got shape {x.shape}.")
    if x.shape[0] == 0:
        raise ReducerError("There are no points to make a map of; check the filters or the data.")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ReducerError(f"{bad} feature rows contain NaN or infinite values; remove them first.")
    start = time.perf_counter()
    n = x.shape[0]
    ctx = Context(n_components=n_components, seed=random_state, progress=progress)

    def done(raw: np.ndarray, *, given: bool = False) -> Embedding:
        raw = np.asarray(raw, dtype=np.float32)
        shown = raw.copy() if given else scale_for_display(raw)
        return Embedding(shown, reducer.name, asdict(p), n_components, random_state,
                         round(time.perf_counter() - start, 3), tuple(ctx.notes), raw=raw, partial=ctx.partial,
                         backend=ctx.backend, init_from=init.key if init is not None and ctx.init is not None else "",
                         details=tuple(ctx.details))

    if reducer.name == "precomputed":
        coords, _ = reducer.fit(x, p, ctx)
        return done(coords, given=True)
    if n <= TINY:
        if reducer.name != "pca":
            what = "1 point is" if n == 1 else f"{n} points are"
            ctx.notes.append(f"{what} too few for {reducer.label}; placed by PCA instead.")
        return done(_tiny_pca(x, n_components))
    if np.ptp(x, axis=0).max() == 0:
        ctx.notes.append(f"All {n:,} points have identical features, so they are drawn at one place.")
        return done(np.zeros((n, n_components)))
    repeated = _duplicates(x)
    if repeated:
        ctx.notes.append(f"{repeated:,} points repeat another point's features exactly; they sit on top of it.")

    if reducer.neighbour_based:
        z = prepare(x, p.scaling, p.pca_components, random_state, key=features_key, notes=ctx.details)
    else:
        z = prepare(x, p.scaling, 0, random_state)  # PCA itself is the reduction: nothing to keep
    prep_key = None if features_key is None else prepared_key(
        features_key, p.scaling, getattr(p, "pca_components", 0), random_state)

    rows = None
    if sample is not None and 0 < sample.size < n:
        if reducer.place is None:
            raise ReducerError(f"{reducer.label} cannot place points it was not fitted on; fit on all points.")
        rows = sample_rows(n, sample, strata, random_state)
        how = f"stratified by {sample.stratify_by}" if sample.stratify_by and strata is not None else "random"
        ctx.notes.append(f"Fitted on a {how} sample of {len(rows):,} of {n:,} points (seed {random_state}); "
                         f"the other {n - len(rows):,} were placed with {reducer.label}'s transform.")
        ctx.full = False

    if reducer.neighbour_based and rows is None:
        ctx.graph = lambda k, metric: neighbour_graph(z, k, metric, random_state, key=prep_key)
    if init is not None and reducer.neighbour_based and init.raw is not None:
        if init.method == reducer.name and init.raw.shape == (n, n_components):
            ctx.init = init.raw if rows is None else init.raw[rows]
    if on_frame is not None:
        fit_rows = n if rows is None else len(rows)

        def frame(raw: np.ndarray, done_steps: int, total: int) -> None:
            if len(raw) == fit_rows:
                on_frame(scale_for_display(raw), done_steps, total)

        ctx.on_frame = frame

    fit_z = z if rows is None else z[rows]
    coords, model = reducer.fit(fit_z, p, ctx)
    if rows is not None and not ctx.partial:
        rest = np.setdiff1d(np.arange(n), rows)
        full = np.empty((n, n_components), dtype=np.float64)
        full[rows] = coords
        parts = [rest[begin : begin + PLACE_BATCH] for begin in range(0, len(rest), PLACE_BATCH)]
        placed = (placer or place_here)(reducer.place, model, [z[part] for part in parts], ctx,
                                        lambda done: report(progress, len(rows) + done, n,
                                                            f"placing the other points: {done:,} of {len(rest):,}"))
        for part, where in zip(parts, placed):
            full[part] = where
        coords = full
    elif rows is not None:  # stopped during the fit: only the sample has places
        ctx.notes.append("The other points were not placed because the fit was stopped.")
        full = np.full((n, n_components), np.nan)
        full[rows] = coords
        coords = np.where(np.isnan(full), np.nanmean(full, axis=0), full)
    return done(coords)


@dataclass(frozen=True)
class MapRequest:
    """Which map: the features (by key), the method with its parameters, the dimensions and seed, the map a
    warm start began from, and the sample it was fitted on. :meth:`key` names it in the map cache.

    ``params`` is the method's full parameter dataclass as a dict (defaults included), so two requests that
    differ only in how they were spelled have one key.
    """

    features_key: str
    method: str
    params: tuple[tuple[str, Any], ...]
    n_components: int = 2
    seed: int = 0
    init_key: str = ""
    sample: Sample | None = None

    @classmethod
    def of(cls, features_key: str, method: str, params: dict[str, Any], *, n_components: int = 2, seed: int = 0,
           init_key: str = "", sample: Sample | None = None) -> MapRequest:
        return cls(features_key, method, tuple(sorted(params.items())), n_components, seed, init_key, sample)

    def to_dict(self) -> dict[str, Any]:
        """The serialised form (the one the cache key hashes)."""
        out = {"features": self.features_key, "method": self.method, "params": dict(self.params),
               "n": self.n_components, "seed": self.seed}
        if self.init_key:  # older maps (fresh start, all points) keep their keys
            out["init"] = self.init_key
        if self.sample is not None:
            out["sample"] = self.sample.describe()
        return out

    def key(self) -> str:
        return sha256_json(self.to_dict())[:32]


def load_embedding(key: str, cache_dir: Path | None = None) -> Embedding | None:
    """The map stored under ``key`` (as :func:`compute_embedding` wrote it), or ``None``."""
    path = (cache_dir / f"{key}.npz" if cache_dir else layout().map_file(key))
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        raw = data["raw"] if "raw" in data.files else None
        return Embedding(data["coords"], meta["method"], meta["params"], meta["n_components"],
                         meta["random_state"], meta["seconds"], notes=tuple(meta["notes"]), key=key,
                         from_cache=True, raw=raw, backend=meta.get("backend", ""),
                         init_from=meta.get("init_from", ""), details=tuple(meta.get("details", ())))


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
    on_frame: Callable[[np.ndarray, int, int], None] | None = None,
    init: Embedding | None = None,
    sample: Sample | None = None,
    strata: np.ndarray | None = None,
    placer: "Placer | None" = None,
) -> Embedding:
    """:func:`reduce` through an on-disk cache; ``features_key`` skips re-hashing a stored set.

    With ``cache_only`` a map not computed before raises :class:`LookupError` instead. A map
    the user stopped early is returned but not stored.
    """
    reducer = get_reducer(method)
    p = make_params(reducer.params_class, params) if not isinstance(params, reducer.params_class) else params
    features_key = features_key or features_digest(features)
    usable_init = init if (init is not None and reducer.neighbour_based and init.method == reducer.name
                           and init.raw is not None and init.raw.shape == (len(features), n_components)
                           and not init.partial) else None
    if sample is not None and not 0 < sample.size < len(features):
        sample = None
    key = MapRequest.of(features_key, reducer.name, asdict(p), n_components=n_components, seed=random_state,
                        init_key=usable_init.key if usable_init is not None else "", sample=sample).key()
    folder = cache_dir or layout().maps
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    found = load_embedding(key, folder)
    if found is not None:
        return found
    if cache_only:
        raise LookupError(key)
    result = reduce(features, reducer.name, p, n_components=n_components, random_state=random_state,
                    progress=progress, on_frame=on_frame, init=usable_init, sample=sample, strata=strata,
                    features_key=features_key, placer=placer)
    if not result.partial:
        meta = {k: getattr(result, k) for k in ("method", "params", "n_components", "random_state", "seconds",
                                                 "backend", "init_from")}
        meta["notes"] = list(result.notes)
        meta["details"] = list(result.details)
        tmp = folder / f".{key}.{uuid.uuid4().hex[:8]}.npz"
        np.savez(tmp, coords=result.coords, raw=result.raw, meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    return replace(result, key=key, from_cache=False)
