"""Reduce-page controls beyond the method's own sliders: warm or fresh start, and fitting on a sample
with an estimate of what the map will cost before any heavy work starts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ..figures import MapStyle, is_categorical, scatter_figure
from ..large import density_layer, plan
from ..reducers import Embedding, estimate_seconds
from ..render import point_colours
from ..store import FeatureSet
from ..filters import describe_filter
from .widgets import plain
from .state import clear_map_filters, default_sample, map_filters, reducer_settings

__all__ = ["size_controls", "map_filters_note", "preview_figure"]

#: Above this many points the page suggests fitting on a sample.
SUGGEST_SAMPLE = 50_000


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def size_controls(features: FeatureSet) -> None:
    """Fresh-start and sample widgets, and the number of points with an estimate of the time."""
    n, dim = features.features.shape
    default_sample(features)
    settings = reducer_settings()
    method = settings["method"]
    if method == "precomputed":
        return
    if method != "pca":
        st.toggle("Start from the previous map", key="ev_warm",
                  help="Keeps the picture recognisable when you move a slider; turn off for a fresh start.")
    sample = None
    if n > 20:
        st.toggle("Fit on a sample, place the rest", key="ev_sample_on",
                  help="Fits the map on fewer points and places the others with the method's transform.")
        if st.session_state.get("ev_sample_on"):
            if not 10 <= st.session_state.get("ev_sample_size", 0) < n:
                st.session_state["ev_sample_size"] = min(10_000, n // 2)
            sample = st.number_input("Points to fit on", 10, n - 1, step=1000, key="ev_sample_size")
            columns = [c for c in features.samples.columns
                       if c not in ("sample_id", "path") and is_categorical(features.samples[c])
                       and features.samples[c].nunique() <= 1000]
            if st.session_state.get("ev_stratify") not in ["(none)", *columns]:
                st.session_state["ev_stratify"] = "(none)"
            st.selectbox("Stratified by", ["(none)", *columns], key="ev_stratify",
                         help="Each value keeps its share of the sample (and at least one point).")
    warm = bool(st.session_state.get("ev_warm", True)) and st.session_state.get("previous_map") is not None
    seconds = estimate_seconds(method, n, dim, settings["params"], n_components=settings["n_components"],
                               sample=sample, warm=warm)
    st.caption(f"{n:,} points × {dim:,} dimensions · a new map takes about {_duration(seconds)} on a "
               "2-core machine (less on a GPU or more cores).")
    if n > SUGGEST_SAMPLE and sample is None and method != "pca":
        st.caption(f"At {n:,} points, fitting on a sample of 20,000 and placing the rest is much faster.")


def map_filters_note() -> None:
    """Say which filters made the map's points, with a way back to all points."""
    active = map_filters()
    if not active:
        return
    said = "; ".join(plain(describe_filter(f)) for f in active)  # column names and values: users'
    st.info(f"This map is made from only the points kept by: {said}.", icon=":material/filter_alt:")
    st.button("Map all points again", on_click=clear_map_filters, key="map_all_points")


def preview_figure(features: FeatureSet, embedding: Embedding) -> tuple[go.Figure, str | None]:
    """The map under the sliders, coloured by label; a large one as the Explore page draws it (a
    sample of points over a picture of all), with the sentence that says so."""
    samples = features.samples
    style = MapStyle(color="label" if "label" in samples.columns else None)
    coords = embedding.coords
    large = plan(np.ones(len(samples), dtype=bool), embedding.n_components)
    if large is None:
        return scatter_figure(coords, samples, style), None
    underlay = None
    if large.layer:
        held = st.session_state.get("reduce_layer")
        if held is None or held[0] != embedding.key:
            held = (embedding.key, density_layer(coords, point_colours(samples, style),
                                                 np.ones(len(samples), dtype=bool), radius=2))
            st.session_state["reduce_layer"] = held
        underlay = held[1]
    return scatter_figure(coords, samples, style, drawn=large.drawn, underlay=underlay), large.describe()
