"""Choose the images, the model and the layer."""

import streamlit as st

from embedviz import ui
from embedviz.demo import EARLY_WEIGHTS
from embedviz.layers import default_layer, list_layers
from embedviz.models import DEMO, PIXELS, PRETRAINED, RANDOM, list_architectures
from embedviz.ui.preprocessing import preprocessing_panel
from embedviz.ui.uploads import save_class_index, save_images, save_weights

ui.page_setup("Data & model", ":material/folder_open:")
st.title("Data & model")

st.subheader("Images")
SOURCES = ["Built-in demo (digits)", "Upload", "Path on this server"]
source = st.radio("Where are the images?", SOURCES, horizontal=True,
                  index={"demo": 0, "upload": 1}.get(ui.dataset_spec().get("via", ui.dataset_spec()["kind"]), 2))
with ui.guard(stop=False):  # a bad choice is said here and the current data stays
    if source == "Built-in demo (digits)":
        if ui.dataset_spec()["kind"] != "demo":
            ui.set_dataset({"kind": "demo"})
    elif source == "Upload":
        files = st.file_uploader("A .zip/.tar of class folders, or several images", accept_multiple_files=True,
                                 type=["zip", "tar", "gz", "tgz", "png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"])
        if files and st.button("Use these images", type="primary"):
            ui.set_dataset({"kind": "path", "via": "upload", "path": str(save_images(files))})
    else:
        path = st.text_input("Folder, archive or CSV/Parquet manifest", placeholder="/data/test_images")
        prefix, column = st.columns(2)
        prefix = prefix.text_input("Path prefix for a manifest's relative paths (optional)")
        column = column.text_input("Manifest column with the paths (optional; found by name otherwise)")
        if st.button("Use this path", type="primary"):
            if not path.strip():
                st.warning("Type the path of a folder, archive or manifest first.")
            else:
                ui.set_dataset({"kind": "path", "path": path.strip(), "prefix": prefix.strip(), "column": column.strip()})
with ui.guard():
    collection = ui.current_collection()

table = collection.samples
st.success(f"**{collection.name}**: {len(table):,} images"
           + (f" in {table['label'].nunique()} classes" if collection.has_labels else " (no labels)"))
st.dataframe(table.head(200), hide_index=True, height=220)

st.subheader("Model")
architectures = list_architectures()
current = ui.model_spec()
architecture = st.selectbox("Architecture", architectures, index=architectures.index(current["architecture"]),
                            help="demo: the CNN trained on the digits · pixels: raw intensities, no model · "
                                 "others: torchvision classifiers and segmentation models with your weights")
weights = None
if architecture == DEMO:
    early = st.radio("Checkpoint", ["final (12 epochs)", "early (epoch 1)"], horizontal=True,
                     index=1 if current.get("weights") == str(EARLY_WEIGHTS) else 0).startswith("early")
    weights = str(EARLY_WEIGHTS) if early else None
elif architecture != PIXELS:
    kind = st.radio("Weights", ["Upload a file", "Random (untrained baseline)", "torchvision pretrained (downloads)"],
                    horizontal=True)
    if kind.startswith("Upload"):
        upload = st.file_uploader("State dict (.safetensors, .pt, .pth); the number of classes is read from it",
                                  type=["safetensors", "pt", "pth"])
        with ui.guard(stop=False):
            weights = str(save_weights(upload)) if upload else None
    else:
        weights = RANDOM if kind.startswith("Random") else PRETRAINED
chosen = {"architecture": architecture, "weights": weights}
needs_file = architecture not in (DEMO, PIXELS) and weights is None
if (architecture, weights) != (current["architecture"], current.get("weights")) and not needs_file:
    with ui.guard(stop=False), st.spinner("Loading the model"):
        ui.set_model(chosen)  # a bad file is said here; the current model stays

with ui.guard():
    model = ui.current_model()
st.success(f"**Model:** {ui.model_label(model)}")
preprocessing_panel(model)
index = st.file_uploader("Class index (optional): JSON {\"0\": \"cat\", …} or text, naming label and prediction ids",
                         type=["json", "txt"])
if index is not None:
    with ui.guard(stop=False):  # a wrong count is said here, and nothing changes
        path = str(save_class_index(index))
        if path != ui.class_index():
            ui.set_class_index(path)
            st.rerun()
if ui.class_index():
    named, remove = st.columns([3, 1])
    named.caption(f"Labels and predictions are named by {ui.class_index().rsplit('/', 1)[-1]}.")
    if remove.button("Remove class index"):
        ui.set_class_index(None)
        st.rerun()

st.subheader("Layer")
layers = list_layers(model)
default = default_layer(model)
chosen_layer = st.session_state.get("layer") or default
layer = st.selectbox("Take features from", layers, index=layers.index(chosen_layer) if chosen_layer in layers else 0,
                     format_func=lambda n: f"{n}  (default: the classifier's input)" if n == default else n)
ui.set_layer(layer)
stored = ui.stored_features()
st.caption("Features for this choice are already stored; the map opens at once." if stored is not None
           else "Features for this choice will be extracted on the Extract page (or when a map needs them).")
st.page_link("pages/2_Extract.py", label="Next: extract features", icon=":material/memory:")
ui.sidebar_summary()
