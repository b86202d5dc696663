"""The sidebar block every page shows: what data, model, layer and map are current."""

from __future__ import annotations

import streamlit as st

from ..reducers import REDUCERS
from .state import current_collection, current_layer, current_model, model_label, reducer_settings

__all__ = ["sidebar_summary"]


def sidebar_summary() -> None:
    """A few lines on the current choice; errors here are left to the page to report."""
    try:
        collection, model = current_collection(), current_model()
        layer = current_layer(model)
    except Exception:  # the page's own guard shows the message
        return
    settings = reducer_settings()
    with st.sidebar:
        st.caption("Current")
        st.markdown(
            f"**Data** {collection.name} · {len(collection):,} images  \n"
            f"**Model** {model_label(model)}  \n"
            f"**Layer** `{layer}`  \n"
            f"**Map** {REDUCERS[settings['method']].label}, {settings['n_components']}-D, seed {settings['random_state']}"
        )
