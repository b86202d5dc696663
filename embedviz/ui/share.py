"""The view in the browser's address, and sharing it.

The widgets that shape the view are bound to query parameters (see :func:`embedviz.ui.session.bound`),
so the address is always a link to this view: opening it in a fresh browser reopens the run it names
(:func:`apply_link`) and the widgets take the link's values; a selection of up to 200 points travels too.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from embedviz.data.spec import DatasetSpec
from embedviz.errors import EmbedVizError
from embedviz.explore.filter_json import deserialise_filters
from embedviz.extract.spec import ModelSpec
from embedviz.maps.reducers import load_embedding
from embedviz.serve.catalog import Run, is_run_id, unavailable
from embedviz.ui.auth import viewer
from embedviz.ui.runs import catalog, same_choice
from embedviz.ui.session import DEFAULTS
from embedviz.ui.widgets import plain

__all__ = ["reopen", "apply_link", "link_messages", "linked_ids", "set_linked_ids", "link_url", "share_panel"]


_SEL_LIMIT = 200  # a selection up to this many points travels in the link


def reopen(run: Run) -> None:
    """Make ``run``'s data, model, layer and (for a map) reducer settings and map current, so the
    pages draw what its owner saw. The map itself is read from the store, not recomputed."""

    params = run.params
    dataset, model = DatasetSpec.from_dict(params["dataset"]), ModelSpec.from_dict(params["model"])
    if dataset.uploaded and not Path(dataset.path).exists():
        raise EmbedVizError("The images of this run were uploaded in a session that has since been cleaned up; "
                            "upload them again to see it.")
    st.session_state["dataset"] = dataset
    st.session_state["model"] = model
    st.session_state["layer"] = params.get("layer")
    st.session_state["classes"] = params.get("classes")
    st.session_state.pop("map_filters", None)
    st.session_state.pop("map_stopped", None)
    st.session_state.pop("previous_map", None)
    # the run's colouring (label unless it was made coloured otherwise), not the one a previous view left:
    # Explore falls back to "(none)" for a column these data lack (clusters, sets, another data's columns)
    st.session_state["ev_color"] = params.get("color") or DEFAULTS["ev_color"]
    if run.kind == "map":
        reducer = params["reducer"]
        method = reducer["method"]
        st.session_state["ev_method"] = method
        st.session_state["ev_dims"] = int(reducer["n_components"])
        st.session_state["ev_seed"] = int(reducer["random_state"])
        for name, value in reducer["params"].items():
            st.session_state[f"ev_p_{method}_{name}"] = value
        sample = params.get("sample")
        st.session_state["ev_sample_on"] = bool(sample)
        if sample:
            st.session_state["ev_sample_size"] = int(sample["size"])
            st.session_state["ev_stratify"] = sample.get("stratify_by") or "(none)"
        st.session_state["ev_warm"] = bool(params.get("warm", True))
        filters = deserialise_filters(params.get("map_filters", []))
        if filters:
            st.session_state["map_filters"] = filters
        embedding = load_embedding(run.inputs["map"])
        if embedding is not None:
            st.session_state["previous_map"] = (run.features_key, params["token"], embedding)
        else:
            st.session_state["link_note"] = ("This run's map was removed from the store to save space; it was made "
                                             "again from a fresh start, so it may differ a little from the original.")
    st.session_state["current_run"] = run


def apply_link() -> None:
    """Open the run the address names, once per session and run; a run the viewer may not see
    (or one that is gone) is said plainly and the current view stays."""
    run_id = st.query_params.get("run")
    if not run_id or run_id == st.session_state.get("_linked_run"):
        return
    st.session_state["_linked_run"] = run_id
    current = st.session_state.get("current_run")
    if current is not None and current.id == run_id:
        return
    if not is_run_id(run_id):  # not an id this server made: refused without looking, and without echo
        st.session_state["link_error"] = unavailable(run_id)
        return
    try:
        run = catalog().open(run_id, viewer().id)
        reopen(run)
    except EmbedVizError as exc:
        st.session_state["link_error"] = str(exc)
        return
    sel = st.query_params.get_all("sel")
    if sel:
        st.session_state["_linked_sel"] = [s for part in sel for s in part.split(",") if s]


def link_messages() -> None:
    """What happened to the link this session was opened with, once."""
    error = st.session_state.pop("link_error", None)
    if error:
        st.error(plain(error), icon=":material/link_off:")
    note = st.session_state.pop("link_note", None)
    if note:
        st.info(plain(note), icon=":material/info:")


def linked_ids() -> list[str] | None:
    """Sample ids selected when the link was made (until the user selects something else)."""
    return st.session_state.get("_linked_sel")


def set_linked_ids(ids: list[str]) -> str | None:
    """Put the selection in the address (up to 200 points); returns a note when it is too large."""
    if ids and len(ids) <= _SEL_LIMIT:
        joined = ",".join(ids)
        if st.query_params.get("sel") != joined:
            st.query_params["sel"] = joined
        return None
    if "sel" in st.query_params:
        del st.query_params["sel"]
    return (f"The link carries selections of up to {_SEL_LIMIT} points; this one has {len(ids):,}. "
            "Save it as a set to keep it.") if ids else None


def link_url() -> str:
    """The address of this view, as a colleague would open it."""
    parts = urlsplit(st.context.url or "")
    query = urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])
    return urlunsplit((parts.scheme or "http", parts.netloc, parts.path, query, ""))


def share_panel() -> None:
    """In the sidebar: the link to this view (with a copy button) and whether others may open it."""
    run = st.session_state.get("current_run")
    with st.sidebar:
        with st.popover("Share this view", icon=":material/share:", width="stretch"):
            if run is None or not same_choice(run):
                st.caption("Open a map first: the link names the run behind it.")
                return
            st.caption("Copy the link (the button at the right of the box):")
            st.code(link_url(), language=None, wrap_lines=True)
            mine = run.owner == viewer().id
            if mine:
                published = st.toggle("Anyone with the link may open it", value=run.published,
                                      key=f"share_publish_{run.id}",
                                      help="Private runs open only for you. Published runs are listed for everyone "
                                           "on the Runs page.")
                if published != run.published:
                    catalog().publish(run.id, viewer().id, published)
                    st.session_state["current_run"] = catalog().get(run.id)
                    st.rerun()
                if not published:
                    st.caption("Private: only you can open this link.")
            else:
                st.caption(f"Made by {plain(run.owner_name)}; published.")
