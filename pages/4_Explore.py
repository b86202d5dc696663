"""Explore the map: style it, filter it, select points and see their images, look at the model's
mistakes and at clusters, draw the images on the map, and export what you see."""

import streamlit as st

from embedviz import ui
from embedviz.explore.filters import apply_filters
from embedviz.ui import audit, explore, findings, search, selection
from embedviz.ui.filters import filter_widgets
from embedviz.ui.map_component import map_chart
from embedviz.ui.previews import previews_for

ui.page_setup("Explore")
st.title("Explore")

with ui.guard():
    view = ui.current_map()
samples = explore.with_extra_columns(view)
coords = view.embedding.coords

side, main = st.columns([1, 3])
with side:
    style = explore.style_controls(samples, key=view.features.key)
    with ui.guard():
        filters = filter_widgets(samples)
        mask = apply_filters(samples, filters)
    st.metric(f"Points shown, of {len(samples):,}", f"{int(mask.sum()):,}")
    explore.map_filter_button(view, filters)
    ui.map_filters_note()
highlight, ringed = explore.highlight_rows(samples, view)
window = explore.zoom_window(view)  # zoomed in on part of a large map, or None
with main:
    findings.nothing_shown_note(samples, filters)
    figure, large = explore.map_figure(view, samples, style, mask, highlight, window)
    previews = previews_for(view.collection, samples, view.features.key)
    event = map_chart(figure, samples, key=f"explore_map_{view.embedding.key[:16]}", color=style.color,
                      previews=previews)
    if large is not None:
        st.caption(large.describe())
    if ringed:
        st.caption(ringed)
    pictures = " Zoom in until few points are in view to see them as their images." if previews else ""
    st.caption("Rest the pointer on a point to see its image. Click a point to select it (shift-click for more), "
               "or pick Box or Lasso Select in the map's toolbar; double-click empty space to clear." + pictures
               if view.embedding.n_components == 2 else
               "In 3-D, click points to select them (shift-click for more); box and lasso work on the 2-D map.")

rows, too_large = selection.linked_selection(event, coords, mask if window is None else mask & window, samples)
with main:  # not above the tabs: an element that comes and goes there reopens the first tab
    if too_large:
        st.caption(too_large)
    explore.zoom_controls(view, mask, rows, window)
# The open tab is remembered (a rerun stays on it) and the images of a closed one are not made
names = ["Selection", *(["Search"] if search.search_available(view) else []), "Mistakes", "Issues", "Clusters",
         "Images on the map", "Export"]
tabs = dict(zip(names, st.tabs(names, key="explore_tab", on_change="rerun")))
selected, mistakes, issues, clusters, images, exports = (tabs[n] for n in names if n != "Search")
with selected:
    selection.selection_section(view, samples, rows)
if "Search" in tabs:
    with tabs["Search"]:
        search.search_section(view, samples, rows, pictures=tabs["Search"].open is not False)
with mistakes:
    findings.mistakes_section(view, samples, pictures=mistakes.open is not False)
with issues:
    audit.issues_section(view, samples, pictures=issues.open is not False)
with clusters:
    findings.clusters_section(view, samples, rows, mask, filters, pictures=clusters.open is not False)
with images:
    findings.images_on_map_section(view, samples, style, mask)
with exports:
    findings.exports_section(view, samples, style, mask, filters)
ui.sidebar_summary()
