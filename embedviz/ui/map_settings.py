"""The map the user asked for, read from the widgets' state: reducer settings, the sample to fit on, the
filters chosen on Explore, and a map stopped part-way (kept until the user continues it)."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from embedviz.data.featureset import FeatureSet
from embedviz.maps.reducers import Sample, available_methods
from embedviz.maps.sampling import auto_sample, chosen_sample
from embedviz.ui.choices import reducer_settings
from embedviz.ui.session import DEFAULTS

__all__ = ["settle_method", "set_map_filters", "clear_map_filters", "map_filters", "default_sample", "sample_choice",
           "map_token", "stop_requested", "continue_map"]


def settle_method(dim: int) -> list[str]:
    """The reducers offered for features of ``dim`` dimensions ("precomputed" only for 2-D/3-D ones);
    a current method that does not fit them (a map's "As given" after switching to images) falls
    back to the default, on whichever page notices first."""
    methods = available_methods(dim)
    if st.session_state["ev_method"] not in methods:
        st.session_state["ev_method"] = DEFAULTS["ev_method"]
    return methods


def set_map_filters(filters: tuple) -> None:
    """Make maps of only the points these filters keep (a button's callback on Explore)."""
    st.session_state["map_filters"] = tuple(filters)
    st.session_state.pop("previous_map", None)  # another set of points: no warm start from the old map


def clear_map_filters() -> None:
    st.session_state.pop("map_filters", None)
    st.session_state.pop("previous_map", None)


def map_filters() -> tuple:
    """The filters applied before reducing (empty: every point is mapped)."""
    return tuple(st.session_state.get("map_filters", ()))


def default_sample(features: FeatureSet) -> None:
    """For features this large, start with a sample fit (once per feature set; the user may turn it off;
    see :func:`embedviz.maps.sampling.auto_sample`). Call before the sample widgets are drawn."""
    choice = auto_sample(len(features), features.samples.columns)
    if choice is None or st.session_state.get("_auto_sample") == features.key:
        return
    st.session_state["_auto_sample"] = features.key
    if st.session_state.get("ev_sample_on"):  # chosen already (by the user, or a link)
        return
    for key, value in choice.items():
        st.session_state[key] = value


def sample_choice(features: FeatureSet) -> tuple[Sample | None, np.ndarray | None]:
    """The sample the user asked to fit on (``None``: all points) and the column it is stratified by."""
    default_sample(features)
    state = st.session_state
    sample = chosen_sample(len(features), state.get("ev_method"), bool(state.get("ev_sample_on")),
                           state.get("ev_sample_size"), state.get("ev_stratify"), features.samples.columns)
    if sample is None or sample.stratify_by is None:
        return sample, None
    return sample, features.samples[sample.stratify_by].astype(str).to_numpy()


def map_token(features: FeatureSet) -> str:
    """The current reducer settings, sample and start choice as one string (what a map is kept under
    in this session, and what a link's run restores)."""
    sample, _ = sample_choice(features)
    token = dict(reducer_settings(), sample=sample.describe() if sample else None,
                 warm=bool(st.session_state.get("ev_warm", True)))
    return json.dumps(token, sort_keys=True)


def stop_requested(features: FeatureSet) -> bool:
    """Whether the user pressed Stop while a map was being made: the last frame becomes the map."""
    frame = st.session_state.get("map_frame")
    if not st.session_state.get("reduce_stop") or frame is None or frame["features"] != features.key:
        return False
    st.session_state["map_stopped"] = frame
    st.session_state.pop("map_frame", None)
    return True


def continue_map() -> None:
    """Forget a stopped map so that the next run finishes it."""
    st.session_state.pop("map_stopped", None)
