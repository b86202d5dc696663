"""Filter widgets: the user picks columns, each gets the widget its kind calls for."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from embedviz.data.classes import natural_order
from embedviz.explore.filters import (
    CategoryFilter,
    Filter,
    RangeFilter,
    TextFilter,
    TopKFilter,
    column_kind,
    prediction_columns,
)
from embedviz.ui.session import bound, seed_defaults
from embedviz.ui.widgets import plain

__all__ = ["filter_widgets"]

_HIDDEN = ("sample_id",)


def _model_filters(samples: pd.DataFrame) -> list[Filter]:
    """Filters on the model's answers: right or wrong, how confident, label among its top k."""
    filters: list[Filter] = []
    if "correct" in samples.columns and samples["correct"].notna().any():
        seed_defaults("ev_f_correct")
        answer = st.segmented_control("The model's answer", ["all", "correct", "wrong"], **bound("ev_f_correct"),
                                      required=True, format_func=str.capitalize)
        if answer != "all":
            filters.append(CategoryFilter("correct", ("True",) if answer == "correct" else ("False",)))
    if "confidence" in samples.columns and samples["confidence"].notna().any():
        current = st.session_state.get("ev_f_conf")
        if not (isinstance(current, tuple) and 0.0 <= current[0] <= current[1] <= 1.0):
            st.session_state["ev_f_conf"] = (0.0, 1.0)
        low, high = st.slider("Confidence", 0.0, 1.0, step=0.01, **bound("ev_f_conf"),
                              help="The model's probability for its top class.")
        if (low, high) != (0.0, 1.0):
            filters.append(RangeFilter("confidence", low, high))
    top = len(prediction_columns(samples))
    if top > 1 and "label" in samples.columns and "correct" in samples.columns:
        options = ["any"] + [f"{w} top {k}" for k in range(2, top + 1) for w in ("in", "not in")]
        if st.session_state.get("ev_f_topk") not in options:
            st.session_state["ev_f_topk"] = "any"
        choice = st.selectbox("Label among the model's most likely classes", options, **bound("ev_f_topk"),
                              help="\"not in top 5\": the true class is not even among the model's 5 best guesses.")
        if choice != "any":
            filters.append(TopKFilter(int(choice.rsplit(" ", 1)[1]), contains=not choice.startswith("not")))
    return filters


def filter_widgets(samples: pd.DataFrame) -> list[Filter]:
    """Draw the filter controls and return the filters they describe (combined with AND)."""
    filters: list[Filter] = _model_filters(samples)
    candidates = [c for c in samples.columns if c not in _HIDDEN]
    if "ev_f_columns" in st.session_state:  # columns of another page's table (clusters, sets, overlaps) drop out
        st.session_state["ev_f_columns"] = [c for c in st.session_state["ev_f_columns"] if c in candidates]
    # wrap: in a column Streamlit keeps the chips on one scrolling row, which showed 4 of 10 labels
    columns = st.multiselect("Filter on", candidates, placeholder="choose columns", **bound("ev_f_columns"), wrap=True)
    for column in columns:
        kind = column_kind(samples[column])
        key = f"ev_f_{column}"
        if kind == "number":
            values = pd.to_numeric(samples[column], errors="coerce").dropna()
            low, high = float(values.min()), float(values.max())
            if low == high:
                st.caption(f"{plain(column)}: every value is {low:g}")
                continue
            current = st.session_state.get(key)
            if not (isinstance(current, tuple) and low <= current[0] <= current[1] <= high):
                st.session_state[key] = (low, high)  # seeded here, not as a default, so it survives page switches
            chosen = st.slider(plain(column), low, high, **bound(key))
            filters.append(RangeFilter(column, *chosen))
        elif kind == "category":
            options = natural_order(samples[column].astype("string").fillna("(none)").unique())
            if not set(st.session_state.get(key, options)) <= set(options):
                st.session_state.pop(key)
            st.session_state.setdefault(key, options)
            chosen = st.multiselect(plain(column), options, **bound(key), wrap=True,
                                    placeholder="none chosen: no point is shown")
            filters.append(CategoryFilter(column, tuple(chosen)))
        else:
            pattern = st.text_input(f"{plain(column)} contains", **bound(key))
            regex = st.checkbox("regular expression", **bound(f"{key}_re"))
            if pattern:
                filters.append(TextFilter(column, pattern, regex))
    return filters
