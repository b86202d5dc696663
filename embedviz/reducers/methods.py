"""The reducers themselves: PCA (scikit-learn), t-SNE (openTSNE) and UMAP (umap-learn).

Each ``fit`` takes float32 features, its parameter dataclass, ``n_components``, a seed and
a progress callback, and returns coordinates plus notes about anything it had to adjust for
this data. Heavy libraries are imported when first used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from ..errors import ReducerError
from ..progress import ProgressCallback, report
from .params import GivenParams, PCAParams, TSNEParams, UMAPParams

__all__ = ["Reducer", "REDUCERS", "available_methods", "get_reducer", "import_umap"]

FitResult = tuple[np.ndarray, list[str]]


@dataclass(frozen=True)
class Reducer:
    name: str
    label: str
    params_class: type
    fit: Callable[[np.ndarray, Any, int, int, ProgressCallback | None], FitResult]


def _pca_first(x: np.ndarray, k: int, seed: int, notes: list[str]) -> np.ndarray:
    if k and x.shape[1] > k and x.shape[0] > k:
        from sklearn.decomposition import PCA

        notes.append(f"Features reduced from {x.shape[1]} to {k} PCA dimensions first.")
        return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)
    return x


def _fit_pca(x: np.ndarray, params: PCAParams, n_components: int, seed: int, progress) -> FitResult:
    from sklearn.decomposition import PCA

    report(progress, 0, 1, "PCA")
    pca = PCA(n_components=n_components, random_state=seed)
    coords = pca.fit_transform(x)
    explained = pca.explained_variance_ratio_.sum()
    report(progress, 1, 1, "PCA done")
    return coords, [f"The {n_components} components explain {explained:.0%} of the variance."]


def _fit_tsne(x: np.ndarray, params: TSNEParams, n_components: int, seed: int, progress) -> FitResult:
    from openTSNE import TSNE
    from openTSNE.tsne import OptimizationInterrupt

    notes: list[str] = []
    limit = (x.shape[0] - 1) / 3.0
    if params.perplexity >= limit:
        clamped = max(1.0, np.floor(limit - 1e-9))
        notes.append(f"Perplexity {params.perplexity:g} is too large for {x.shape[0]} points; used {clamped:g}.")
        params = replace(params, perplexity=float(clamped))
    x = _pca_first(x, params.pca_components, seed, notes)
    exaggeration_iter = 250
    total = exaggeration_iter + params.n_iter
    every = 25
    state = {"calls": 0, "stopped": False}

    def callback(iteration: int, error: float, embedding: np.ndarray) -> bool:
        state["calls"] += 1
        done = min(state["calls"] * every, total)
        state["stopped"] = bool(progress and progress(done, total, f"t-SNE iteration {done} of {total}, KL {error:.3f}"))
        return state["stopped"]

    tsne = TSNE(
        n_components=n_components, perplexity=params.perplexity, n_iter=params.n_iter,
        early_exaggeration=params.early_exaggeration, early_exaggeration_iter=exaggeration_iter,
        metric=params.metric, random_state=seed, n_jobs=-1,
        # openTSNE's "auto" picks Barnes-Hut below 10k points (5x faster than FFT here on
        # 1,797) and FFT above; FFT only works in 1-2 dimensions, so 3-D is always Barnes-Hut.
        negative_gradient_method="auto" if n_components <= 2 else "bh",
        callbacks=callback, callbacks_every_iters=every,
    )
    report(progress, 0, total, "t-SNE: finding neighbours")
    try:
        coords = np.asarray(tsne.fit(x))
    except OptimizationInterrupt as stop:  # raised or swallowed depending on the phase
        coords = np.asarray(stop.final_embedding)
        state["stopped"] = True
    if state["stopped"]:
        notes.append(f"Stopped early at iteration {min(state['calls'] * every, total)} of {total}; the map is partial.")
    return coords, notes


def import_umap():
    """umap-learn, with numba's compiled code cached under ``$EMBEDVIZ_HOME/numba`` so that only the
    first process on a machine pays the compilation (numba reads the variable when first imported)."""
    import os

    from ..home import home_dir

    os.environ.setdefault("NUMBA_CACHE_DIR", str(home_dir() / "numba"))
    import umap

    return umap


def _fit_umap(x: np.ndarray, params: UMAPParams, n_components: int, seed: int, progress) -> FitResult:
    notes: list[str] = []
    if params.n_neighbors >= x.shape[0]:
        notes.append(f"n_neighbors {params.n_neighbors} is too large for {x.shape[0]} points; used {x.shape[0] - 1}.")
        params = replace(params, n_neighbors=x.shape[0] - 1)
    x = _pca_first(x, params.pca_components, seed, notes)
    report(progress, 0, 2, "UMAP: loading (the first use on a machine compiles for up to a minute)")
    umap = import_umap()

    report(progress, 1, 2, "UMAP: fitting")
    model = umap.UMAP(n_components=n_components, n_neighbors=params.n_neighbors, min_dist=params.min_dist,
                      metric=params.metric, random_state=seed)
    with warnings.catch_warnings():
        # umap warns that a seed forces one thread; the note below tells the user instead.
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        coords = model.fit_transform(x)
    report(progress, 2, 2, "UMAP done")
    notes.append("A fixed seed makes UMAP reproducible but single-threaded.")
    return coords, notes


def _fit_given(x: np.ndarray, params: GivenParams, n_components: int, seed: int, progress) -> FitResult:
    """Coordinates made elsewhere (Metascatter's X-/Y-Coord, a 2-D or 3-D array): shown as they are."""
    if x.shape[1] not in (2, 3):
        raise ReducerError(f"These features have {x.shape[1]} dimensions, not 2 or 3, so they are not map "
                           "coordinates; choose PCA, t-SNE or UMAP.")
    if x.shape[1] != n_components:
        raise ReducerError(f"The given coordinates are {x.shape[1]}-D; choose {x.shape[1]}-D.")
    report(progress, 1, 1, "given coordinates")
    return x.copy(), ["The coordinates are the ones given with the data; nothing was reduced."]


REDUCERS: dict[str, Reducer] = {
    "pca": Reducer("pca", "PCA", PCAParams, _fit_pca),
    "tsne": Reducer("tsne", "t-SNE", TSNEParams, _fit_tsne),
    "umap": Reducer("umap", "UMAP", UMAPParams, _fit_umap),
    "precomputed": Reducer("precomputed", "As given", GivenParams, _fit_given),
}


def available_methods(dim: int) -> list[str]:
    """The methods that fit features of ``dim`` dimensions ("precomputed" only for 2-D/3-D ones)."""
    return [name for name in REDUCERS if name != "precomputed" or dim in (2, 3)]


def get_reducer(name: str) -> Reducer:
    """The reducer called ``name``; the error lists the valid names."""
    try:
        return REDUCERS[name.lower()]
    except KeyError:
        raise ReducerError(f"Unknown method {name!r}; choose one of {', '.join(REDUCERS)}.") from None
