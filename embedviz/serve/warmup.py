"""Compile UMAP's numba code once per machine, in a child process, when the server starts.

A fresh process pays about a minute of numba compilation the first time it runs UMAP. The
dashboard starts ``python -m embedviz.serve.warmup`` in the background at server start; the child
runs small UMAP fits through the same paths the app uses (a shared neighbour graph, and a fit on
a sample with points placed by ``transform``) so that numba's on-disk cache under
``$EMBEDVIZ_HOME/numba`` holds them, then leaves a marker and exits. The server process itself
compiles nothing (a compiling thread there could hold a lock while decode workers fork), and
the first user to pick UMAP only loads the cache. ``EMBEDVIZ_WARMUP=0`` turns it off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from embedviz import settings
from embedviz.layout import layout

__all__ = ["marker", "start", "warm"]


def marker() -> Path:
    """The file that says this machine's cache is warm for this umap-learn version."""
    from importlib.metadata import version

    return layout().warm_marker(version("umap-learn"))


def start() -> subprocess.Popen | None:
    """Start the warm-up child unless it is turned off or the cache is already warm."""
    if not settings.warmup() or marker().exists():
        return None
    return subprocess.Popen([sys.executable, "-m", "embedviz.serve.warmup"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def warm() -> None:
    import warnings

    import numpy as np

    from embedviz.maps.reducers import Sample, reduce

    warnings.filterwarnings("ignore")
    x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    reduce(x, "umap", {"n_neighbors": 10}, features_key="warmup")
    reduce(x, "umap", {"n_neighbors": 10}, sample=Sample(150))
    path = marker()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


if __name__ == "__main__":
    os.nice(10)  # background work: users' jobs come first
    warm()
