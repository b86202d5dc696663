"""Choose the images, the model and the layer."""

import streamlit as st

from embedviz import ui
from embedviz.data.demo import EARLY_WEIGHTS
from embedviz.errors import ModelError
from embedviz.extract.layers import default_layer, list_layers
from embedviz.extract.models import DEMO, PIXELS, check_architecture, list_architectures, needs_weights, typed_examples
from embedviz.extract.spec import ModelSpec
from embedviz.ui.preprocessing import preprocessing_panel
from embedviz.ui.sources import data_source_panel, precomputed_panel, server_class_index, weights_source
from embedviz.ui.uploads import save_class_index

ui.page_setup("Data & model")
st.title("Data & model")

st.subheader("Data")
data_source_panel()
with ui.guard():
    collection = ui.current_collection()

table = collection.samples
if ui.is_precomputed():
    precomputed_panel(collection)
    ui.sidebar_summary()
    st.stop()
st.success(f"**{ui.plain(collection.name)}**: {len(table):,} images"
           + (f" in {table['label'].nunique()} classes" if collection.has_labels else " (no labels)"))
st.dataframe(table.head(200), hide_index=True, height=220)

st.subheader("Model")
current = ui.model_spec()
architectures = list(dict.fromkeys([*list_architectures(), *typed_examples(), current.architecture]))
architecture = st.selectbox("Architecture", architectures, index=architectures.index(current.architecture),
                            accept_new_options=True,
                            help="demo: the CNN trained on the digits · pixels: raw intensities, no model · "
                                 "others: torchvision classifiers and segmentation models with your weights. "
                                 "Or type any timm model as timm:NAME (timm:resnet50.a1_in1k, timm:convnext_tiny, "
                                 "timm:vit_small_patch14_dinov2.lvd142m) or an open_clip model as clip:NAME "
                                 "(clip:ViT-B-32, clip:ViT-B-16-SigLIP), with weights as timm or open_clip save them")
architecture = (architecture or current.architecture).strip()
if architecture not in architectures:  # typed: a typo or a missing package is said here; the current model stays
    try:
        check_architecture(architecture)
    except ModelError as exc:
        st.error(ui.plain(str(exc)))
        architecture = current.architecture
weights = None
if architecture == DEMO:
    early = st.radio("Checkpoint", ["final (12 epochs)", "early (epoch 1)"], horizontal=True,
                     index=1 if current.weights == str(EARLY_WEIGHTS) else 0).startswith("early")
    weights = str(EARLY_WEIGHTS) if early else None
elif architecture != PIXELS:
    weights = weights_source(architecture, current.weights if architecture == current.architecture else None)
if (architecture, weights) != (current.architecture, current.weights):
    with ui.guard(stop=False), st.spinner("Loading the model"):
        ui.set_model(ModelSpec(architecture, weights))  # a bad file is said here; the model stays

spec = ui.model_spec()
if needs_weights(spec.architecture, spec.weights):
    st.info(f"**Model:** {ui.plain(spec.architecture)} — waiting for its weights: give a file above, or choose "
            "Random or pretrained. Extracting needs them.", icon=":material/hourglass_empty:")
    ui.sidebar_summary()
    st.stop()
with ui.guard():
    model = ui.current_model()
st.success(f"**Model:** {ui.plain(ui.model_label(model))}")
preprocessing_panel(model)
index = st.file_uploader("Class index (optional): JSON {\"0\": \"cat\", …} or text, naming label and prediction ids",
                         type=["json", "txt"])
on_server = server_class_index()
if index is not None or on_server:
    with ui.guard(stop=False):  # a wrong count is said here, and nothing changes
        path = on_server or str(save_class_index(index))
        if path != ui.class_index():
            ui.set_class_index(path)
            st.rerun()
if ui.class_index():
    named, remove = st.columns([3, 1])
    named.caption(f"Labels and predictions are named by {ui.plain(ui.class_index().rsplit('/', 1)[-1])}.")
    if remove.button("Remove class index"):
        ui.set_class_index(None)
        st.rerun()

st.subheader("Layer")
layers = list_layers(model)
default = default_layer(model)
chosen_layer = st.session_state.get("layer") or default
layer = st.selectbox("Take features from", layers, index=layers.index(chosen_layer) if chosen_layer in layers else 0,
                     format_func=lambda n: n if n != default else f"{n}  (default: the model's output embedding)"
                     if model.task == "embedding" else f"{n}  (default: the classifier's input)")
ui.set_layer(layer)
stored = ui.stored_features()
st.caption("Features for this choice are already stored; the map opens at once." if stored is not None
           else "Features for this choice will be extracted on the Extract page (or when a map needs them).")
st.page_link("pages/2_Extract.py", label="Next: extract features", icon=":material/memory:")
ui.sidebar_summary()
