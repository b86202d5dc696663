"""How long a map takes: the estimate the page shows before any work starts, and the progress line
it shows while the work runs.

The estimate is calibrated on the 2-core x86_64 machine of docs/benchmarks.md (see :data:`_COST`);
the progress line names the phase the work is in and gives a time left only where the phase has
steps that measure it (t-SNE iterations, UMAP epochs), never for a phase it cannot see into.
"""

from __future__ import annotations

import re
import time
from typing import Any

from embedviz.maps.reducers.methods import (
    FFT_FROM,
    TSNE_EXAGGERATION_ITER,
    TSNE_WARM_ITER,
    UMAP_WARM_EPOCHS,
    umap_epochs,
)

__all__ = ["estimate_seconds", "MapProgress"]

#: Seconds per unit of work on the 2-core x86_64 machine of docs/benchmarks.md.
#:
#: Calibration (issue 17): each method run in a fresh process as the page runs it (cold neighbour
#: graph, numba's cache warm), on the demo's 64-dim CNN features (1,797 points) and on 10,000 points
#: resampled from them with noise, phase by phase from the progress reports. Other jobs kept the
#: machine's load at 7-9 during the runs, so wall times were scaled by the ratio of the demo t-SNE
#: there (42.5 s) to its quiet-machine time in docs/benchmarks.md (6.4 s): a factor of 6.6, which
#: also brings the 10,000-point t-SNE (101 s) and UMAP (70 s) to the quiet 13-15 s and 10.8 s there.
#: Quiet-equivalent seconds:
#:
#: - t-SNE 2-D, 1,797 (Barnes-Hut): neighbours and affinities 0.3, 750 iterations 6.1 (8 ms each);
#:   these features never met the convergence stop, so a fresh start is estimated at all iterations.
#: - t-SNE 2-D, 10,000 (FFT): neighbours and affinities 0.7, 250 exaggerated iterations 3.9, 500 more
#:   10.6 (19 ms each). t-SNE 3-D, 1,797: 10.8 for 750 iterations (14 ms each).
#: - UMAP 2-D, 10,000: loading 0.8, fuzzy graph and spectral start 3.4, 500 epochs 5.7 (one thread);
#:   1,797: 0.1 and 0.6.
#: - Faithfulness (:func:`embedviz.maps.quality.quality_seconds`): 0.3 at 1,797 points, 1.1 at 10,000.
#:
#: The old constants left out the affinities, UMAP's spectral start and the page's own work, and
#: assumed every point cost the same below 6,000 points: a perplexity move at 10,000 points was
#: estimated at 5 s and took 15.6 s in a user's browser (issue 17).
_COST = {
    "prepare": 3e-10,       # per point x input dimension (PCA to 50)
    "graph": 2e-9,          # per point x point, exact k-NN on the PCA-50 features (150 neighbours)
    "affinity": 5e-7,       # per point x neighbour (3 x perplexity), openTSNE's perplexity search
    "tsne_bh": 2.8e-6,      # per point x iteration, 2-D Barnes-Hut (below 3,500 points)
    "tsne_fft": 1.6e-6,     # per point x iteration, 2-D FFT (two intervals per unit)
    "tsne3": 6e-6,          # per point x iteration, 3-D Barnes-Hut
    "tsne_floor": 0.003,    # per iteration, whatever the size (threads, FFT grid)
    "umap": 6e-8,           # per point x neighbour x epoch, one thread (a seed fixes one)
    "umap_setup": 2e-4,     # per point: fuzzy graph and spectral start
    "umap_load": 1.0,       # loading umap-learn's numba cache in a new process
    "place_tsne": 1e-4,     # per placed point, openTSNE's transform
    "place_umap": 4e-4,     # per placed point, umap-learn's transform
    "umap_index": 40.0,     # umap-learn's own search index (a sampled fit needs one): mostly compilation
    "pca": 1e-9,            # per point x input dimension
    "page": 5e-5,           # per point: frames, the final figure and the run record on the page
}
#: From the previous map t-SNE usually converges within half of its (at most 300) iterations (docs:
#: about 80 of 300 for a perplexity move at 10,000 points); a fresh start is counted in full.
_TSNE_WARM_SHARE = 0.5


def estimate_seconds(method: str, n: int, dim: int, params: dict[str, Any] | None = None, *,
                     n_components: int = 2, sample: int | None = None, warm: bool = False) -> float:
    """About how long a map takes on the 2-core machine, the page's frames and figure included (the
    page adds :func:`embedviz.maps.quality.quality_seconds`), so that the page can say what a choice costs.

    Args:
        method: ``"pca"``, ``"tsne"``, ``"umap"`` or ``"precomputed"``.
        n: points in the map; dim: dimensions of their features.
        params: the method's parameter values (defaults where missing).
        n_components: 2 or 3.
        sample: fit on this many points and place the rest.
        warm: start from the previous map (t-SNE: no early exaggeration and at most 300 iterations).
    """
    params = params or {}
    fit_n = min(n, sample) if sample else n
    if method not in ("tsne", "umap"):
        return _COST["pca"] * n * dim if method == "pca" else 0.0
    seconds = _COST["prepare"] * n * dim + _COST["graph"] * fit_n * fit_n + _COST["page"] * n
    if method == "tsne":
        n_iter = params.get("n_iter", 500)
        iterations = _TSNE_WARM_SHARE * min(n_iter, TSNE_WARM_ITER) if warm else TSNE_EXAGGERATION_ITER + n_iter
        if n_components == 3:
            per_point = _COST["tsne3"]
        else:
            per_point = _COST["tsne_fft"] if fit_n >= FFT_FROM else _COST["tsne_bh"]
        k = 3 * params.get("perplexity", 30.0)
        seconds += _COST["affinity"] * fit_n * k
        seconds += (per_point * fit_n + _COST["tsne_floor"]) * iterations
    else:
        epochs = sum(UMAP_WARM_EPOCHS) if warm else umap_epochs(fit_n)
        seconds += _COST["umap_load"] + _COST["umap_setup"] * fit_n
        seconds += (_COST["umap"] * fit_n * params.get("n_neighbors", 15) * epochs
                    * (1.3 if n_components == 3 else 1))
    if sample and sample < n:
        seconds += _COST[f"place_{method}"] * (n - sample) + (_COST["umap_index"] if method == "umap" else 0)
    return seconds


class MapProgress:
    """Turns a reducer's ``(done, total, message)`` reports into a bar fraction and one line of text.

    A phase is a run of reports with the same total and the same words before the first number
    ("t-SNE: iteration ", "UMAP: layout, epoch "). Its rate is measured from its own first report,
    so a long phase before it (neighbours, UMAP's spectral start) does not make the time left look
    short or long; a phase with nothing done yet says what it is doing and claims no time left.
    """

    _WORDS = re.compile(r"^\D*")

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._phase: tuple[int, str] | None = None
        self._start = (0.0, 0)

    def update(self, done: int, total: int, message: str) -> tuple[float, str]:
        now = self._clock()
        phase = (total, self._WORDS.match(message).group(0))
        if phase != self._phase or done < self._start[1]:
            self._phase, self._start = phase, (now, done)
        fraction = min(done / total, 1.0) if total else 0.0
        began, first = self._start
        elapsed = now - began
        if done >= total or done <= first or elapsed < 0.5:
            return fraction, message
        left = (total - done) * elapsed / (done - first)
        bound = "at most " if "at most" in message else ""
        return fraction, f"{message} · {bound}{_seconds(left)} left"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.0f} min"
