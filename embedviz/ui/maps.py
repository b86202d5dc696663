"""The current map: its features (extracted if need be, filtered as the user chose), the map itself
(cached, warm-started from the previous one, drawn live while it is optimised and stoppable), how
faithful it is, and its run."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import streamlit as st

from embedviz.data.featureset import FeatureSet
from embedviz.data.images import ImageCollection
from embedviz.explore.figures import frame_figure
from embedviz.explore.subset import kept_features
from embedviz.maps.partial import partial_embedding
from embedviz.maps.quality import Faithfulness, faithfulness
from embedviz.maps.reducers import REDUCERS, Embedding, MapProgress, Sample, compute_embedding
from embedviz.maps.reducers.embedding import sample_rows
from embedviz.progress import ProgressCallback
from embedviz.ui.auth import viewer
from embedviz.ui.choices import (
    current_collection,
    feature_choice,
    is_precomputed,
    precomputed_features,
    reducer_settings,
    source_label,
    stored_by_key,
)
from embedviz.ui.jobs import runner, start_extraction, wait_for
from embedviz.ui.map_component import map_chart
from embedviz.ui.map_settings import map_filters, map_token, sample_choice, settle_method
from embedviz.ui.runs import note_map
from embedviz.ui.server import cluster_address

__all__ = ["require_features", "map_progress", "require_embedding", "map_quality", "MapView", "note_map_run",
           "current_map", "home_figure"]


def require_features() -> FeatureSet:
    """The current features: from the store, or extracted now by a background job while a progress
    bar waits (a job cancelled by the user is not restarted until they ask). When Explore's filters
    were chosen for the map, only the points they keep."""
    return kept_features(_all_features(), map_filters())


def _all_features() -> FeatureSet:
    if is_precomputed():
        return precomputed_features()
    *_, key = feature_choice()
    try:
        return stored_by_key(key)
    except KeyError:
        pass
    job = runner().get(key, viewer().id)
    if job is not None and job.status == "cancelled" and not st.session_state.pop("ev_resume", False):
        st.warning(f"Extraction was cancelled at {job.done:,} of {job.total:,} images; the finished part is kept.")
        if st.button("Resume extraction", type="primary"):
            st.session_state["ev_resume"] = True
            st.rerun()
        st.stop()
    wait_for(start_extraction())
    return stored_by_key(key)


@st.cache_resource(max_entries=16, show_spinner=False)
def _stored_embedding(features_key: str, settings_json: str, _features: FeatureSet, _init: Embedding | None,
                      _strata: np.ndarray | None) -> Embedding:
    """A map computed before, kept in memory so reruns do not re-read it; misses are not cached."""
    settings = json.loads(settings_json)
    settings.pop("init", None)
    sample = settings.pop("sample", None)
    return compute_embedding(_features.features, features_key=features_key, cache_only=True, init=_init,
                             sample=Sample(**sample) if sample else None, strata=_strata, **settings)


def _cluster_placer():
    """With a Ray cluster configured, points left out of a sample's fit are placed on it."""
    from embedviz.extract.ray_engine import ray_available
    from embedviz.maps.ray_placer import place_on_cluster

    address = cluster_address()

    return place_on_cluster(address) if address and ray_available() else None


@contextlib.contextmanager
def map_progress(label: str) -> Iterator[ProgressCallback]:
    """A progress bar that names the phase the reducer is in and gives the time left only where the
    phase's steps measure it (:class:`embedviz.maps.reducers.MapProgress`); removed when done."""
    bar = st.progress(0.0, text=label)
    tracker = MapProgress()

    def update(done: int, total: int, message: str) -> None:
        fraction, text = tracker.update(done, total, message)
        bar.progress(fraction, text=f"{label}: {text}")  # our own messages: numbers and method names

    try:
        yield update
    finally:
        bar.empty()


def require_embedding(features: FeatureSet, frames: Any = None) -> Embedding:
    """The map for the current reducer settings; computed under a progress bar when new.

    With ``frames`` (a placeholder) the map is drawn there while it is optimised and a Stop
    button keeps the map as it is. A re-run starts from the previous map of this session (same
    features, method and dimensions) unless the user asked for a fresh start; a map already made
    for these settings from a fresh start is reused rather than recomputed.
    """
    settle_method(features.features.shape[1])
    settings = reducer_settings()
    sample, strata = sample_choice(features)
    warm = bool(st.session_state.get("ev_warm", True))
    settings_json = map_token(features)
    token_settings = json.loads(settings_json)
    previous = st.session_state.get("previous_map")
    if previous is not None and previous[0] != features.key:
        previous = None
    if previous is not None and previous[1] == settings_json:
        return previous[2]
    init = previous[2] if previous is not None and warm else None
    stopped = st.session_state.get("map_stopped")
    if stopped is not None and stopped["settings"] == settings_json and stopped["features"] == features.key:
        return partial_embedding(settings_json, stopped, settings)
    for start in ([init, None] if init is not None else [None]):
        try:
            lookup = dict(settings, sample=token_settings["sample"], init=start.key if start else "")
            found = _stored_embedding(features.key, json.dumps(lookup, sort_keys=True), features, start, strata)
        except LookupError:
            continue
        if previous is not None:  # the map before this move, for what the move changed (ui.reduce)
            st.session_state["map_before"] = previous
        st.session_state["previous_map"] = (features.key, settings_json, found)
        return found
    label = REDUCERS[settings["method"]].label
    on_frame, stop_slot = None, None
    if frames is not None:
        stop_slot = st.empty()
        stop_slot.button("Stop and keep the map as it is", key="reduce_stop", icon=":material/stop_circle:")
        shown = {"at": 0.0}
        # a fit on a sample shows the sample's points while it runs, coloured by their own rows
        fit_rows = None if sample is None else sample_rows(len(features), sample, strata, settings["random_state"])
        frame_samples = features.samples if fit_rows is None else features.samples.iloc[fit_rows]
        every = max(0.5, len(frame_samples) / 20_000)

        if previous is not None:
            # the map on screen stays there until the first frame (a 2-D one while a 3-D map is made;
            # methods without frames show it until they finish)
            was = previous[2].n_components
            note = None if was == settings["n_components"] else \
                f"The {was}-D map, shown while the {settings['n_components']}-D map is computed"
            with frames:
                map_chart(frame_figure(previous[2].coords, features.samples, title=note), features.samples,
                          key=None, static=True)

        def on_frame(coords: np.ndarray, done: int, total: int) -> None:
            st.session_state["map_frame"] = {"settings": settings_json, "features": features.key, "coords": coords,
                                             "done": done, "total": total, "rows": fit_rows, "n": len(features)}
            if time.monotonic() - shown["at"] >= every:
                shown["at"] = time.monotonic()
                with frames:
                    map_chart(frame_figure(coords, frame_samples.reset_index(drop=True)), frame_samples, key=None,
                              static=True)
    with map_progress(f"Computing the {label} map") as progress:
        embedding = compute_embedding(features.features, features_key=features.key, progress=progress,
                                      on_frame=on_frame, init=init, sample=sample, strata=strata,
                                      placer=_cluster_placer() if sample is not None else None, **settings)
    st.session_state.pop("map_frame", None)
    if stop_slot is not None:
        stop_slot.empty()
    if not embedding.partial:
        if previous is not None:
            st.session_state["map_before"] = previous
        st.session_state["previous_map"] = (features.key, settings_json, embedding)
        if frames is not None:  # made in this run of the Reduce page, which reports the wait
            st.session_state["map_made"] = embedding.key
    return embedding


@st.cache_resource(max_entries=16, show_spinner="Measuring how faithful the map is")
def _quality(features_key: str, embedding_key: str, _features: FeatureSet, _embedding: Embedding) -> Faithfulness:
    labels = _features.samples["label"] if "label" in _features.samples.columns else None
    return faithfulness(np.asarray(_features.features), _embedding.coords, labels)


def map_quality(features: FeatureSet, embedding: Embedding) -> Faithfulness | None:
    """Trustworthiness, continuity, label agreement and per-point neighbourhood kept, once per map
    (``None`` for coordinates given with the data: there is nothing to compare them with)."""
    if embedding.method == "precomputed" or len(features) < 5:
        return None
    return _quality(features.key, embedding.key, features, embedding)


@dataclass(frozen=True)
class MapView:
    """Everything a page needs to draw the current map."""

    collection: ImageCollection
    features: FeatureSet
    embedding: Embedding
    quality: Faithfulness | None = None

    @property
    def samples(self):
        """The samples table, with each point's ``neighbourhood_kept`` when it was measured."""
        table = self.features.samples
        return table if self.quality is None else table.assign(neighbourhood_kept=self.quality.kept)


def note_map_run(features: FeatureSet, embedding: Embedding) -> None:
    """Record the map on screen as the viewer's run and put its id in the address."""
    if embedding.partial:
        return
    sample, _ = sample_choice(features)
    kept = " of the kept points" if map_filters() else ""
    title = f"{REDUCERS[embedding.method].label} {embedding.n_components}-D{kept}: {source_label()}"
    note_map(_all_features(), features, embedding, map_token(features), title, source_label(), sample,
                   map_filters())


def current_map() -> MapView:
    features = require_features()
    embedding = require_embedding(features)
    note_map_run(features, embedding)
    return MapView(current_collection(), features, embedding, map_quality(features, embedding))


@st.cache_resource(max_entries=8, show_spinner=False)
def _home_figure(embedding_key: str, features_key: str, color: str | None, _coords: np.ndarray,
                 _samples) -> "go.Figure":  # noqa: F821 - plotly type
    from embedviz.explore.figures import scatter_figure

    return scatter_figure(_coords, _samples, color, height=560)


def home_figure(view: MapView, color: str | None):
    """The Home page's map, made once per map and colouring for every session (building a plotly figure
    of a few thousand points is half of the page's run)."""
    return _home_figure(view.embedding.key, view.features.key, color, view.embedding.coords, view.features.samples)
