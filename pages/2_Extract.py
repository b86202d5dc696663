"""Run the images through the model, with progress; a stored result is reused."""

import streamlit as st

from embedviz import ui
from embedviz.extract.devices import DEVICES
from embedviz.ui.store import store_panel

ui.page_setup("Extract")
st.title("Extract features")

if ui.is_precomputed():
    with ui.guard():
        features = ui.precomputed_features()
    st.success(f"Nothing to extract: {len(features):,} feature vectors of {features.features.shape[1]:,} dimensions "
               f"were loaded from {ui.plain(features.manifest['source'].rsplit('/', 1)[-1])}.")
    st.page_link("pages/3_Reduce.py", label="Next: make the map", icon=":material/tune:")
    ui.sidebar_summary(job_history=True)
    st.stop()
with ui.guard():
    collection, model = ui.current_collection(), ui.current_model()
    layer = ui.current_layer(model)
st.markdown(f"**{ui.plain(collection.name)}** ({len(collection):,} images) "
            f"through **{ui.plain(ui.model_label(model))}**, "
            f"layer `{str(layer).replace('`', chr(39))}`.")

ui.engine_control()
left, right = st.columns(2)
left.selectbox("Device", DEVICES, key="ev_device", help="auto: CUDA, then Apple MPS, then CPU")
right.number_input("Batch size", 1, 4096, key="ev_batch_size")

stored = ui.stored_features()
job = ui.extraction_job()
if stored is None:
    # One place for the button: above the progress while a click starts the work, and drawn there again when
    # a wait ends without features (cancelled or failed), so one click resumes from the finished shards.
    running = job is not None and job.active
    button = st.empty()
    clicked = not running and button.button("Extract features", type="primary")
    if running or clicked:
        note = st.empty()
        note.caption("Extraction runs in the background: you can leave this page, or open another tab; "
                     "progress shows in the sidebar of every page.")
        with ui.guard(stop=False):  # cancelled or failed: the message, and the page goes on
            ui.wait_for(ui.start_extraction())
            stored = ui.stored_features()
        note.empty()
        if stored is None:
            if not clicked:
                button.button("Extract features", type="primary")
        else:
            resumed = stored.manifest.get("resumed_images") or 0
            seconds = max(stored.manifest["seconds"], 1e-9)
            run = len(stored) + len(stored.skipped) - resumed  # the images this run went through
            st.success(f"Extracted {len(stored):,} feature vectors in {stored.manifest['seconds']:.1f} s "
                       f"({run / seconds:,.0f} images/s on {stored.manifest['device']})"
                       + (f", {resumed:,} of them resumed from an earlier run" if resumed else "") + ".")
    elif job is not None and job.status in ("failed", "cancelled"):
        st.warning(f"The last extraction {'failed' if job.status == 'failed' else 'was cancelled'} at {job.done:,} "
                   f"of {job.total:,} images" + (f": {ui.plain(job.error)}" if job.status == "failed"
                                                 else "; extracting again resumes from there."))
    else:
        st.info("Not extracted yet for this data, model and layer.")
else:
    when = stored.manifest.get("created", "earlier")
    st.success(f"Cache hit: these features were computed {when} in {stored.manifest.get('seconds', 0):.1f} s "
               f"on {stored.manifest.get('device')}; nothing to recompute.")

if stored is not None:
    cols = st.columns(4)
    cols[0].metric("Feature vectors", f"{len(stored):,}")
    cols[1].metric("Dimensions", f"{stored.features.shape[1]:,}")
    cols[2].metric("Skipped images", f"{len(stored.skipped):,}")
    cols[3].metric("Store key", stored.key[:12])
    copies = int(stored.samples["duplicate_of"].notna().sum()) if "duplicate_of" in stored.samples else 0
    if copies:
        st.warning(f"{copies:,} images are byte-for-byte copies of others; the column duplicate_of names the "
                   "first copy, so you can filter them out on the Explore page.")
    if len(stored.skipped):
        st.warning(f"{len(stored.skipped):,} images could not be read and were left out:")
        st.dataframe(stored.skipped, hide_index=True)
    with st.expander("Samples table (labels, predictions, metadata)"):
        st.dataframe(stored.samples.head(500), hide_index=True)
    st.page_link("pages/3_Reduce.py", label="Next: make the map", icon=":material/tune:")

store_panel()
ui.sidebar_summary(job_history=True)
