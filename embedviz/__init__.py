"""embedviz: see what an image model has learned, as an interactive embedding map.

The public API, one module per stage: images in, a model, features out (cached), reduced to
a map, filtered, drawn and exported. Only :mod:`embedviz.ui` imports streamlit.
"""

from .errors import Cancelled, DataError, EmbedVizError, ModelError, ReducerError
from .features import compute_features, extract_features, resolve_device
from .figures import scatter_figure
from .filters import CategoryFilter, RangeFilter, TextFilter, apply_filters
from .images import ImageCollection, load_collection
from .layers import default_layer, list_layers
from .models import LoadedModel, list_architectures, load_model
from .reducers import Embedding, compute_embedding, reduce
from .selection import rows_for_ids, selected_rows
from .store import FeatureSet, FeatureStore, load_feature_set, save_feature_set

__version__ = "0.1.0"

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
