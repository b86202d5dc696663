"""Reducers: features to 2-D/3-D maps, with parameter specs the UI turns into sliders."""

from .embedding import Embedding, Sample, compute_embedding, load_embedding, estimate_seconds, features_digest, reduce, scale_for_display
from .methods import REDUCERS, Reducer, available_methods, get_reducer
from .timing import MapProgress
from .params import GivenParams, ParamSpec, PCAParams, TSNEParams, UMAPParams, make_params, param_specs

__all__ = [
    "Embedding", "Sample", "compute_embedding", "load_embedding", "estimate_seconds", "features_digest", "reduce", "scale_for_display",
    "REDUCERS", "Reducer", "available_methods", "get_reducer",
    "MapProgress", "GivenParams", "ParamSpec", "PCAParams", "TSNEParams", "UMAPParams", "make_params", "param_specs",
]
