"""The Streamlit layer: the only part of embedviz that imports streamlit.

Its modules import one another in one direction, from the bottom: ``session`` (shared keys and their
defaults) and ``widgets`` (escaping, guards, progress bars), ``server`` and ``auth`` (configuration and
who is looking), ``uploads``, ``choices`` (the current data, model and layer, and their loaders),
``runs``, ``jobs``, ``housekeeping``, ``share``, ``map_settings`` and ``maps`` (the current map), ``page``,
and the panels pages draw (``sources``, ``summary``, ``reduce``, ``explore``, ``compare``, ...).
"""

from embedviz.ui.auth import viewer
from embedviz.ui.choices import (
    class_index,
    current_collection,
    current_layer,
    current_model,
    dataset_spec,
    is_precomputed,
    model_label,
    model_spec,
    precomputed_features,
    reducer_settings,
    set_class_index,
    set_dataset,
    set_layer,
    set_model,
    set_preprocessing,
    source_label,
    stored_features,
)
from embedviz.ui.housekeeping import clear_store
from embedviz.ui.jobs import engine_control, extraction_job, runner, start_extraction, wait_for
from embedviz.ui.map_settings import (
    clear_map_filters,
    continue_map,
    map_filters,
    sample_choice,
    set_map_filters,
    settle_method,
    stop_requested,
)
from embedviz.ui.maps import current_map, home_figure, map_quality, note_map_run, require_embedding, require_features
from embedviz.ui.page import page_setup
from embedviz.ui.reduce import map_filters_note, preview_figure, size_controls
from embedviz.ui.runs import catalog
from embedviz.ui.session import DEFAULTS, bound
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
    "viewer", "DEFAULTS", "home_figure",
]
