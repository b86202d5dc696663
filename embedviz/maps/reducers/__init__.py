"""Reducers: features to 2-D/3-D maps, with parameter specs the UI turns into sliders."""

from embedviz.maps.reducers.embedding import (
    Embedding,
    MapRequest,
    Sample,
    compute_embedding,
    estimate_seconds,
    features_digest,
    load_embedding,
    reduce,
    scale_for_display,
)
from embedviz.maps.reducers.methods import REDUCERS, Reducer, available_methods, get_reducer
from embedviz.maps.reducers.params import (
    GivenParams,
    ParamSpec,
    PCAParams,
    TSNEParams,
    UMAPParams,
    make_params,
    param_specs,
)
from embedviz.maps.reducers.timing import MapProgress

__all__ = [
    "Embedding", "MapRequest", "Sample", "compute_embedding", "load_embedding", "estimate_seconds", "features_digest",
    "reduce",
    "scale_for_display",
    "REDUCERS", "Reducer", "available_methods", "get_reducer",
    "MapProgress", "GivenParams", "ParamSpec", "PCAParams", "TSNEParams", "UMAPParams", "make_params", "param_specs",
]
