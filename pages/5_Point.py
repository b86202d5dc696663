"""One point up close: its image, metadata and top predictions, and its nearest neighbours in feature
space (not on the map) with distances and labels; a neighbour's button moves to it."""

import streamlit as st

from embedviz import ui
from embedviz.data.thumbnails import thumbnail
from embedviz.explore.point import METRICS, feature_neighbours, top_predictions
from embedviz.explore.selection import selected_rows

ui.page_setup("Point")
st.title("A point up close")

with ui.guard():
    view = ui.current_map()
samples = view.samples
ids = samples["sample_id"].astype(str).tolist()
if st.session_state.get("ev_point") not in set(ids):
    chosen = selected_rows(st.session_state.get("explore_map"), view.embedding.coords)  # first selected on Explore
    st.session_state["ev_point"] = ids[chosen[0]] if len(chosen) else ids[0]

top = st.columns([3, 1, 1])
top[0].selectbox("Point (type to search its id)", ids, **ui.bound("ev_point"))
# the widget's own default is the app's, so the address names the number only when the user changed it: a
# link from Explore then opens the page as it is, with no second entry in the browser's history for Back to land on
k = top[1].number_input("Neighbours", 1, 100, value=ui.DEFAULTS["ev_point_k"], **ui.bound("ev_point_k"))
metric = top[2].selectbox("Distance", METRICS, **ui.bound("ev_point_metric"))
row = ids.index(st.session_state["ev_point"])
sample = samples.iloc[row]
root = view.collection.root


def _show_image(path, size: int) -> None:
    if isinstance(path, str) and path:
        st.image(thumbnail(root / path, size))


label = f" · label {ui.plain(sample['label'])}" if "label" in sample.index else ""
st.subheader(f"{ui.plain(sample['sample_id'])}{label}", anchor=False)
left, right = st.columns([2, 5])
with left:
    _show_image(sample.get("path"), 320)
    predictions = top_predictions(sample)
    if len(predictions):
        st.markdown("**The model's top predictions**")
        st.dataframe(predictions, hide_index=True, column_config={
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.3f")})
    st.markdown("**Metadata**")
    st.dataframe(sample.rename("value").astype(str).to_frame(), width="stretch")
with right:
    with ui.guard():
        near = feature_neighbours(view.features.features, row, int(k), metric)
    rows = samples.iloc[near["row"].to_numpy()]
    if "label" in samples.columns and len(near):
        same = (rows["label"].astype(str) == str(sample["label"])).mean()
        st.markdown(f"**{len(near)} nearest in feature space** · {same:.0%} share its label "
                    f"({ui.plain(sample['label'])})")
    else:
        st.markdown(f"**{len(near)} nearest in feature space**")
    grid = st.columns(4)
    for i, ((_, neighbour), distance) in enumerate(zip(rows.iterrows(), near["distance"])):
        with grid[i % 4]:
            _show_image(neighbour.get("path"), 112)
            label = f" · label {ui.plain(neighbour['label'])}" if "label" in neighbour.index else ""
            st.caption(f"{ui.plain(neighbour['sample_id'])}{label} · distance {distance:.3g}")
            st.button("Go to this point", key=f"go_{neighbour['sample_id']}",
                      on_click=st.session_state.update, kwargs={"ev_point": str(neighbour["sample_id"])})
ui.sidebar_summary()
