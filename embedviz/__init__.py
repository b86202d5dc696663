"""embedviz: see what an image model has learned, as an interactive embedding map.

The public API, one module per stage: images in, a model, features out (cached), reduced to
a map, filtered, drawn and exported. Only :mod:`embedviz.ui` imports streamlit.

Each name is imported on first use (PEP 562), so ``import embedviz`` and the command line start
without torch, pandas or plotly; ``from embedviz import X`` works as for any attribute.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module that defines it.
_SOURCES = {
    "Cancelled": "embedviz.errors", "DataError": "embedviz.errors", "EmbedVizError": "embedviz.errors",
    "ModelError": "embedviz.errors", "ReducerError": "embedviz.errors",
    "compute_features": "embedviz.extract.features", "extract_features": "embedviz.extract.features",
    "resolve_device": "embedviz.extract.devices",
    "scatter_figure": "embedviz.explore.figures",
    "CategoryFilter": "embedviz.explore.filters", "RangeFilter": "embedviz.explore.filters",
    "TextFilter": "embedviz.explore.filters", "apply_filters": "embedviz.explore.filters",
    "ImageCollection": "embedviz.data.images", "load_collection": "embedviz.data.images",
    "default_layer": "embedviz.extract.layers", "list_layers": "embedviz.extract.layers",
    "LoadedModel": "embedviz.extract.models", "list_architectures": "embedviz.extract.models",
    "load_model": "embedviz.extract.models",
    "Embedding": "embedviz.maps.reducers", "compute_embedding": "embedviz.maps.reducers",
    "reduce": "embedviz.maps.reducers",
    "rows_for_ids": "embedviz.explore.selection", "selected_rows": "embedviz.explore.selection",
    "FeatureSet": "embedviz.data.featureset", "save_feature_set": "embedviz.data.featureset",
    "FeatureStore": "embedviz.extract.store", "load_feature_set": "embedviz.data.precomputed",
}

__all__ = [
    "Cancelled", "DataError", "EmbedVizError", "ModelError", "ReducerError",
    "compute_features", "extract_features", "resolve_device",
    "scatter_figure",
    "CategoryFilter", "RangeFilter", "TextFilter", "apply_filters",
    "ImageCollection", "load_collection",
    "default_layer", "list_layers",
    "LoadedModel", "list_architectures", "load_model",
    "Embedding", "compute_embedding", "reduce",
    "rows_for_ids", "selected_rows",
    "FeatureSet", "FeatureStore", "load_feature_set", "save_feature_set",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from embedviz.data.featureset import FeatureSet, save_feature_set
    from embedviz.data.images import ImageCollection, load_collection
    from embedviz.data.precomputed import load_feature_set
    from embedviz.errors import Cancelled, DataError, EmbedVizError, ModelError, ReducerError
    from embedviz.explore.figures import scatter_figure
    from embedviz.explore.filters import CategoryFilter, RangeFilter, TextFilter, apply_filters
    from embedviz.explore.selection import rows_for_ids, selected_rows
    from embedviz.extract.devices import resolve_device
    from embedviz.extract.features import compute_features, extract_features
    from embedviz.extract.layers import default_layer, list_layers
    from embedviz.extract.models import LoadedModel, list_architectures, load_model
    from embedviz.extract.store import FeatureStore
    from embedviz.maps.reducers import Embedding, compute_embedding, reduce


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for, then kept here."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'embedviz' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
