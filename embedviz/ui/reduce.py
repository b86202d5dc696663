"""Reduce-page controls beyond the method's own sliders: warm or fresh start, fitting on a sample
with an estimate of what the map will cost before any heavy work starts, the progress while it is
made, the time the user waited, and what a slider move changed."""

from __future__ import annotations

import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from embedviz.data.featureset import FeatureSet
from embedviz.explore.figures import MapStyle, is_categorical, scatter_figure
from embedviz.explore.filters import describe_filter
from embedviz.explore.large import density_layer, plan
from embedviz.explore.render import point_colours
from embedviz.maps.quality import MapMove, map_move, quality_seconds
from embedviz.maps.reducers import REDUCERS, Embedding, estimate_seconds, param_specs
from embedviz.ui.choices import reducer_settings
from embedviz.ui.map_settings import clear_map_filters, default_sample, map_filters
from embedviz.ui.widgets import plain

__all__ = ["size_controls", "map_filters_note", "preview_figure", "how_made", "move_note"]

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
    previous = st.session_state.get("previous_map")  # a map of these very features to start from
    warm = bool(st.session_state.get("ev_warm", True)) and previous is not None and previous[0] == features.key
    seconds = estimate_seconds(method, n, dim, settings["params"], n_components=settings["n_components"],
                               sample=sample, warm=warm) + quality_seconds(n, dim)
    what = "map from the previous one" if warm and method != "pca" else "new map"
    st.caption(f"{n:,} points × {dim:,} dimensions · a {what} takes about {_duration(seconds)} on a "
               "2-core machine, measuring how faithful it is included (less on a GPU or more cores).")
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


def preview_figure(features: FeatureSet, embedding: Embedding,
                   move: MapMove | None = None) -> tuple[go.Figure, str | None]:
    """The map under the sliders, coloured by label (or by how far each point moved, when the user
    asked); a large one as the Explore page draws it (a sample of points over a picture of all),
    with the sentence that says so."""
    samples, color = _preview_samples(features, move)
    style = MapStyle(color=color)
    coords = embedding.coords
    large = plan(np.ones(len(samples), dtype=bool), embedding.n_components)
    if large is None:
        return scatter_figure(coords, samples, style), None
    underlay = None
    if large.layer:
        held = st.session_state.get("reduce_layer")
        if held is None or held[0] != (embedding.key, color):
            held = ((embedding.key, color), density_layer(coords, point_colours(samples, style),
                                                 np.ones(len(samples), dtype=bool), radius=2))
            st.session_state["reduce_layer"] = held
        underlay = held[1]
    return scatter_figure(coords, samples, style, drawn=large.drawn, underlay=underlay), large.describe()


def how_made(embedding: Embedding, started: float) -> str:
    """How the map on screen came to be, with the time the user waited for it: from the start of the
    page run that made it to the map drawn (neighbours, affinities, the optimisation and measuring
    its faithfulness), remembered for later runs of the page."""
    if embedding.partial:
        return "stopped early"
    if embedding.from_cache:
        return "from cache"
    waits = st.session_state.setdefault("map_waits", {})
    if st.session_state.get("map_made") == embedding.key:
        st.session_state.pop("map_made")
        waits[embedding.key] = time.perf_counter() - started
    waited = waits.get(embedding.key)
    if waited is None:  # made on another page: only the reducer's own time is known
        return f"computed in {embedding.seconds:.1f} s"
    return f"made in {waited:.1f} s, {embedding.seconds:.1f} s of it the reducer itself"


def _scale(embedding: Embedding) -> int:
    """The number of neighbours the map's parameters act on: about the perplexity for t-SNE (the
    effective number of neighbours), ``n_neighbors`` for UMAP, else 10."""
    if embedding.method == "tsne":
        return int(round(embedding.params.get("perplexity", 30)))
    if embedding.method == "umap":
        return int(embedding.params.get("n_neighbors", 15))
    return 10


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _changes(before: Embedding, after: Embedding) -> str:
    """``"perplexity 30 → 50"``: the settings that differ between two maps."""
    if before.method != after.method:
        return f"{REDUCERS[before.method].label} → {REDUCERS[after.method].label}"
    parts = [f"{spec.name} {_number(before.params.get(spec.name))} → {_number(after.params.get(spec.name))}"
             for spec in param_specs(REDUCERS[after.method].params_class)
             if before.params.get(spec.name) != after.params.get(spec.name)]
    if before.random_state != after.random_state:
        parts.append(f"seed {before.random_state} → {after.random_state}")
    return ", ".join(parts) or "a fresh start"


def move_note(features: FeatureSet, embedding: Embedding) -> MapMove | None:
    """What the last slider move changed, under the map: how far the points moved (aligned) and the
    neighbourhoods kept at the scale the parameter acts on, before → after; with a toggle that
    colours the map by how far each point moved. ``None`` when there was no comparable move."""
    held = st.session_state.get("map_before")
    if held is None or held[0] != features.key or embedding.partial:
        return None
    before: Embedding = held[2]
    if before.key == embedding.key or before.coords.shape != embedding.coords.shape:
        return None
    k = _scale(embedding)
    cached = st.session_state.get("map_move")
    if cached is not None and cached[:3] == (before.key, embedding.key, k):
        move = cached[3]
    else:
        with st.spinner("Comparing the map with the one before the move"):
            move = map_move(features.features, before.coords, embedding.coords, k)
        st.session_state["map_move"] = (before.key, embedding.key, k, move)
    st.caption(f"What the move changed ({_changes(before, embedding)}): {move.summary()}.")
    st.toggle("Colour the map by how far each point moved", key="reduce_color_moved",
              help="moved: each point's distance from where it was before the move, after aligning the two maps, "
                   "as a share of the map's spread.")
    return move


def _preview_samples(features: FeatureSet, move: MapMove | None) -> tuple:
    """The samples table the preview is drawn from, with ``moved`` when the user asked to see it."""
    if move is None or not st.session_state.get("reduce_color_moved"):
        return features.samples, "label" if "label" in features.samples.columns else None
    return features.samples.assign(moved=move.moved), "moved"
