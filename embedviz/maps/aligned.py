"""Reading Compare's aligned maps (see :mod:`embedviz.maps.compare`): which sets are paired, each set's
map, each point's path through the sets, and the points whose neighbourhood moved most."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pairs", "coords", "paths", "moved_most"]


def pairs(n: int) -> list[tuple[int, int]]:
    """Consecutive pairs of ``n`` sets (``overlap_<a>_<b>`` columns), 0-based."""
    return [(i, i + 1) for i in range(n - 1)]


def coords(maps: pd.DataFrame, i: int) -> np.ndarray:
    """The ``i``-th set's aligned map (0-based)."""
    return maps[[f"{i + 1}_x", f"{i + 1}_y"]].to_numpy()


def paths(maps: pd.DataFrame, rows: np.ndarray, n: int) -> np.ndarray:
    """Each of ``rows``' places in every set's aligned map: points x sets x 2."""
    return np.stack([coords(maps, i)[rows] for i in range(n)], axis=1)


def moved_most(samples: pd.DataFrame, overlap: np.ndarray, count: int = 24) -> tuple[pd.DataFrame, float]:
    """The ``count`` points whose neighbourhood overlap is lowest (ties in row order), and the median overlap."""
    return samples.iloc[np.argsort(overlap, kind="stable")[:count]], float(np.median(overlap))
