"""The points a map is made of when the user chose filters for it: the filtered rows as a feature
set of their own, with their own key (so their neighbour graph and maps are cached apart)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace

from embedviz.data.featureset import FeatureSet
from embedviz.errors import DataError
from embedviz.explore.filters import Filter, apply_filters, describe_filter, filter_columns

__all__ = ["kept_features", "kept_key"]


def kept_key(features_key: str, filters: Iterable[Filter]) -> str:
    """The key of the points ``filters`` keep of the features stored under ``features_key``: the same
    filters give the same key, other filters (or other values) another."""
    digest = hashlib.sha256(json.dumps([features_key, [describe_filter(f) for f in filters]]).encode())
    return f"{features_key}-kept-{digest.hexdigest()[:32]}"


def kept_features(full: FeatureSet, filters: Iterable[Filter]) -> FeatureSet:
    """``full`` reduced to the rows ``filters`` keep. Filters on columns ``full`` lacks (clusters or sets
    made on another map) are left out; with nothing filtered out, ``full`` itself is returned.

    Raises:
        DataError: the filters keep no point.
    """
    usable = [f for f in filters if set(filter_columns(f)) <= set(full.samples.columns)]
    if not usable:
        return full
    mask = apply_filters(full.samples, usable)
    if not mask.any():
        raise DataError("The map's filters keep no points; choose others on Explore or map all points.")
    if mask.all():
        return full
    return replace(full, features=full.features[mask], samples=full.samples[mask].reset_index(drop=True),
                   skipped=full.skipped, key=kept_key(full.key, usable))
