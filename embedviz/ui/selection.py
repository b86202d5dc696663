"""The Explore page's selection: the points picked on the map (or carried by a link), their images, the
Point page's link for the first of them, and named sets."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from embedviz.explore.export import (
    selection_table,
    to_csv,
)
from embedviz.explore.selection import rows_for_ids
from embedviz.ui.explore_state import SETS
from embedviz.ui.maps import MapView
from embedviz.ui.session import DEFAULTS
from embedviz.ui.share import linked_ids, set_linked_ids
from embedviz.ui.widgets import gallery, plain

__all__ = ["linked_selection", "selection_section"]


def linked_selection(event: Any, coords: np.ndarray, mask: np.ndarray,
                     samples: pd.DataFrame) -> tuple[np.ndarray, str | None]:
    """The selected rows: those selected on the map (the map keeps them through a new colouring),
    else those a link carried (until the user selects something); the selection goes into the
    address. Returns the rows and a note when the selection is too large for the link."""
    from embedviz.explore.selection import positions_for_ids, selected_rows

    rows = selected_rows(event, coords, mask)
    if len(rows):
        st.session_state.pop("_linked_sel", None)
    elif linked_ids():
        rows = positions_for_ids(samples, linked_ids())
        rows = rows[mask[rows]]
    ids = samples["sample_id"].astype(str).iloc[rows].tolist() if len(rows) else []
    return rows, set_linked_ids(ids)


def selection_section(view: MapView, samples: pd.DataFrame, rows: np.ndarray) -> None:
    """The selected points' images, saving them as a named set, and the sets made so far."""
    selected = samples.iloc[rows]
    st.subheader(f"Selection · {len(selected):,} image{'' if len(selected) == 1 else 's'}")
    if len(selected):
        first = str(selected["sample_id"].iloc[0])
        # a link, not a button and st.switch_page: the Point page's widgets are bound to the address,
        # and the link sets its point the way a shared link would
        run = st.session_state.get("current_run")
        st.page_link("pages/5_Point.py", label="Look closer at the first selected point: its nearest neighbours in "
                     "feature space", icon=":material/center_focus_strong:",
                     query_params={"ev_point": first, **({"run": run.id} if run is not None else {}),
                                   **_point_settings()})
        name_col, save_col, down_col = st.columns([2, 1, 2])
        name = name_col.text_input("Name", key="explore_set_name", placeholder="a name for this selection",
                                   label_visibility="collapsed")
        if save_col.button("Save as a set", icon=":material/bookmark_add:"):
            _save_set(name, selected["sample_id"].astype(str).tolist())
        down_col.download_button("Download the selected ids and paths (CSV)",
                                 lambda: to_csv(selection_table(selected)), file_name="selection.csv",
                                 mime="text/csv", on_click="ignore")
    gallery(selected, view.collection.root, key="selection")
    _sets_list(view, samples)


def _save_set(name: str, ids: list[str]) -> None:
    name = re.sub(r"\s+", " ", name).strip()
    if not name:
        st.error("Give the set a name first (e.g. 'horses among dogs').")
        return
    if len(name) > 60:
        st.error("A set's name can have at most 60 characters.")
        return
    sets = st.session_state.setdefault(SETS, {})
    sets[name] = ids
    st.toast(f"Saved {len(ids):,} points as the set {plain(repr(name))}.")
    st.rerun()  # the set's column shows in the colour and filter lists


def _sets_list(view: MapView, samples: pd.DataFrame) -> None:
    sets: dict[str, list[str]] = st.session_state.get(SETS, {})
    if not sets:
        return
    st.markdown("**Saved sets** (each is also a column to colour or filter by: `set: NAME`)")
    if st.session_state.get("ev_show_set") not in ["(none)", *sets]:
        st.session_state["ev_show_set"] = "(none)"
    st.selectbox("Ring a set on the map", ["(none)", *sets], key="ev_show_set")
    for name, ids in list(sets.items()):
        rows = rows_for_ids(samples, ids)
        left, mid, right = st.columns([3, 2, 1])
        left.text(f"{name}: {len(rows):,} points" + ("" if len(rows) == len(ids) else
                                                     f" here ({len(ids) - len(rows):,} are not in this data)"))
        mid.download_button("Ids and paths (CSV)", lambda rows=rows: to_csv(selection_table(rows)),
                            file_name=f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.csv", mime="text/csv",
                            on_click="ignore", key=f"explore_set_csv_{name}")
        if right.button("Delete", key=f"explore_set_delete_{name}"):
            del sets[name]
            st.rerun()


def _point_settings() -> dict[str, str]:
    """The Point page's settings the user changed earlier in this session, for the link to carry: one
    the address lacks would be added on arrival, a second history entry that Back would land on."""
    return {key: str(st.session_state[key]) for key in ("ev_point_k", "ev_point_metric")
            if key in st.session_state and st.session_state[key] != DEFAULTS[key]}

