"""Every extraction and map is recorded as a run in the catalog (:mod:`embedviz.serve.catalog`) for the
viewer; the current map's run id is the ``run`` query parameter on every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from embedviz.data.spec import DatasetSpec
from embedviz.errors import EmbedVizError
from embedviz.explore.filter_json import serialise_filters
from embedviz.extract.spec import ModelSpec
from embedviz.layout import layout, mark_used
from embedviz.serve.access import Viewer
from embedviz.serve.catalog import Catalog, Run
from embedviz.ui.auth import viewer
from embedviz.ui.choices import class_index, dataset_spec, model_spec, reducer_settings
from embedviz.ui.session import DEFAULTS

__all__ = ["catalog", "current_choice", "same_choice", "write_link", "record_extraction", "note_map"]


@st.cache_resource(show_spinner=False)
def _catalog(path: str) -> Catalog:
    return Catalog(path)


def catalog() -> Catalog:
    return _catalog(str(layout().catalog))


def current_choice() -> dict[str, Any]:
    """The data, model, layer and class index chosen now, as a run records them."""
    return {"dataset": dataset_spec().to_dict(), "model": model_spec().to_dict(),
            "layer": st.session_state.get("layer"), "classes": class_index()}


def same_choice(run: Run) -> bool:
    """Whether ``run`` was made from the current choice (a layer not chosen yet matches any)."""
    params = run.params
    try:  # through the specs, so a record that spells an empty field out still matches
        same = (DatasetSpec.from_dict(params.get("dataset")) == dataset_spec()
                and ModelSpec.from_dict(params.get("model")) == model_spec())
    except EmbedVizError:  # a record of another version's making
        return False
    layer = st.session_state.get("layer")
    return same and params.get("classes") == class_index() and (layer is None or params.get("layer") == layer)


def write_link() -> None:
    """The current run's id in the address, or none when the user has since chosen other data."""
    run = st.session_state.get("current_run")
    if run is not None and same_choice(run):
        if st.query_params.get("run") != run.id:
            st.query_params["run"] = run.id
        st.session_state["_linked_run"] = run.id
    elif "run" in st.query_params:
        del st.query_params["run"]


def record_extraction(owner: Viewer, choice: dict[str, Any], title: str, features, seconds: float,
                      images_sha256: str = "") -> Run:
    """The extraction run behind ``features`` (called when a job finishes, in its thread)."""
    return Catalog(layout().catalog).record(
        "extraction", owner=owner.id, owner_name=owner.name, title=title,
        inputs={"features": features.key, "model": features.manifest.get("model", ""),
                "weights_sha256": features.manifest.get("weights_sha256"), "layer": features.manifest.get("layer"),
                "images_sha256": images_sha256},
        params=choice, seconds=seconds, n_points=len(features), dedupe=features.key)


def _run_color(full) -> str:
    """The colouring to keep with a map's run: a column of its data (or "(none)"); a column of this
    session only (clusters, named sets) cannot be opened again, so the default (the label) is kept."""
    color = st.session_state.get("ev_color") or DEFAULTS["ev_color"]
    return color if color == "(none)" or color in full.samples.columns else DEFAULTS["ev_color"]


def note_map(full, kept, embedding, token: str, title: str, source: str, sample, map_filters) -> Run | None:
    """Record the map on screen as the viewer's run (once per map) and make it current."""
    if embedding.partial or not embedding.key:
        return None
    current = st.session_state.get("current_run")
    me = viewer()
    if current is not None and current.kind == "map" and current.inputs.get("map") == embedding.key \
            and current.visible_to(me.id) and same_choice(current):
        return current  # a published run opened from a link stays the run of the view
    choice = current_choice()
    if choice["layer"] is None:
        choice["layer"] = full.manifest.get("layer")
    parent = record_extraction(me, choice, source, full, float(full.manifest.get("seconds") or 0.0))
    run = catalog().record(
        "map", owner=me.id, owner_name=me.name, title=title,
        inputs={"features": kept.key, "source_features": full.key, "map": embedding.key},
        params={**choice, "reducer": reducer_settings(), "sample": sample.describe() if sample else None,
                "warm": bool(st.session_state.get("ev_warm", True)), "map_filters": serialise_filters(map_filters),
                "color": _run_color(full), "token": token},
        seconds=embedding.seconds, n_points=len(kept), parent=parent.id, dedupe=embedding.key)
    if full.path is not None:
        mark_used(Path(full.path))
    st.session_state["current_run"] = run
    write_link()
    return run
