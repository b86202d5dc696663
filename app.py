"""embedviz home: the current dataset, model and map at a glance. Opens on the built-in demo."""

import streamlit as st

from embedviz import ui
from embedviz.explore.summary import accuracy
from embedviz.maps.reducers import REDUCERS
from embedviz.ui.map_component import map_chart

ui.page_setup("Home")
st.title("embedviz")
st.caption("What has your image model learned? Features from any layer, reduced to a map you can explore.")

with ui.guard():
    view = ui.current_map()
model = ui.current_model()
samples = view.features.samples

cols = st.columns(5)
cols[0].metric("Images", f"{len(samples):,}", help=f"{len(view.features.skipped)} could not be read")
cols[1].metric("Classes", samples["label"].nunique() if "label" in samples else "—")
score = accuracy(samples)
cols[2].metric("Accuracy" + (" (test)" if score and score.scope == "test" else ""),
               f"{score.value:.1%}" if score else "—",
               help=f"{score.mistakes} mistakes in {score.count:,} images" if score else "needs labels the model knows")
cols[3].metric("Feature size", f"{view.features.features.shape[1]:,}",
               help=f"layer {ui.plain(view.features.manifest.get('layer'))}")
cols[4].metric("Map", f"{REDUCERS[view.embedding.method].label} {view.embedding.n_components}-D",
               help=f"computed in {view.embedding.seconds:.1f} s")

color = "label" if "label" in samples.columns else None
st.markdown(f"**{ui.plain(view.collection.name)}** through **{ui.plain(ui.model_label(model))}**, "
            f"layer `{str(view.features.manifest.get('layer')).replace('`', chr(39))}`"
            + (", coloured by label." if color else "."))
map_chart(ui.home_figure(view, color), samples, key="home_map", color=color, select=False)

st.markdown("**Next:** ")
links = st.columns(4)
links[0].page_link("pages/1_Data_and_model.py", label="Choose data and model", icon=":material/folder_open:")
links[1].page_link("pages/2_Extract.py", label="Extract features", icon=":material/memory:")
links[2].page_link("pages/3_Reduce.py", label="Tune the map", icon=":material/tune:")
links[3].page_link("pages/4_Explore.py", label="Explore and select", icon=":material/travel_explore:")
ui.sidebar_summary()
