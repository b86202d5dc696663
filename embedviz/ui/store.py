"""The feature store's size, and a way to clear it."""

from __future__ import annotations

import streamlit as st

from ..store import FeatureStore
from .state import clear_store
from .widgets import guard

__all__ = ["store_panel"]


def store_panel() -> None:
    store = FeatureStore()
    with st.expander(f"Feature store: {store.size_bytes() / 2**20:,.1f} MiB in {store.root}"):
        st.caption("Every extraction is kept here, keyed by the images, weights, architecture, preprocessing, "
                   "layer and pooling, so nothing is computed twice. Clearing it frees the disk; features are "
                   "then extracted again when needed.")
        sure = st.checkbox("Yes, delete every stored feature set")
        if st.button("Clear the feature store", disabled=not sure):
            with guard(stop=False):
                freed = clear_store()
                st.success(f"Freed {freed / 2**20:,.1f} MiB.")
