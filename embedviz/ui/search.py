"""Explore's Search tab, for features from a CLIP/SigLIP image tower (:mod:`embedviz.explore.search`):
a text, an uploaded image or "more like the selected points" ranks every point; the best are ringed on
the map and shown in order, and the similarity becomes a column to colour by. Zero-shot labels from
class names (the labels', or typed) become columns too, with their agreement with the labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from embedviz.data.classes import natural_order
from embedviz.errors import EmbedVizError, first_line
from embedviz.explore.search import search_model, similarity, top, unit_features, zero_shot, zero_shot_agreement
from embedviz.extract.clip import is_clip
from embedviz.ui.choices import model_spec
from embedviz.ui.maps import MapView
from embedviz.ui.widgets import gallery, plain

__all__ = ["search_available", "search_columns", "ringed_search", "search_section"]

_FOUND = "explore_search"  # (features key, what was searched, similarities)
_ZERO = "explore_zero_shot"  # (features key, DataFrame of zero_shot, zero_shot_confidence)


def search_available(view: MapView) -> bool:
    return is_clip(str(view.features.manifest.get("model") or ""))


def _held(name: str, view: MapView):
    held = st.session_state.get(name)
    return held if held is not None and held[0] == view.features.key else None


def search_columns(view: MapView) -> dict[str, object]:
    """``similarity`` to the last search and the zero-shot columns, for the map's samples."""
    extra: dict[str, object] = {}
    found = _held(_FOUND, view)
    if found is not None and len(found[2]) == len(view.samples):
        extra["similarity"] = found[2]
    zero = _held(_ZERO, view)
    if zero is not None and len(zero[1]) == len(view.samples):
        extra.update({c: zero[1][c].to_numpy() for c in zero[1].columns})
    return extra


def _k() -> int:
    return int(st.session_state.get("explore_search_k", 24))


def ringed_search(view: MapView) -> tuple[np.ndarray, str] | None:
    """While the Search tab is open on a search of these features: its best points, to ring."""
    found = _held(_FOUND, view)
    if found is None or st.session_state.get("explore_tab") != "Search":
        return None
    return top(found[2], _k()), f"the {_k()} points most like {plain(found[1])}"


def _model(view: MapView):
    return search_model(view.features.manifest, model_spec().weights)


def _search(view: MapView, what: str, query: np.ndarray) -> None:
    scores = similarity(unit_features(view.features.features, view.features.key), query)
    st.session_state[_FOUND] = (view.features.key, what, scores.astype(np.float32))
    st.session_state["explore_colour_next"] = "similarity"
    st.rerun()


def search_section(view: MapView, samples: pd.DataFrame, rows: np.ndarray, pictures: bool = True) -> None:
    """The tab (its work only while ``pictures``: the tab is open)."""
    if not pictures:
        return
    st.markdown("**Search the map** by what the images show: the model's text tower reads the words, and every "
                "point is ranked by how close its image is to them.")
    text_col, k_col = st.columns([4, 1])
    text = text_col.text_input("Search by text", key="explore_search_text", placeholder="a dog on grass",
                               max_chars=300)
    k_col.number_input("How many", 1, 500, 24, key="explore_search_k")
    left, mid, right = st.columns(3)
    go = left.button("Search", icon=":material/search:", type="primary", key="explore_search_go")
    like = mid.button(f"More like the {len(rows):,} selected", disabled=not len(rows), key="explore_search_like")
    upload = right.file_uploader("…or an image", type=["png", "jpg", "jpeg", "webp"], key="explore_search_image",
                                 max_upload_size=20)
    try:
        if go and text.strip():
            _search(view, repr(text.strip()), _model(view).encode_text([text.strip()])[0])
        if like and len(rows):
            chosen = unit_features(view.features.features, view.features.key)[rows]
            _search(view, f"the {len(rows):,} selected points", chosen.mean(axis=0))
        seen = (view.features.key, upload.file_id) if upload is not None else None
        if upload is not None and st.session_state.get("_search_image_seen") != seen:
            st.session_state["_search_image_seen"] = seen
            _search(view, "the uploaded image", _model(view).encode_image(_opened(upload)))
    except (EmbedVizError, OSError, ValueError) as error:
        st.error(plain(first_line(error, 300)))
    _results(view, samples)
    _zero_shot(view, samples)


def _opened(upload):
    """An uploaded query image, decoded with the same checks as any image (formats, bombs)."""
    import tempfile
    from pathlib import Path

    from embedviz.data.decode import ImageRejected, open_image

    with tempfile.NamedTemporaryFile(suffix=Path(upload.name).suffix[:8]) as held:
        held.write(upload.getvalue())
        held.flush()
        try:
            return open_image(held.name)
        except ImageRejected as exc:
            raise EmbedVizError(f"The uploaded image could not be read: {exc}.") from None


def _results(view: MapView, samples: pd.DataFrame) -> None:
    found = _held(_FOUND, view)
    if found is None:
        st.caption("The best matches are ringed on the map and shown here, most similar first; the similarity "
                   "becomes a column to colour by.")
        return
    best = top(found[2], _k())
    st.caption(f"The {len(best):,} points most like {plain(found[1])}, most similar first (ringed on the map).")
    shown = samples.iloc[best].assign(similarity=found[2][best].round(3))
    gallery(shown, view.collection.root, key="search", per_page=24, controls=False)


def _zero_shot(view: MapView, samples: pd.DataFrame) -> None:
    with st.expander("Zero-shot labels: which class name each image is closest to"):
        labels = samples["label"] if "label" in samples.columns else pd.Series(dtype="string")
        default = ", ".join(natural_order(labels.dropna().astype(str).unique())[:200])
        names = st.text_area("Class names, separated by commas", value=default, key="explore_zero_names",
                             max_chars=20_000,
                             help="Each becomes the text \"a photo of a NAME.\"; the labels' names to start with.")
        if st.button("Label every image", key="explore_zero_go"):
            try:
                table = zero_shot(unit_features(view.features.features, view.features.key),
                                  names.split(","), _model(view))
            except (EmbedVizError, OSError, ValueError) as error:
                st.error(plain(first_line(error, 300)))
                return
            st.session_state[_ZERO] = (view.features.key, table)
            st.session_state["explore_colour_next"] = "zero_shot"
            st.rerun()
        zero = _held(_ZERO, view)
        if zero is not None:
            agree = zero_shot_agreement(zero[1]["zero_shot"], labels) if len(labels) else None
            st.caption("zero_shot and zero_shot_confidence are columns of the map"
                       + (f"; they agree with the labels on {agree:.1%} of the labelled images." if agree is not None
                          else "."))
