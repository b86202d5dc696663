"""What the Explore page's parts share in session state: the named sets, the clusters found, the
selection kept across a recolouring, the colours chosen, and work remembered across reruns."""

from __future__ import annotations

import streamlit as st

from embedviz.maps.clusters import Clustering
from embedviz.ui.maps import MapView

__all__ = ["SETS", "CLUSTERS", "COLOURS", "CONFUSION", "memo", "set_column", "clusters_for",
           "confusion_cells"]


SETS = "explore_sets"  # {name: [sample_id, ...]}: named selections, kept for the session


CLUSTERS = "explore_clusters"  # (identity of what was clustered, Clustering, _Scope of the points clustered)


# (map key, sample ids) selected when "Find clusters" recoloured the map (a new chart)


COLOURS = "explore_colours"  # {column: {category: "#rrggbb"}}: colours the user chose


CONFUSION = "confusion_map"  # the confusion matrix chart's selection


def memo(name: str, key: object, make):
    """``make()`` once per ``(name, key)`` in this session: work over every row (a million of them)
    that a selection's rerun should not redo."""
    held: dict = st.session_state.setdefault("explore_memo", {})
    if (name, key) not in held:
        if len(held) > 32:
            held.clear()
        held[(name, key)] = make()
    return held[(name, key)]


def set_column(name: str) -> str:
    return f"set: {name}"


def clusters_for(view: MapView) -> Clustering | None:
    held = st.session_state.get(CLUSTERS)
    if held is None:
        return None
    identity, clustering, _ = held
    current = view.features.key if clustering.space == "features" else view.embedding.key
    return clustering if identity == current and len(clustering.names) == len(view.samples) else None


def confusion_cells() -> list[tuple[str, str]]:
    event = st.session_state.get(CONFUSION)
    points = ((event or {}).get("selection") or {}).get("points") or []
    return [(str(p["customdata"][0]), str(p["customdata"][1])) for p in points
            if isinstance(p.get("customdata"), (list, tuple)) and len(p["customdata"]) == 2]

