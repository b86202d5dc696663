"""The Explore page's map and selection: styling controls, highlighting, the map (zoomed in on part of a
large one), the selection with its link and named sets. The tabs below are in :mod:`embedviz.ui.findings`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from embedviz.data.classes import natural_order
from embedviz.explore.figures import MapStyle, category_colours, is_categorical, scatter_figure
from embedviz.explore.filters import Filter, FlaggedFilter, filter_columns
from embedviz.explore.large import DRAWN, POINTS_FROM, LargeMap, density_layer, in_box, layer_key, plan, zoom_box
from embedviz.explore.mistakes import (
    cell_rows,
    has_predictions,
)
from embedviz.explore.render import point_colours
from embedviz.ui.audit import audit_columns, ringed_findings
from embedviz.ui.explore_state import (
    COLOURS,
    SETS,
    clusters_for,
    confusion_cells,
    memo,
    set_column,
)
from embedviz.ui.map_settings import map_filters, set_map_filters
from embedviz.ui.maps import MapView
from embedviz.ui.search import ringed_search, search_columns
from embedviz.ui.session import bound, seed_defaults
from embedviz.ui.share import linked_ids
from embedviz.ui.widgets import plain

__all__ = ["map_figure", "map_filter_button", "zoom_window", "zoom_controls", "density_underlay", "with_extra_columns",
           "style_controls", "highlight_rows"]


def with_extra_columns(view: MapView) -> pd.DataFrame:
    """The samples, plus a ``cluster`` column once clusters were found for this map, the audit's scores
    and flags once the data was audited, and a ``set: NAME`` column (True/False) for each named
    selection: all can colour and filter the map."""
    samples = view.samples
    extra: dict[str, Any] = {}
    clustering = clusters_for(view)
    if clustering is not None:
        extra["cluster"] = pd.array(clustering.names, dtype="string")
    extra.update(audit_columns(view))
    extra.update(search_columns(view))
    ids = samples["sample_id"].astype(str)
    for name, members in st.session_state.get(SETS, {}).items():
        extra[set_column(name)] = ids.isin(members).to_numpy()
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
    few = memo("few", (key, tuple(columns)), lambda: [
        c for c in columns if is_categorical(samples[c]) and samples[c].nunique(dropna=False) <= 8])
    if st.session_state.get("ev_symbol") not in ["(none)", *few]:
        st.session_state["ev_symbol"] = "(none)"
    with st.expander("Style"):
        symbol = st.selectbox("Symbol by", ["(none)", *few], **bound("ev_symbol"),
                              help="Columns with at most 8 values, e.g. the split.")
        seed_defaults("ev_size", "ev_opacity", "ev_filtered")
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
    store: dict[str, dict[str, str]] = st.session_state.setdefault(COLOURS, {})
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
    st.session_state.get(COLOURS, {}).pop(color, None)
    for key in [k for k in st.session_state.keys() if str(k).startswith(f"ev_colour_{color}_")]:
        del st.session_state[key]


def highlight_rows(samples: pd.DataFrame, view: MapView | None = None) -> tuple[np.ndarray, str]:
    """Rows to ring on the map: the confusion matrix cells picked on the Mistakes tab, the findings shown
    on the Issues tab, the named set chosen to show and the selection a link carried; with a line that
    says what is ringed."""
    rows, said = [], []
    selection = (st.session_state.get("explore_map") or {}).get("selection") or {}
    if any(selection.get(kind) for kind in ("points", "box", "lasso")):
        st.session_state.pop("_linked_sel", None)  # the user selected for themselves: the link's is done
    cells = confusion_cells() if has_predictions(samples) else []
    if cells:
        rows.append(cell_rows(samples, cells))
        said.append(", ".join(f"label {plain(a)} predicted {plain(b)}" for a, b in cells[:4])
                    + (" ..." if len(cells) > 4 else ""))
    for found in (ringed_findings(view), ringed_search(view)) if view is not None else ():
        if found is not None:
            rows.append(found[0])
            said.append(found[1])
    shown = st.session_state.get("ev_show_set", "(none)")
    if shown != "(none)" and set_column(shown) in samples.columns:
        rows.append(np.flatnonzero(samples[set_column(shown)].to_numpy(dtype=bool)))
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
    kept = tuple(f for f in map_filters() if isinstance(f, FlaggedFilter))  # set on the Issues tab: they stay
    if usable and (*kept, *usable) != map_filters():
        st.button("Make a new map of only these points", on_click=set_map_filters, args=((*kept, *usable),),
                  icon=":material/filter_alt:", key="map_these_points",
                  help="Reduce again with only the points these filters keep. Filters on clusters, sets, the audit's "
                       "columns or neighbourhood_kept are not carried over (the Issues tab leaves out what the audit "
                       "flags).")


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
