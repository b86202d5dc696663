"""Filter widgets: the user picks columns, each gets the widget its kind calls for."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..figures import natural_order
from ..filters import CategoryFilter, Filter, RangeFilter, TextFilter, column_kind

__all__ = ["filter_widgets"]

_HIDDEN = ("sample_id",)


def filter_widgets(samples: pd.DataFrame) -> list[Filter]:
    """Draw the filter controls and return the filters they describe (combined with AND)."""
    filters: list[Filter] = []
    if "correct" in samples.columns and samples["correct"].notna().any():
        if st.toggle("Only the model's mistakes", key="ev_f_mistakes"):
            filters.append(CategoryFilter("correct", ("False",)))
    candidates = [c for c in samples.columns if c not in _HIDDEN]
    columns = st.multiselect("Filter on", candidates, key="ev_f_columns", placeholder="choose columns")
    for column in columns:
        kind = column_kind(samples[column])
        key = f"ev_f_{column}"
        if kind == "number":
            values = pd.to_numeric(samples[column], errors="coerce").dropna()
            low, high = float(values.min()), float(values.max())
            if low == high:
                st.caption(f"{column}: every value is {low:g}")
                continue
            current = st.session_state.get(key)
            if not (isinstance(current, tuple) and low <= current[0] <= current[1] <= high):
                st.session_state[key] = (low, high)  # seeded here, not as a default, so it survives page switches
            chosen = st.slider(column, low, high, key=key)
            filters.append(RangeFilter(column, *chosen))
        elif kind == "category":
            options = natural_order(samples[column].astype("string").fillna("(none)").unique())
            if not set(st.session_state.get(key, options)) <= set(options):
                st.session_state.pop(key)
            st.session_state.setdefault(key, options)
            chosen = st.multiselect(column, options, key=key)
            filters.append(CategoryFilter(column, tuple(chosen)))
        else:
            pattern = st.text_input(f"{column} contains", key=key)
            regex = st.checkbox("regular expression", key=f"{key}_re")
            if pattern:
                filters.append(TextFilter(column, pattern, regex))
    return filters
