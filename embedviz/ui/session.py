"""Session-state keys the pages share, and their first values (defined here once), and widgets bound
to the address.

Widget keys start with ``ev_`` and are kept across pages (see :func:`embedviz.ui.page.page_setup`).
A widget bound to a query parameter (Streamlit's ``bind="query-params"``) forgets its value when the
user switches pages (its parameter leaves the address), so its value is handed back on return.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from embedviz.extract.devices import DEVICES

__all__ = ["DEFAULTS", "COMPUTED", "PREFIXES", "EVERY_PAGE", "BIND", "bound", "restore_bound", "seed_defaults"]

#: Every ``ev_`` widget key with a fixed first value, and that value.
DEFAULTS: dict[str, Any] = {
    "ev_method": "tsne",
    "ev_dims": 2,
    "ev_seed": 0,
    "ev_device": DEVICES[0],
    "ev_batch_size": 64,
    "ev_engine": "This server",
    "ev_color": "label",
    "ev_warm": True,
    "ev_point_k": 12,
    "ev_point_metric": "euclidean",
    "ev_sample_on": False,
    "ev_stratify": "(none)",
    # drawn on one page only: given their first value where they are drawn (see :func:`seed_defaults`)
    "ev_size": 5.0,
    "ev_opacity": 0.85,
    "ev_filtered": "hide",
    "ev_cluster_k": 10,
    "ev_cluster_min": 15,
    "ev_thumbs_max": 1_000,
    "ev_thumbs_size": 36,
    "ev_f_correct": "all",
    "ev_cmp_metric": "knn_accuracy",
}
#: Every other ``ev_`` key: its first value depends on the data or the model, so the page that draws
#: the widget finds it there (and puts it back in range when the data change). Key -> that first value.
COMPUTED: dict[str, str] = {
    "ev_sample_size": "half the points, at most 10,000 (Reduce)",
    "ev_point": "the first selected point, else the first point (Point)",
    "ev_cmp_sets": "the demo's two checkpoints, or this model's checkpoints or layers (Compare)",
    "ev_cmp_pair": "the first pair of sets in the series (Compare)",
    "ev_cmp_step": "the last set of the series (Compare)",
    "ev_cmp_color": "label when the data have labels, else the neighbourhood overlap (Compare)",
    "ev_show_set": "(none): no saved set ringed (Explore)",
    "ev_symbol": "(none), and again when the column is gone (Explore)",
    "ev_f_columns": "no filter columns; columns the data lack drop out (Explore)",
    "ev_f_conf": "the whole range 0-1 of confidence (Explore)",
    "ev_f_topk": "any: no top-k filter (Explore)",
    "ev_resume": "unset: set for one run by Resume after a stopped map (Reduce)",
    "ev_data_path": "the current data's path, empty for an upload (Data & model)",
    "ev_data_prefix": "the current data's path prefix (Data & model)",
    "ev_data_column": "the current table's path column, or the features' id column (Data & model)",
    "ev_data_metadata": "the current features' metadata table (Data & model)",
    "ev_weights_path": "the current model's weights file (Data & model)",
    "ev_classes_path": "empty: no class index typed (Data & model)",
    "ev_cluster_method": "the first clustering method (Explore)",
    "ev_cluster_space": "the first space to cluster in (Explore)",
}
#: Families of keys named by what they hold: a reducer's parameter, a filter on a column, a colour picked for a
#: category (and which category is being picked).
PREFIXES = ("ev_p_", "ev_f_", "ev_colour_")

#: The keys every page seeds on its first run; the others are seeded by the page that draws them.
EVERY_PAGE = ("ev_method", "ev_dims", "ev_seed", "ev_device", "ev_batch_size", "ev_engine", "ev_color", "ev_warm",
              "ev_point_k", "ev_point_metric", "ev_sample_on", "ev_stratify")

#: Passed to a widget to bind its value to the query parameter named by its key.
BIND = "query-params"


def seed_defaults(*keys: str) -> None:
    """Give these widget keys their first value from :data:`DEFAULTS` unless they have one already."""
    for key in keys:
        st.session_state.setdefault(key, DEFAULTS[key])


def bound(key: str) -> dict[str, Any]:
    """``key=..., bind="query-params"`` for a widget whose value belongs in the link."""
    st.session_state.setdefault("_bound_keys", set()).add(key)
    return {"key": key, "bind": BIND}


def restore_bound(page: str) -> None:
    """On the first run after a page switch, hand bound widgets their values again: the switch took
    their parameters out of the address, and a bound widget would otherwise start from its default.
    A value in the address (a link being opened) wins."""
    if st.session_state.get("_page") == page:
        return
    st.session_state["_page"] = page
    for key in st.session_state.get("_bound_keys", ()):
        if key in st.session_state and key not in st.query_params:
            st.session_state[key] = st.session_state[key]
