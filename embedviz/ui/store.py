"""The feature store's size, and a way to clear it (operators); everyone else sees their own share.

Walking a large store takes about a second per 100,000 files, so sizes are cached for a minute
and the store-wide ones are computed only for operators.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from embedviz.extract.store import FeatureStore
from embedviz.layout import layout
from embedviz.ui.auth import is_operator, require_operator, viewer
from embedviz.ui.housekeeping import clear_store
from embedviz.ui.runs import catalog
from embedviz.ui.widgets import guard, plain

__all__ = ["store_panel", "clear_feature_store", "tree_bytes", "own_usage", "MiB"]

MiB = 2**20


@st.cache_data(ttl=60, max_entries=64, show_spinner=False)
def tree_bytes(path: str) -> int:
    """Bytes in the files under ``path`` (a file: its size), cached for a minute."""
    root = Path(path)
    try:
        if root.is_file():
            return root.stat().st_size
    except OSError:
        return 0
    total = 0
    for p in root.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:  # removed while walking
            pass
    return total


def own_usage() -> tuple[int, int]:
    """(bytes the stored files of the viewer's runs take, bytes of this session's workspace)."""
    where = layout()
    features, maps = set(), set()
    for run in catalog().runs(viewer().id, mine_only=True):
        for key in (run.features_key, run.inputs.get("source_features")):
            if key:
                features.add(str(key))
        if run.inputs.get("map"):
            maps.add(str(run.inputs["map"]))
    runs = sum(tree_bytes(str(where.feature_set(key))) for key in sorted(features)) + \
        sum(tree_bytes(str(where.map_file(key))) for key in sorted(maps))
    workspace = st.session_state.get("workspace_id")
    used = tree_bytes(str(where.workspace(workspace))) if workspace else 0
    return runs, used


def clear_feature_store() -> int:
    """Delete every stored feature set, for an operator only (refused for anyone else, whatever
    calls it); returns the bytes freed."""
    require_operator("clear the feature store")
    freed = clear_store()
    tree_bytes.clear()
    return freed


def store_panel() -> None:
    """The store's size and path, and the button that clears it, for operators; the viewer's own
    share for everyone else."""
    if not is_operator():
        runs, workspace = own_usage()
        with st.expander(f"Feature store: your runs use {runs / MiB:,.1f} MiB"):
            st.caption("Every extraction is kept, keyed by the images, weights, architecture, preprocessing, layer "
                       "and pooling, so nothing is computed twice, for anyone. "
                       f"Your uploads in this session take {workspace / MiB:,.1f} MiB. Only the server's operators "
                       "can clear the store; delete your runs on the Runs page to free what only they use.")
        return
    store = FeatureStore()
    with st.expander(f"Feature store: {tree_bytes(str(store.root)) / MiB:,.1f} MiB in {plain(store.root)}"):
        st.caption("Every extraction is kept here, keyed by the images, weights, architecture, preprocessing, "
                   "layer and pooling, so nothing is computed twice. Clearing it frees the disk for everyone; "
                   "features are then extracted again when needed.")
        sure = st.checkbox("Yes, delete every stored feature set")
        if st.button("Clear the feature store", disabled=not sure):
            with guard(stop=False):
                freed = clear_feature_store()
                st.success(f"Freed {freed / MiB:,.1f} MiB.")
