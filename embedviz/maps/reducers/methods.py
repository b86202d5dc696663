"""The reducers themselves: PCA (scikit-learn, or torch on a GPU), t-SNE (openTSNE) and UMAP (umap-learn),
with cuML's t-SNE and UMAP used instead when cuML is installed and a GPU is present.

Each ``fit`` takes the prepared float32 features (scaled, PCA-reduced), its parameter dataclass and
a :class:`Context`, and returns raw map coordinates plus a fitted model that can place more points
(``place``), used when the map is fitted on a sample. What a reducer had to adjust for this data
goes into ``ctx.notes``. Heavy libraries are imported when first used.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from embedviz.errors import ReducerError
from embedviz.maps.reducers.neighbours import Graph
from embedviz.maps.reducers.params import GivenParams, PCAParams, TSNEParams, UMAPParams, perplexity_limit
from embedviz.progress import ProgressCallback, report

__all__ = ["Reducer", "REDUCERS", "COMPARE_METHODS", "Context", "available_methods", "get_reducer", "import_umap",
           "gpu_backend"]

log = logging.getLogger(__name__)

#: The reducers that fit a map of their own (every one but "precomputed", which shows given coordinates):
#: what Compare offers, each set's map then aligned to the first.
COMPARE_METHODS = ("tsne", "umap", "pca")

#: Frames are the map while it is being optimised: ``(raw coordinates, done, total)``.
FrameCallback = Callable[[np.ndarray, int, int], None]

#: t-SNE stops once its KL divergence improved by less than this fraction over 50 iterations.
TSNE_TOLERANCE = 2e-3
#: A fresh t-SNE map first runs this many early-exaggeration iterations (openTSNE's and scikit-learn's 250).
TSNE_EXAGGERATION_ITER = 250
#: After a warm start t-SNE runs at most this many iterations (the map is already close).
TSNE_WARM_ITER = 300
#: 2-D t-SNE uses FFT gradients from this many points, Barnes-Hut below.
FFT_FROM = 3_500
#: UMAP from the previous map: a short first stage (a frame to show), then the rest.
UMAP_WARM_EPOCHS = (30, 150)


def umap_epochs(n_points: int) -> int:
    """The layout epochs umap-learn runs from scratch by default: 500 up to 10,000 points, 200 above."""
    return 500 if n_points <= 10_000 else 200


@dataclass
class Context:
    """What a fit needs beyond the features and the parameters."""

    n_components: int
    seed: int
    progress: ProgressCallback | None = None
    on_frame: FrameCallback | None = None
    #: ``graph(k, metric)``: the shared neighbour graph of these features (``None`` when the
    #: reducer must build its own, queryable index: fits on a sample).
    graph: Callable[[int, str], Graph] | None = None
    #: The previous map of the same method, raw, to start from (``None``: a fresh start).
    init: np.ndarray | None = None
    #: Notices the user should see (a parameter clamped, a sample taken, a stop).
    notes: list[str] = field(default_factory=list)
    #: Routine remarks on how the map was made (PCA first, converged, warm start).
    details: list[str] = field(default_factory=list)
    #: Whether all points are fitted (``False``: a sample, the rest placed by ``place``).
    full: bool = True
    #: Set when the user stopped the optimisation before it finished.
    partial: bool = False
    backend: str = ""


@dataclass(frozen=True)
class Reducer:
    name: str
    label: str
    params_class: type
    fit: Callable[[np.ndarray, Any, Context], tuple[np.ndarray, Any]]
    place: Callable[[Any, np.ndarray, Context], np.ndarray] | None = None
    #: Whether the reducer benefits from the shared neighbour graph and from warm starts.
    neighbour_based: bool = False


def gpu_backend() -> str | None:
    """``"cuml"`` when cuML is importable and a CUDA device is present, ``"torch"`` with CUDA alone."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
    except (ImportError, RuntimeError, OSError):  # no torch, or a CUDA install that cannot start
        return None
    try:
        import cuml  # noqa: F401

        return "cuml"
    except (ImportError, RuntimeError, OSError):  # absent, or built for another CUDA than this driver's
        return "torch"


# --------------------------------------------------------------------------------------------- PCA

def pca_torch(x: np.ndarray, n_components: int, device: str, chunk: int = 65_536) -> tuple[np.ndarray, float]:
    """PCA on ``device`` by the covariance matrix, as scikit-learn's ``covariance_eigh`` solver does.

    The rows travel in chunks and the sums are float64, so a million rows need neither a second
    copy on the device nor a thin SVD of the tall matrix (which took 6.1 s for 1,000,000 x 512 on an
    H200, against 1.2 s for scikit-learn's covariance solver on its 16 cores). Signs follow
    scikit-learn's rule: the largest |loading| of each component is positive.
    """
    import torch

    n, d = x.shape
    dev = torch.device(device)

    def rows(start: int) -> "torch.Tensor":
        return torch.as_tensor(np.ascontiguousarray(x[start:start + chunk]), device=dev).to(torch.float64)

    total = torch.zeros(d, dtype=torch.float64, device=dev)
    gram = torch.zeros((d, d), dtype=torch.float64, device=dev)
    for start in range(0, n, chunk):  # one pass for both sums: the rows cross to the device twice, not three times
        part = rows(start)
        total += part.sum(dim=0)
        gram += part.T @ part
    mean = total / n
    cov = gram - n * torch.outer(mean, mean)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    top = vectors[:, -n_components:].flip(1)  # d x k, largest first
    signs = torch.sign(top.gather(0, top.abs().argmax(dim=0, keepdim=True)))
    signs[signs == 0] = 1
    top = top * signs
    coords = np.empty((n, n_components), dtype=np.float64)
    for start in range(0, n, chunk):
        coords[start:start + chunk] = ((rows(start) - mean) @ top).cpu().numpy()
    trace = float(values.clamp(min=0).sum())
    explained = float(values[-n_components:].clamp(min=0).sum()) / trace if trace > 0 else 1.0
    return coords, explained


def _fit_pca(x: np.ndarray, params: PCAParams, ctx: Context) -> tuple[np.ndarray, Any]:
    report(ctx.progress, 0, 1, "PCA")
    if gpu_backend() is not None and ctx.full:  # a fit on a sample needs scikit-learn's transform
        coords, explained = pca_torch(x, ctx.n_components, "cuda")
        model = None
        ctx.backend = "torch on the GPU"
    else:
        from sklearn.decomposition import PCA

        model = PCA(n_components=ctx.n_components, random_state=ctx.seed)
        coords = model.fit_transform(x)
        explained = float(model.explained_variance_ratio_.sum())
        ctx.backend = "scikit-learn"
    report(ctx.progress, 1, 1, "PCA done")
    ctx.details.append(f"The {ctx.n_components} components explain {explained:.0%} of the variance.")
    return coords, model


def _place_pca(model: Any, x: np.ndarray, ctx: Context) -> np.ndarray:
    return model.transform(x)


# ------------------------------------------------------------------------------------------- t-SNE

def _tsne_perplexity(params: TSNEParams, n: int, ctx: Context) -> float:
    clamped = float(perplexity_limit(n))
    if params.perplexity <= clamped:
        return params.perplexity
    ctx.notes.append(f"Perplexity {params.perplexity:g} is too large for {n:,} points; used {clamped:g}.")
    return clamped


def _fit_tsne_cuml(x: np.ndarray, params: TSNEParams, perplexity: float, ctx: Context):
    import cuml

    model = cuml.TSNE(n_components=2, perplexity=perplexity, early_exaggeration=params.early_exaggeration,
                      learning_rate=params.learning_rate or 200.0, n_iter=TSNE_EXAGGERATION_ITER + params.n_iter,
                      metric=params.metric, random_state=ctx.seed)
    report(ctx.progress, 0, 1, "t-SNE on the GPU (cuML)")
    coords = np.asarray(model.fit_transform(x))
    report(ctx.progress, 1, 1, "t-SNE done")
    ctx.backend = "cuML on the GPU"
    return coords, None


def _fit_tsne(x: np.ndarray, params: TSNEParams, ctx: Context) -> tuple[np.ndarray, Any]:
    from openTSNE import TSNEEmbedding, affinity, initialization
    from openTSNE.nearest_neighbors import PrecomputedNeighbors
    from openTSNE.tsne import OptimizationInterrupt

    n = x.shape[0]
    perplexity = _tsne_perplexity(params, n, ctx)
    if gpu_backend() == "cuml" and ctx.n_components == 2 and ctx.init is None and ctx.full:
        return _fit_tsne_cuml(x, params, perplexity, ctx)
    ctx.backend = "openTSNE"
    k = min(n - 1, int(3 * perplexity))
    report(ctx.progress, 0, 1, "t-SNE: finding neighbours")
    if ctx.graph is not None:
        indices, distances = ctx.graph(k, params.metric).first(k)
        affinities = affinity.PerplexityBasedNN(knn_index=PrecomputedNeighbors(indices, distances),
                                                perplexity=perplexity, n_jobs=-1)
    else:  # built from the data so that ``place`` can query it
        affinities = affinity.PerplexityBasedNN(x, perplexity=perplexity, metric=params.metric, n_jobs=-1,
                                                random_state=ctx.seed, method="auto")
    warm = ctx.init is not None
    if warm:
        init = np.ascontiguousarray(ctx.init, dtype=np.float64)
    else:
        init = initialization.pca(x, n_components=ctx.n_components, random_state=ctx.seed)
    exaggeration_iter = 0 if warm else TSNE_EXAGGERATION_ITER
    limit = min(params.n_iter, TSNE_WARM_ITER) if warm else params.n_iter
    total = exaggeration_iter + limit
    every = 10
    state = {"done": 0, "errors": [], "stopped": False, "converged": False}

    def callback(iteration: int, error: float, embedding: np.ndarray) -> bool:
        state["done"] += every
        done = state["done"]
        if ctx.on_frame is not None:
            ctx.on_frame(np.asarray(embedding), done, total)
        # Progress by phase, in the user's terms: the n_iter slider counts the iterations after early
        # exaggeration, so that phase is counted apart rather than folded into a larger total.
        if done <= exaggeration_iter:
            step = (done, exaggeration_iter, f"t-SNE: early exaggeration, iteration {done} of {exaggeration_iter}")
        else:
            step = (done - exaggeration_iter, limit,
                    f"t-SNE: iteration {done - exaggeration_iter} of at most {limit} (n_iter), KL {error:.3f}")
        if ctx.progress is not None and ctx.progress(*step):
            state["stopped"] = True
            return True
        if done > exaggeration_iter:
            errors = state["errors"]
            errors.append(error)
            # Converged: the KL divergence improved by less than the tolerance over 50 iterations.
            if len(errors) > 5 and errors[-6] - errors[-1] < TSNE_TOLERANCE * errors[-1]:
                state["converged"] = True
                return True
        return False

    # 2-D from 3,500 points: FFT-accelerated gradients with two interpolation intervals per unit (as
    # accurate here as one, measured, and 2-3x faster once the map has spread out). Fewer points, and
    # 3-D (FFT is 1-2-D only): Barnes-Hut (the demo's 1,797 points: 4.3 s against 6.7 s; 5,000: 11.5 s
    # against 8.6 s, docs/benchmarks.md).
    if ctx.n_components <= 2 and n >= FFT_FROM:
        method = {"negative_gradient_method": "fft", "ints_in_interval": 2}
    else:
        method = {"negative_gradient_method": "bh"}
    embedding = TSNEEmbedding(init, affinities, n_jobs=-1, random_state=ctx.seed, callbacks=callback,
                              callbacks_every_iters=every, **method)
    rate = params.learning_rate or "auto"
    try:
        if exaggeration_iter:
            # openTSNE returns (rather than raises) when a callback stops this phase
            embedding = embedding.optimize(exaggeration_iter, exaggeration=params.early_exaggeration,
                                           momentum=0.5, learning_rate=rate)
        if not state["stopped"]:
            embedding = embedding.optimize(limit, momentum=0.8, learning_rate=rate)
    except OptimizationInterrupt as stop:
        embedding = stop.final_embedding
    ran = max(0, state["done"] - exaggeration_iter)  # iterations after early exaggeration: what n_iter counts
    if state["stopped"]:
        ctx.partial = True
        where = (f"iteration {state['done']} of {exaggeration_iter} of early exaggeration"
                 if state["done"] <= exaggeration_iter else f"iteration {ran} of at most {limit}")
        ctx.notes.append(f"Stopped at {where}; the map is partial.")
    elif state["converged"]:
        ctx.details.append(f"Converged after {ran} of at most {limit} iterations (n_iter {params.n_iter}"
                           + (f", after {exaggeration_iter} of early exaggeration" if exaggeration_iter else "")
                           + f"; KL divergence {state['errors'][-1]:.3f}).")
    else:
        ctx.details.append(f"Ran all {limit} iterations" + (f" after {exaggeration_iter} of early exaggeration"
                                                            if exaggeration_iter else "") + ".")
    if warm:
        capped = f" and at most {limit} iterations (n_iter is {params.n_iter})" if limit < params.n_iter else ""
        ctx.details.append("Started from the previous map, so it stays recognisable: no early exaggeration"
                           f"{capped} (ask for a fresh start to drop that).")
    return np.asarray(embedding), embedding


def _place_tsne(model: Any, x: np.ndarray, ctx: Context) -> np.ndarray:
    report(ctx.progress, 0, 1, f"t-SNE: placing {len(x):,} more points")
    # the fit's callbacks (progress, frames, the convergence stop) are not the placement's
    model.gradient_descent_params["callbacks"] = None
    return np.asarray(model.transform(x))


# -------------------------------------------------------------------------------------------- UMAP

def import_umap():
    """umap-learn, with numba's compiled code cached under ``$EMBEDVIZ_HOME/numba`` so that only the
    first process on a machine pays the compilation (numba reads the variable when first imported)."""
    import os

    from embedviz.layout import layout

    os.environ.setdefault("NUMBA_CACHE_DIR", str(layout().numba))
    import umap

    _cache_compiled_code()
    return umap


def _cache_compiled_code() -> None:
    """Let numba cache every compiled umap-learn function on disk, not only those marked ``cache=True``.

    A second process otherwise still spends about 12 s compiling the layout and graph functions
    (measured here with cProfile). ``enable_caching`` is numba's own switch for a dispatcher.
    """
    import sys

    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    for name, module in list(sys.modules.items()):
        if not (name.startswith("umap.") or name.startswith("pynndescent.")) or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache):
                try:
                    value.enable_caching()
                except Exception as exc:  # noqa: BLE001  numba's reasons vary by version; it compiles as before
                    log.debug("numba cannot cache %s.%s: %s", name, getattr(value, "__name__", "?"), exc)


class _Epochs:
    """A file for umap-learn's tqdm bar (whose format we set to ``"done/total"``): each write is read
    back as epochs done and passed to ``on_epoch(done, total)``. umap-learn has no other progress hook."""

    _DONE = re.compile(r"(\d+)/(\d+)")

    def __init__(self, on_epoch: Callable[[int, int], None]) -> None:
        self.on_epoch = on_epoch

    def write(self, text: str) -> int:
        found = self._DONE.findall(text)
        if found:
            self.on_epoch(int(found[-1][0]), int(found[-1][1]))
        return len(text)

    def flush(self) -> None:
        pass


def _epoch_bar(ctx: Context, before: int = 0, total: int | None = None) -> dict[str, Any]:
    """``tqdm_kwds`` that report umap-learn's layout epochs to ``ctx.progress`` (``before`` epochs done
    already, of ``total`` in all when the layout runs in two stages)."""

    def on_epoch(done: int, stage_total: int) -> None:
        everything = total or stage_total
        if ctx.progress is not None:
            ctx.progress(before + done, everything, f"UMAP: layout, epoch {before + done} of {everything}")

    return {"disable": ctx.progress is None, "file": _Epochs(on_epoch), "bar_format": "{n}/{total}",
            "mininterval": 0.25, "ascii": True, "leave": True}  # leave: the last write is "total/total"


def _fit_umap(x: np.ndarray, params: UMAPParams, ctx: Context) -> tuple[np.ndarray, Any]:
    n = x.shape[0]
    if params.n_neighbors >= n:
        ctx.notes.append(f"n_neighbors {params.n_neighbors} is too large for {n:,} points; used {n - 1}.")
        params = replace(params, n_neighbors=n - 1)
    # Phases without steps are reported with nothing done (no time left is claimed for them); the
    # layout, where the time goes, reports its epochs.
    report(ctx.progress, 0, 1, "UMAP: loading umap-learn (its first use on a machine compiles for up to a minute)")
    umap = import_umap()
    options: dict[str, Any] = dict(n_components=ctx.n_components, n_neighbors=params.n_neighbors,
                                   min_dist=params.min_dist, spread=params.spread, densmap=params.densmap,
                                   metric=params.metric, random_state=ctx.seed)
    if gpu_backend() == "cuml" and ctx.init is None and ctx.full and not params.densmap:
        import cuml

        report(ctx.progress, 0, 1, "UMAP on the GPU (cuML)")
        coords = np.asarray(cuml.UMAP(**{k: v for k, v in options.items() if k != "densmap"}).fit_transform(x))
        ctx.backend = "cuML on the GPU"
        return coords, None
    ctx.backend = "umap-learn"
    if ctx.graph is not None:
        report(ctx.progress, 0, 1, "UMAP: finding neighbours")
        indices, distances = ctx.graph(params.n_neighbors - 1, params.metric).first(params.n_neighbors - 1)
        # umap-learn's own graph lists each point first, at distance 0.
        own = np.arange(n, dtype=np.int64)[:, None]
        options["precomputed_knn"] = (np.hstack([own, indices]), np.hstack([np.zeros_like(own, np.float32), distances]))

    def run(**extra):
        with warnings.catch_warnings():
            # umap warns that a seed forces one thread (a note says so) and that a graph
            # without its search index cannot place new points (sampled fits build their own).
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
            model = umap.UMAP(**options, **extra)
            return model.fit_transform(x), model

    report(ctx.progress, 0, 1, "UMAP: fuzzy graph and spectral start, then the layout")
    if ctx.init is None:
        coords, model = run(tqdm_kwds=_epoch_bar(ctx))
    else:
        # From the previous map: a short stage gives a first frame of the new layout, then the
        # rest refines it at a gentler learning rate, so the map moves but stays recognisable.
        first, last = UMAP_WARM_EPOCHS
        coords, model = run(init=np.asarray(ctx.init, dtype=np.float64), n_epochs=first,
                            tqdm_kwds=_epoch_bar(ctx, 0, first + last))
        if ctx.on_frame is not None:
            ctx.on_frame(coords, first, first + last)
        coords, model = run(init=np.asarray(coords, dtype=np.float64), n_epochs=last, learning_rate=0.5,
                            tqdm_kwds=_epoch_bar(ctx, first, first + last))
        ctx.details.append("Started from the previous map, so it stays recognisable (ask for a fresh start to "
                           "drop that).")
    report(ctx.progress, 1, 1, "UMAP done")
    ctx.details.append("A fixed seed makes UMAP reproducible but single-threaded.")
    return coords, model


def _place_umap(model: Any, x: np.ndarray, ctx: Context) -> np.ndarray:
    report(ctx.progress, 0, 1, f"UMAP: placing {len(x):,} more points")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return model.transform(x)


# ---------------------------------------------------------------------------------------- As given

def _fit_given(x: np.ndarray, params: GivenParams, ctx: Context) -> tuple[np.ndarray, Any]:
    """Coordinates made elsewhere (Metascatter's X-/Y-Coord, a 2-D or 3-D array): shown as they are."""
    if x.shape[1] not in (2, 3):
        raise ReducerError(f"These features have {x.shape[1]} dimensions, not 2 or 3, so they are not map "
                           "coordinates; choose PCA, t-SNE or UMAP.")
    if x.shape[1] != ctx.n_components:
        raise ReducerError(f"The given coordinates are {x.shape[1]}-D; choose {x.shape[1]}-D.")
    report(ctx.progress, 1, 1, "given coordinates")
    ctx.notes.append("The coordinates are the ones given with the data; nothing was reduced.")
    return x.copy(), None


REDUCERS: dict[str, Reducer] = {
    "pca": Reducer("pca", "PCA", PCAParams, _fit_pca, _place_pca),
    "tsne": Reducer("tsne", "t-SNE", TSNEParams, _fit_tsne, _place_tsne, neighbour_based=True),
    "umap": Reducer("umap", "UMAP", UMAPParams, _fit_umap, _place_umap, neighbour_based=True),
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
