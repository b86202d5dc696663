"""The Explore page's parts: styling controls, named selection sets, the mistakes tab, clusters,
images drawn on the map and the exports. The page lays them out; the work is in the core."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from embedviz.data.classes import natural_order
from embedviz.explore.export import (
    coordinates_table,
    map_png,
    map_title,
    metascatter_table,
    projector_zip,
    selection_table,
    table_parquet,
    to_csv,
    view_html,
)
from embedviz.explore.figures import MapStyle, category_colours, confusion_figure, is_categorical, scatter_figure
from embedviz.explore.filters import Filter, describe_filter, filter_columns, why_nothing_shown
from embedviz.explore.large import DRAWN, POINTS_FROM, LargeMap, density_layer, in_box, layer_key, plan, zoom_box
from embedviz.explore.mistakes import (
    CLASSES_ARE_NOT_LABELS,
    cell_rows,
    confident_errors,
    confusion_table,
    has_predictions,
    unsure_correct,
    why_no_mistakes,
)
from embedviz.explore.render import MAX_THUMBNAILS, point_colours, thumbnail_map
from embedviz.explore.selection import rows_for_ids
from embedviz.explore.summary import accuracy
from embedviz.maps.clusters import METHODS as CLUSTER_METHODS
from embedviz.maps.clusters import Clustering, cluster_points
from embedviz.maps.reducers.neighbours import prepare
from embedviz.ui.links import bound, linked_ids, set_linked_ids
from embedviz.ui.state import DEFAULTS, MapView, map_filters, set_map_filters
from embedviz.ui.widgets import gallery, guard, plain, progress_callback

__all__ = ["map_figure", "map_filter_button", "zoom_window", "zoom_controls", "density_underlay", "with_extra_columns", "style_controls", "highlight_rows",
           "nothing_shown_note", "selection_section", "mistakes_section",
           "clusters_section", "images_on_map_section", "exports_section", "linked_selection"]

_SETS = "explore_sets"  # {name: [sample_id, ...]}: named selections, kept for the session
_CLUSTERS = "explore_clusters"  # (identity of what was clustered, Clustering, _Scope of the points clustered)
_KEPT = "explore_kept_sel"  # (map key, sample ids) selected when "Find clusters" recoloured the map (a new chart)
_COLOURS = "explore_colours"  # {column: {category: "#rrggbb"}}: colours the user chose
_CONFUSION = "confusion_map"  # the confusion matrix chart's selection


def _memo(name: str, key: object, make):
    """``make()`` once per ``(name, key)`` in this session: work over every row (a million of them)
    that a selection's rerun should not redo."""
    held: dict = st.session_state.setdefault("explore_memo", {})
    if (name, key) not in held:
        if len(held) > 32:
            held.clear()
        held[(name, key)] = make()
    return held[(name, key)]


def _set_column(name: str) -> str:
    return f"set: {name}"


def _clusters_for(view: MapView) -> Clustering | None:
    held = st.session_state.get(_CLUSTERS)
    if held is None:
        return None
    identity, clustering, _ = held
    current = view.features.key if clustering.space == "features" else view.embedding.key
    return clustering if identity == current and len(clustering.names) == len(view.samples) else None


def with_extra_columns(view: MapView) -> pd.DataFrame:
    """The samples, plus a ``cluster`` column once clusters were found for this map and a
    ``set: NAME`` column (True/False) for each named selection: all can colour and filter the map."""
    samples = view.samples
    extra: dict[str, Any] = {}
    clustering = _clusters_for(view)
    if clustering is not None:
        extra["cluster"] = pd.array(clustering.names, dtype="string")
    ids = samples["sample_id"].astype(str)
    for name, members in st.session_state.get(_SETS, {}).items():
        extra[_set_column(name)] = ids.isin(members).to_numpy()
    return samples.assign(**extra) if extra else samples


def style_controls(samples: pd.DataFrame, key: str = "") -> MapStyle:
    """Colour, symbol, size, opacity, what filtered-out points look like, and a colour per class
    (``key`` names the samples, so that what is counted over every row is counted once)."""
    columns = [c for c in samples.columns if c not in ("sample_id", "path")]
    if st.session_state.get("explore_colour_next") in columns:  # e.g. clusters just found
        st.session_state["ev_color"] = st.session_state.pop("explore_colour_next")
    if st.session_state.get("ev_color") not in ["(none)", *columns]:
        st.session_state["ev_color"] = "(none)"
    color = st.selectbox("Colour by", ["(none)", *columns], **bound("ev_color"))
    color = None if color == "(none)" else color
    few = _memo("few", (key, tuple(columns)), lambda: [
        c for c in columns if is_categorical(samples[c]) and samples[c].nunique(dropna=False) <= 8])
    if st.session_state.get("ev_symbol") not in ["(none)", *few]:
        st.session_state["ev_symbol"] = "(none)"
    with st.expander("Style"):
        symbol = st.selectbox("Symbol by", ["(none)", *few], **bound("ev_symbol"),
                              help="Columns with at most 8 values, e.g. the split.")
        st.session_state.setdefault("ev_size", 5.0)
        st.session_state.setdefault("ev_opacity", 0.85)
        st.session_state.setdefault("ev_filtered", "hide")
        size = st.slider("Point size", 1.0, 20.0, step=0.5, **bound("ev_size"))
        opacity = st.slider("Opacity", 0.05, 1.0, step=0.05, **bound("ev_opacity"))
        filtered = st.radio("Points the filters leave out", ["hide", "grey"], **bound("ev_filtered"), horizontal=True,
                            format_func=lambda v: "hidden" if v == "hide" else "greyed")
        chosen = _colour_choice(samples, color)
    return MapStyle(color=color, symbol=None if symbol == "(none)" else symbol, size=float(size),
                    opacity=float(opacity), colors=chosen, filtered=filtered)


def _colour_choice(samples: pd.DataFrame, color: str | None) -> tuple[tuple[str, str], ...]:
    if color is None or not is_categorical(samples[color]):
        return ()
    store: dict[str, dict[str, str]] = st.session_state.setdefault(_COLOURS, {})
    mine = store.setdefault(color, {})
    options = natural_order(samples[color].astype("string").fillna("(none)").unique())
    current = category_colours(samples, MapStyle(color=color, colors=tuple(mine.items())))
    left, right = st.columns([3, 1])
    category = left.selectbox(f"A colour for one {plain(color)}", options, key=f"ev_colour_of_{color}")
    key = f"ev_colour_{color}_{category}"
    st.session_state.setdefault(key, current[category])
    picked = right.color_picker("Colour", key=key, label_visibility="hidden")
    if picked != current[category]:
        mine[category] = picked
    if mine:
        st.button("Back to the default colours", key="explore_colours_reset", on_click=_default_colours, args=(color,))
    return tuple(sorted(mine.items()))


def _default_colours(color: str) -> None:
    st.session_state.get(_COLOURS, {}).pop(color, None)
    for key in [k for k in st.session_state.keys() if str(k).startswith(f"ev_colour_{color}_")]:
        del st.session_state[key]


def _confusion_cells() -> list[tuple[str, str]]:
    event = st.session_state.get(_CONFUSION)
    points = ((event or {}).get("selection") or {}).get("points") or []
    return [(str(p["customdata"][0]), str(p["customdata"][1])) for p in points
            if isinstance(p.get("customdata"), (list, tuple)) and len(p["customdata"]) == 2]


def highlight_rows(samples: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Rows to ring on the map: the confusion matrix cells picked on the Mistakes tab, the named set
    chosen to show and the selection a link carried; with a line that says what is ringed."""
    rows, said = [], []
    selection = (st.session_state.get("explore_map") or {}).get("selection") or {}
    if any(selection.get(kind) for kind in ("points", "box", "lasso")):
        st.session_state.pop("_linked_sel", None)  # the user selected for themselves: the link's is done
    cells = _confusion_cells() if has_predictions(samples) else []
    if cells:
        rows.append(cell_rows(samples, cells))
        said.append(", ".join(f"label {plain(a)} predicted {plain(b)}" for a, b in cells[:4]) + (" ..." if len(cells) > 4 else ""))
    shown = st.session_state.get("ev_show_set", "(none)")
    if shown != "(none)" and _set_column(shown) in samples.columns:
        rows.append(np.flatnonzero(samples[_set_column(shown)].to_numpy(dtype=bool)))
        said.append(f"the set {plain(repr(shown))}")
    if linked_ids():
        from embedviz.explore.selection import positions_for_ids

        rows.append(positions_for_ids(samples, linked_ids()))
        said.append("the points selected in the link you opened")
    if not rows:
        return np.zeros(0, dtype=np.int64), ""
    union = np.unique(np.concatenate(rows))
    return union, f"Ringed on the map: {' and '.join(said)} ({len(union):,} points)."


def map_filter_button(view: MapView, filters: list[Filter]) -> None:
    """Offer a new map of only the points the filters keep: the filter applied before reducing
    (e.g. leaving out background images). Filters on clusters or sets stay on this page."""
    usable = tuple(f for f in filters if set(filter_columns(f)) <= set(view.features.samples.columns))
    if usable and usable != map_filters():
        st.button("Make a new map of only these points", on_click=set_map_filters, args=(usable,),
                  icon=":material/filter_alt:", key="map_these_points",
                  help="Reduce again with only the points these filters keep. Filters on clusters, sets or "
                       "neighbourhood_kept are not carried over.")


def map_figure(view: MapView, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray, highlight: np.ndarray,
               window: np.ndarray | None = None) -> tuple[go.Figure, LargeMap | None]:
    """The map as the page shows it: every shown point, or for a large map a drawn sample over the
    layer of all of them (``LargeMap`` says which, and how to say so); zoomed in (``window``),
    only the points in the window, every one of them drawn when they are few enough."""
    shown = mask if window is None else mask & window
    keep = highlight if window is None else highlight[window[highlight]]
    large = plan(shown, view.embedding.n_components, keep=keep)  # None: every point is drawn
    figure = scatter_figure(view.embedding.coords, samples, style, mask=mask, highlight=keep,
                            drawn=None if large is None else large.drawn, within=window,
                            underlay=density_underlay(view, samples, style, mask, large, window))
    return figure, large


def density_underlay(view: MapView, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray,
                     large: LargeMap | None, window: np.ndarray | None = None) -> dict | None:
    """The picture of every shown point beneath a large map's drawn sample; made once per map,
    colouring, filter and zoom (a selection's rerun finds it)."""
    if large is None or not large.layer:
        return None
    colour_part = (style.color, style.colors) if style.color else None
    key = layer_key(view.embedding.key, colour_part, style.filtered, mask, window)
    held: dict = st.session_state.setdefault("explore_layers", {})
    if key not in held:
        colours = point_colours(samples, style)
        held.clear()  # one at a time: a million points' layer is a few megabytes
        held[key] = density_layer(view.embedding.coords, colours, mask, radius=2, greyed=style.filtered == "grey",
                                  within=window)
    return held[key]


_ZOOM = "explore_zoom"  # (map key, (x0, x1, y0, y1)): the part of a large map drawn point by point


def zoom_window(view: MapView) -> np.ndarray | None:
    """The points inside the zoomed-in box of this map (``None``: the whole map is shown)."""
    held = st.session_state.get(_ZOOM)
    if held is None or held[0] != view.embedding.key or view.embedding.n_components != 2:
        return None
    return in_box(view.embedding.coords, held[1])


def zoom_controls(view: MapView, mask: np.ndarray, rows: np.ndarray, window: np.ndarray | None) -> None:
    """On a large 2-D map: zoom in on the selected points' region so that every point there is drawn
    (hover, click) instead of the layer; and back out. Zoomed in, says how many points are there."""
    if view.embedding.n_components != 2:
        return
    coords = view.embedding.coords
    if window is not None:
        here = int((mask & window).sum())
        left, right = st.columns([3, 1])
        left.caption(f"Zoomed in: {here:,} of the {int(mask.sum()):,} shown points lie in this region"
                     + (", every one drawn as a point." if here <= POINTS_FROM else
                        f"; still many, so {DRAWN:,} are drawn as points over the layer. Select a smaller region "
                        "and zoom again to see all of them."))
        right.button("Whole map", icon=":material/zoom_out_map:", key="zoom_out",
                     on_click=lambda: st.session_state.pop(_ZOOM, None))
    if int(mask.sum()) <= POINTS_FROM and window is None:
        return  # every point is drawn already: the chart's own zoom is enough
    if len(rows):
        box = zoom_box(coords, rows)
        inside = int((mask & in_box(coords, box)).sum())
        st.button(f"Zoom in on the selected region ({inside:,} points), drawing every point there"
                  if inside <= POINTS_FROM else f"Zoom in on the selected region ({inside:,} points)",
                  icon=":material/zoom_in:", key="zoom_in",
                  on_click=lambda: st.session_state.__setitem__(_ZOOM, (view.embedding.key, box)))


def _kept_ids(map_key: str | None) -> list[str] | None:
    held = st.session_state.get(_KEPT)
    return held[1] if held and held[0] == map_key else None


def linked_selection(event: Any, coords: np.ndarray, mask: np.ndarray, samples: pd.DataFrame,
                     map_key: str | None = None) -> tuple[np.ndarray, str | None]:
    """The selected rows: those selected on the map, else those kept when clusters recoloured the
    map (``map_key``'s), else those a link carried (until the user selects something); the
    selection goes into the address. Returns the rows and a note when the selection is too large
    for the link."""
    from embedviz.explore.selection import positions_for_ids, selected_rows

    rows = selected_rows(event, coords, mask)
    if len(rows):
        st.session_state.pop("_linked_sel", None)
        st.session_state.pop(_KEPT, None)  # the user selected anew
    elif _kept_ids(map_key):
        rows = positions_for_ids(samples, _kept_ids(map_key))
        rows = rows[mask[rows]]
    elif linked_ids():
        rows = positions_for_ids(samples, linked_ids())
        rows = rows[mask[rows]]
    ids = samples["sample_id"].astype(str).iloc[rows].tolist() if len(rows) else []
    return rows, set_linked_ids(ids)


def selection_section(view: MapView, samples: pd.DataFrame, rows: np.ndarray) -> None:
    """The selected points' images, saving them as a named set, and the sets made so far."""
    selected = samples.iloc[rows]
    st.subheader(f"Selection · {len(selected):,} image{'' if len(selected) == 1 else 's'}")
    if len(selected) and _kept_ids(view.embedding.key):
        note, clear = st.columns([4, 1])
        note.caption("Kept from before the clusters coloured the map (a new colouring clears the map's own "
                     "selection); select on the map to replace it.")
        clear.button("Clear the selection", key="explore_kept_clear", on_click=lambda: st.session_state.pop(_KEPT, None))
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
    sets = st.session_state.setdefault(_SETS, {})
    sets[name] = ids
    st.toast(f"Saved {len(ids):,} points as the set {plain(repr(name))}.")
    st.rerun()  # the set's column shows in the colour and filter lists


def _sets_list(view: MapView, samples: pd.DataFrame) -> None:
    sets: dict[str, list[str]] = st.session_state.get(_SETS, {})
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
                            file_name=f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.csv", mime="text/csv", on_click="ignore",
                            key=f"explore_set_csv_{name}")
        if right.button("Delete", key=f"explore_set_delete_{name}"):
            del sets[name]
            st.rerun()


def mistakes_section(view: MapView, samples: pd.DataFrame) -> None:
    """The confusion matrix (a cell selects its samples, ringed on the map) and the answers worth a look."""
    reason = why_no_mistakes(samples)
    if reason is not None:
        st.info(plain(reason))
        if reason.startswith(CLASSES_ARE_NOT_LABELS):
            st.page_link("pages/1_Data_and_model.py", label="Data & model: the class index",
                         icon=":material/database:")
        return
    score = accuracy(samples)
    if score is not None:
        scope = "test samples" if score.scope == "test" else "samples"
        st.caption(f"Accuracy {score.value:.1%} on {score.count:,} {scope}: "
                   f"{score.mistakes:,} mistakes.")
    table = _memo("confusion", view.features.key, lambda: confusion_table(samples))
    st.markdown("**Label against prediction.** Click a cell, or box several, to ring their samples on the map "
                "and see them below (double-click empty space to clear).")
    matrix, chosen = st.columns([3, 4])
    with matrix:
        side = max(table.shape)
        st.plotly_chart(confusion_figure(table, height=int(min(900, max(420, 60 + side * 34)))), key=_CONFUSION,
                        on_select="rerun", selection_mode=("points", "box"))
    cells = _confusion_cells()
    with chosen:
        if cells:
            rows = samples.iloc[cell_rows(samples, cells)]
            st.markdown(f"**{len(rows):,} samples** in the chosen cells")
            gallery(rows, view.collection.root, key="confusion", per_page=12, columns=4)
        else:
            st.info("Click a cell of the matrix to see its samples here; off the diagonal are the mistakes.")
    wrong, unsure = st.columns(2)
    with wrong:
        st.markdown("**Wrong, and sure of it** (most confident mistakes: often a wrong label)")
        errors = _memo("errors", view.features.key, lambda: confident_errors(samples, 24))
        gallery(errors, view.collection.root, key="confident_errors", per_page=12, columns=4,
                empty="The model makes no mistakes here.")
    with unsure:
        st.markdown("**Right, but unsure** (least confident correct answers: the edges of a class)")
        unsure_rows = _memo("unsure", view.features.key, lambda: unsure_correct(samples, 24))
        gallery(unsure_rows, view.collection.root, key="unsure_correct", per_page=12, columns=4,
                empty="No correct answers to show.")


@dataclass(frozen=True)
class _Scope:
    """The points a clustering ran on: a digest of the filters' mask, how many, and the filters in words."""

    digest: str
    points: int
    filters: str


def _scope(mask: np.ndarray, filters: list[Filter]) -> _Scope:
    said = "; ".join(describe_filter(f) for f in filters) if int(mask.sum()) < len(mask) else ""
    return _Scope(hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()[:16], int(mask.sum()), said)


def clusters_section(view: MapView, samples: pd.DataFrame, rows: np.ndarray, mask: np.ndarray,
                     filters: list[Filter]) -> None:
    """Find clusters, on the features or the map, of the points the filters keep; show each
    cluster's size, make-up and typical images (all of the same points). Finding them colours the
    map by cluster and keeps the selection (``rows``), which the new colouring clears on the chart."""
    st.session_state.setdefault("ev_cluster_k", 10)
    st.session_state.setdefault("ev_cluster_min", 15)
    scope = _scope(mask, filters)
    with st.form("explore_clusters_form", border=False):
        a, b, c, d = st.columns(4)
        method = a.selectbox("Method", CLUSTER_METHODS, key="ev_cluster_method",
                             format_func=lambda m: {"kmeans": "k-means", "hdbscan": "HDBSCAN"}[m])
        space = b.selectbox("On", ["features", "map"], key="ev_cluster_space",
                            help="Features: groups the model's features make (PCA to 50 dimensions first). "
                                 "Map: groups you see in the picture.")
        k = c.number_input("Clusters (k-means)", 2, 200, key="ev_cluster_k")
        size = d.number_input("Smallest cluster (HDBSCAN)", 2, 10_000, key="ev_cluster_min")
        go = st.form_submit_button("Find clusters", icon=":material/bubble_chart:",
                                   help="Clusters the points the filters keep." if scope.filters else None)
    if go:
        with guard(stop=False), st.spinner("Clustering..."):
            x = (prepare(view.features.features, "none", 50, 0, key=view.features.key) if space == "features"
                 else view.embedding.coords)
            clustering = cluster_points(x, method, k=int(k), min_cluster_size=int(size), space=space,
                                        rows=mask if scope.filters else None)
            identity = view.features.key if space == "features" else view.embedding.key
            st.session_state[_CLUSTERS] = (identity, clustering, scope)
            st.session_state["explore_colour_next"] = "cluster"
            if len(rows):  # the new colouring is a new chart, without the selection: keep it here
                st.session_state[_KEPT] = (view.embedding.key, samples["sample_id"].astype(str).iloc[rows].tolist())
            st.rerun()  # the new column shows in the colour and filter lists
    clustering = _clusters_for(view)
    if clustering is None:
        st.caption("Sub-groups inside a class, or a class split in two, show up as clusters. The clusters become "
                   "a column, `cluster`, to colour and filter the map by."
                   + (f" Clusters are found among the {scope.points:,} points the filters keep." if scope.filters else ""))
        return
    found: _Scope = st.session_state[_CLUSTERS][2]
    kept = f" (the points kept by: {plain(found.filters)})" if found.filters else ""
    st.caption(clustering.description + kept + ". Each cluster's label make-up and its most typical images "
               "(those nearest its centre) are of these same points.")
    if found.digest != scope.digest:
        st.info(f"The filters have changed since these clusters were found on {found.points:,} points; press Find "
                f"clusters to cluster the {scope.points:,} points shown now.", icon=":material/filter_alt:")
    summary = clustering.summary(samples)
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={"share": st.column_config.ProgressColumn("share", format="percent", min_value=0,
                                                                         max_value=1)})
    for _, row in summary.head(20).iterrows():
        name = str(row["cluster"])
        reps = clustering.representatives.get(name, [])
        if not reps:
            continue
        made_of = f" · {plain(row['make-up'])}" if "make-up" in row else ""
        st.markdown(f"**Cluster {plain(name)}** · {int(row['points']):,} points{made_of}")
        gallery(samples.iloc[reps], view.collection.root, key=f"cluster_{name}", per_page=len(reps),
                columns=max(6, len(reps)), controls=False)


def images_on_map_section(view: MapView, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray) -> None:
    """The images themselves at their places on the map, framed in their colour; a PNG to keep."""
    if view.embedding.n_components != 2:
        st.info("Images are drawn on 2-D maps; choose 2-D on the Reduce page.")
        return
    if "path" not in samples.columns or samples["path"].isna().all():
        st.info("These points come without images.")
        return
    shown = np.flatnonzero(mask)
    a, b = st.columns(2)
    st.session_state.setdefault("ev_thumbs_max", 1_000)
    st.session_state.setdefault("ev_thumbs_size", 36)
    most = a.number_input("At most this many images", 50, MAX_THUMBNAILS, step=50, key="ev_thumbs_max")
    size = b.slider("Image size (pixels)", 16, 96, step=4, key="ev_thumbs_size")
    identity = (view.embedding.key, style, int(most), int(size), hash(mask.tobytes()))
    held = st.session_state.get("explore_thumbs")
    if st.button("Draw the images on the map", icon=":material/photo_library:"):
        with progress_callback("Drawing images", "images") as progress:
            colours = point_colours(samples, style)
            picture, drawn = thumbnail_map(view.embedding.coords[shown], samples["path"].to_numpy()[shown].tolist(),
                                           view.collection.root, colours[shown], max_images=int(most),
                                           thumb=int(size), progress=progress)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        held = (identity, buffer.getvalue(), len(drawn), len(shown))
        st.session_state["explore_thumbs"] = held
    if held is None:
        st.caption(f"Draws the images of up to {int(most):,} of the {len(shown):,} points shown (a random sample "
                   "above that, said when it happens), each framed in its point's colour.")
        return
    if held[0] != identity:
        st.caption("The picture below was drawn before the map, style or filters changed; draw again to update it.")
    _, png, drawn, of = held
    if drawn < of:
        st.info(f"Drew a random sample of {drawn:,} of the {of:,} points shown (seed 0); raise the limit to draw more.")
    st.image(png, caption=f"{drawn:,} images at their places on the map")
    st.download_button("Download this picture (PNG)", png, file_name="map_images.png", mime="image/png",
                       on_click="ignore")


def _map_source(view: MapView) -> str:
    """What the map is of, for an export's title: ``digits (demo) · demo CNN (final, 12 epochs)/fc1``."""
    from embedviz.ui.state import current_layer, current_model, is_precomputed, model_label

    if is_precomputed():
        return f"{view.collection.name} (features made elsewhere)"
    model = current_model()
    return f"{view.collection.name} · {model_label(model)}/{current_layer(model)}"


def nothing_shown_note(samples: pd.DataFrame, filters: list[Filter]) -> None:
    """Where the map is drawn: when the filters keep no point, one line that says which and what to do."""
    note = why_nothing_shown(samples, filters)
    if note:
        st.warning(plain(note), icon=":material/filter_alt_off:")


def exports_section(view: MapView, samples: pd.DataFrame, style: MapStyle, mask: np.ndarray,
                    filters: list[Filter] | None = None) -> None:
    """Every export is built when its button is clicked, not on every rerun (a lasso is a rerun).
    The HTML and PNG say what the map is (method, data, model and layer, how many points, the
    filters) and carry the colours' legend."""
    embedding = view.embedding
    shown = np.flatnonzero(mask)
    st.markdown(f"The map: {len(samples):,} points, {len(shown):,} shown by the filters.")
    a, b, c = st.columns(3)
    a.download_button("Coordinates and metadata (CSV)", lambda: to_csv(coordinates_table(embedding, samples)),
                      file_name="map.csv", mime="text/csv", on_click="ignore", icon=":material/table:")
    b.download_button("Coordinates and metadata (Parquet)",
                      lambda: table_parquet(coordinates_table(embedding, samples)), file_name="map.parquet",
                      mime="application/octet-stream", on_click="ignore", icon=":material/table:")
    c.download_button("Metascatter's CSV", lambda: to_csv(metascatter_table(embedding, samples)),
                      file_name="metascatter.csv", mime="text/csv", on_click="ignore", icon=":material/table:",
                      help="Paths, X-Coord, Y-Coord and the metadata, as Metascatter reads them.")
    source = _map_source(view)
    note = ("Shown: " + "; ".join(describe_filter(f) for f in filters)) if filters and len(shown) < len(samples) else None
    a.download_button("This view as interactive HTML (works offline)",
                      lambda: view_html(embedding, samples, style, mask, source=source, note=note), file_name="map.html",
                      mime="text/html", on_click="ignore",
                      icon=":material/html:", help="The map with its colours, legend and filters; plotly.js is embedded.")
    b.download_button("This view as a picture (PNG)",
                      lambda: map_png(embedding.coords, samples, style, mask, note=note,
                                      title=map_title(embedding, len(shown), source=source, total=len(samples))),
                      file_name="map.png", mime="image/png", on_click="ignore", icon=":material/image:",
                      disabled=embedding.n_components != 2 or not len(shown),
                      help="Every shown point, 2,400 pixels wide, with a title and the colours' legend. The camera in "
                           "the map's toolbar saves what is on screen.")
    c.download_button("Features for TensorBoard's projector (zip)",
                      lambda: projector_zip(view.features.features, samples, images_root=view.collection.root),
                      file_name="projector.zip", mime="application/zip", on_click="ignore",
                      icon=":material/deployed_code:",
                      help="tensors.tsv, metadata.tsv, a sprite of the images and projector_config.pbtxt")


def _point_settings() -> dict[str, str]:
    """The Point page's settings the user changed earlier in this session, for the link to carry: one
    the address lacks would be added on arrival, a second history entry that Back would land on."""
    return {key: str(st.session_state[key]) for key in ("ev_point_k", "ev_point_metric")
            if key in st.session_state and st.session_state[key] != DEFAULTS[key]}
