"""Reduce features to a 2-D or 3-D map under live sliders."""

import time

import streamlit as st

from embedviz import ui
from embedviz.maps.reducers import REDUCERS
from embedviz.ui.map_component import map_chart
from embedviz.ui.previews import previews_for
from embedviz.ui.reduce import how_made, move_note

started = time.perf_counter()  # a run that makes a map reports the whole wait, not the reducer's part
ui.page_setup("Reduce")
st.title("Reduce to a map")

with ui.guard():
    features = ui.require_features()
samples = features.samples
methods = ui.settle_method(features.features.shape[1])
ui.stop_requested(features)

controls, plot = st.columns([4, 9])
with controls:
    st.segmented_control("Method", methods, required=True, format_func=lambda m: REDUCERS[m].label,
                         **ui.bound("ev_method"))
    st.segmented_control("Dimensions", [2, 3], required=True, format_func=lambda d: f"{d}-D", **ui.bound("ev_dims"))
    st.number_input("Seed", 0, 2**31 - 1, help="The same seed gives the same map.", **ui.bound("ev_seed"))
    ui.param_widgets(st.session_state["ev_method"], len(samples))
    ui.size_controls(features)
    ui.map_filters_note()
with plot:
    slot = st.empty()
    with ui.guard():
        embedding = ui.require_embedding(features, frames=slot)
        ui.note_map_run(features, embedding)
    if embedding.partial:
        st.button("Continue", on_click=ui.continue_map, icon=":material/play_arrow:")
    made = st.empty()  # filled once the map is drawn, with the time the user waited for it
    for note in embedding.notes:
        st.info(ui.plain(note))  # may name a column of the user's metadata
    if embedding.details:
        st.caption(" ".join(embedding.details))
    quality = ui.map_quality(features, embedding)
    if quality is not None:
        st.caption(f"How faithful: {quality.summary()}. Colour by neighbourhood_kept on Explore to see where.")
    move = move_note(features, embedding)
    figure, large = ui.preview_figure(features, embedding, move)
    with slot:
        map_chart(figure, samples, key="reduce_map", select=False,
                  previews=previews_for(ui.current_collection(), samples, features.key))
    if large:
        st.caption(large)
    backend = f" with {embedding.backend}" if embedding.backend else ""
    made.caption(f"{len(samples):,} points · {REDUCERS[embedding.method].label} {embedding.n_components}-D"
                 f"{backend} ({how_made(embedding, started)})")
    st.page_link("pages/4_Explore.py", label="Next: explore, filter and select", icon=":material/travel_explore:")
ui.sidebar_summary()
