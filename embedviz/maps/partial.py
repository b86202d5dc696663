"""A map the user stopped before it finished, rebuilt from its last frame so it can be shown (and
continued) like any other."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from embedviz.maps.reducers.embedding import Embedding

__all__ = ["partial_embedding"]


def partial_embedding(token: str, frame: dict[str, Any], settings: dict[str, Any]) -> Embedding:
    """The map as it was at ``frame``, marked partial.

    Args:
        token: the map's settings as one string (what it is kept under); it and the step name the key.
        frame: the last frame: ``coords``, ``done`` and ``total`` steps, and for a fit on a sample the
            fitted ``rows`` of ``n`` points (the points not fitted yet wait at the sample's centre).
        settings: ``method``, ``params``, ``n_components`` and ``random_state`` of the map.
    """
    coords = np.asarray(frame["coords"])
    if frame.get("rows") is not None:
        full = np.tile(coords.mean(axis=0), (frame["n"], 1)).astype(coords.dtype)
        full[frame["rows"]] = coords
        coords = full
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return Embedding(coords, settings["method"], settings["params"], settings["n_components"],
                     settings["random_state"], 0.0,
                     (f"Stopped at step {frame['done']} of {frame['total']}: this map is partial. "
                      "Press Continue to finish it.",), key=f"partial-{digest}-{frame['done']}", partial=True)
