"""The sidebar block every page shows: what data, model, layer and map are current."""

from __future__ import annotations

import streamlit as st

from ..reducers import REDUCERS
from .state import (
    runner,
    current_collection, current_layer, current_model, is_precomputed, model_label, precomputed_features, reducer_settings,
)

__all__ = ["sidebar_summary", "jobs_panel"]


def sidebar_summary() -> None:
    """A few lines on the current choice; errors here are left to the page to report."""
    try:
        collection = current_collection()
        if is_precomputed():
            made = precomputed_features()
            dim = made.features.shape[1]
            source = (f"**Source** a map made elsewhere, {dim}-D coordinates  \n" if made.manifest.get("given_coordinates")
                      else f"**Features** made elsewhere, {dim} dimensions  \n")
        else:
            model = current_model()
            source = f"**Model** {model_label(model)}  \n**Layer** `{current_layer(model)}`  \n"
    except Exception:  # the page's own guard shows the message
        return
    settings = reducer_settings()
    with st.sidebar:
        st.caption("Current")
        st.markdown(
            f"**Data** {collection.name} · {len(collection):,} {'points' if is_precomputed() else 'images'}  \n"
            + source +
            f"**Map** {REDUCERS[settings['method']].label}, {settings['n_components']}-D, seed {settings['random_state']}"
        )
    jobs_panel()


def jobs_panel() -> None:
    """Running and queued extractions, from any page, refreshed every two seconds while there are any."""
    if not runner().active():
        return

    @st.fragment(run_every=2)
    def live() -> None:
        if runner().active():
            st.caption("Extractions")
        for job in runner().active():
            st.progress(job.fraction, text=f"{job.label}: {job.describe()}")
            if st.button("Cancel", key=f"sidebar_cancel_{job.id}"):
                job.cancel()

    with st.sidebar:
        live()
