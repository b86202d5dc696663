"""The Streamlit layer: the only part of embedviz that imports streamlit."""

from .state import (
    class_index, set_class_index, set_preprocessing, current_collection, current_layer, current_map, current_model, dataset_spec, model_label, model_spec,
    page_setup, reducer_settings, require_embedding, require_features, set_dataset, set_layer, set_model,
    stored_features, is_precomputed, precomputed_features, settle_method, runner, extraction_job, start_extraction,
    engine_control,
    wait_for, clear_store, map_quality, sample_choice, stop_requested, continue_map, set_map_filters,
    clear_map_filters, map_filters, note_map_run, source_label,
)
from .links import bound, catalog, viewer
from .reduce import map_filters_note, preview_figure, size_controls
from .summary import sidebar_summary
from .widgets import gallery, guard, param_widgets, plain, progress_callback

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
