"""embedviz: see what an image model has learned, as an interactive embedding map.

The public API, one module per stage: images in, a model, features out (cached), reduced to
a map, filtered, drawn and exported. Only :mod:`embedviz.ui` imports streamlit.
"""

from embedviz.data.featureset import FeatureSet, save_feature_set
from embedviz.data.images import ImageCollection, load_collection
from embedviz.data.precomputed import load_feature_set
from embedviz.errors import Cancelled, DataError, EmbedVizError, ModelError, ReducerError
from embedviz.explore.figures import scatter_figure
from embedviz.explore.filters import CategoryFilter, RangeFilter, TextFilter, apply_filters
from embedviz.explore.selection import rows_for_ids, selected_rows
from embedviz.extract.features import compute_features, extract_features, resolve_device
from embedviz.extract.layers import default_layer, list_layers
from embedviz.extract.models import LoadedModel, list_architectures, load_model
from embedviz.extract.store import FeatureStore
from embedviz.maps.reducers import Embedding, compute_embedding, reduce

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
