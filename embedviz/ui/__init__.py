"""The Streamlit layer: the only part of embedviz that imports streamlit."""

from embedviz.ui.links import bound, catalog, viewer
from embedviz.ui.reduce import map_filters_note, preview_figure, size_controls
from embedviz.ui.state import (
    class_index,
    clear_map_filters,
    clear_store,
    continue_map,
    current_collection,
    current_layer,
    current_map,
    current_model,
    dataset_spec,
    engine_control,
    extraction_job,
    is_precomputed,
    map_filters,
    map_quality,
    model_label,
    model_spec,
    note_map_run,
    page_setup,
    precomputed_features,
    reducer_settings,
    require_embedding,
    require_features,
    runner,
    sample_choice,
    set_class_index,
    set_dataset,
    set_layer,
    set_map_filters,
    set_model,
    set_preprocessing,
    settle_method,
    source_label,
    start_extraction,
    stop_requested,
    stored_features,
    wait_for,
)
from embedviz.ui.summary import sidebar_summary
from embedviz.ui.widgets import gallery, guard, param_widgets, plain, progress_callback

__all__ = [
    "class_index", "set_class_index", "set_preprocessing",
    "current_collection", "current_layer", "current_map", "current_model", "dataset_spec", "model_label",
    "model_spec", "page_setup", "reducer_settings", "require_embedding", "require_features", "set_dataset",
    "set_layer", "set_model", "stored_features", "sidebar_summary", "gallery", "guard", "param_widgets",
    "progress_callback", "is_precomputed", "precomputed_features", "settle_method",
    "runner", "extraction_job", "start_extraction", "engine_control", "wait_for", "clear_store", "map_quality",
    "sample_choice", "stop_requested", "continue_map", "size_controls", "preview_figure", "plain", "set_map_filters",
    "clear_map_filters", "map_filters", "map_filters_note", "note_map_run", "source_label", "bound", "catalog",
    "viewer",
]
