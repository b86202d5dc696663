"""Explore the map: colour by any column, filter, select points, see their images."""

import streamlit as st

from embedviz import ui
from embedviz.export import coordinates_table, projector_zip, selection_table, to_csv
from embedviz.figures import scatter_figure
from embedviz.filters import apply_filters
from embedviz.selection import rows_for_ids, selected_ids
from embedviz.ui.filters import filter_widgets

ui.page_setup("Explore", ":material/travel_explore:")
st.title("Explore")

with ui.guard():
    view = ui.current_map()
samples = view.samples
columns = [c for c in samples.columns if c not in ("sample_id", "path")]
if st.session_state["ev_color"] not in ["(none)", *columns]:
    st.session_state["ev_color"] = "(none)"

side, main = st.columns([1, 3])
with side:
    color = st.selectbox("Colour by", ["(none)", *columns], key="ev_color")
    with ui.guard():
        mask = apply_filters(samples, filter_widgets(samples))
    st.metric("Points shown", f"{int(mask.sum()):,} of {len(samples):,}")
with main:
    figure = scatter_figure(view.embedding.coords, samples, None if color == "(none)" else color, mask=mask)
    event = st.plotly_chart(figure, key="explore_map", on_select="rerun", selection_mode=("points", "box", "lasso"))
    if view.embedding.n_components == 3:
        st.caption("In 3-D, click points to select them; box and lasso work on the 2-D map.")

selected = rows_for_ids(samples, selected_ids(event))
st.subheader(f"Selection · {len(selected):,} images")
if len(selected):
    st.page_link("pages/5_Point.py", label="Look closer at the first selected point: its nearest neighbours in "
                 "feature space", icon=":material/center_focus_strong:")
ui.gallery(selected, view.collection.root, key="selection")
# The CSVs are built when clicked, not on every rerun (a lasso is a rerun).
if len(selected):
    st.download_button("Download selected ids and paths (CSV)", lambda: to_csv(selection_table(selected)),
                       file_name="selection.csv", mime="text/csv")
st.download_button("Download map coordinates and metadata (CSV)",
                   lambda: to_csv(coordinates_table(view.embedding, samples)), file_name="map.csv",
                   mime="text/csv")
st.download_button("Download features and metadata for TensorBoard's projector (zip)",
                   lambda: projector_zip(view.features.features, samples, images_root=view.collection.root),
                   file_name="projector.zip", mime="application/zip",
                   help="tensors.tsv, metadata.tsv, a sprite of the images and projector_config.pbtxt")
ui.sidebar_summary()
