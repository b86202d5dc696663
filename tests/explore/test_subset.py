"""The points a map is made of when the user chose filters for it."""

import numpy as np
import pandas as pd
import pytest

from embedviz.data.featureset import FeatureSet
from embedviz.errors import DataError
from embedviz.explore.filters import CategoryFilter, RangeFilter
from embedviz.explore.subset import kept_features


def _features() -> FeatureSet:
    samples = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "label": ["cat", "dog", "cat", "dog"],
                            "confidence": [0.1, 0.9, 0.8, 0.2]})
    return FeatureSet(np.arange(8, dtype=np.float32).reshape(4, 2), samples, pd.DataFrame(), {}, key="k")


def test_only_the_kept_rows_are_mapped_with_their_ids_and_a_key_of_their_own():
    kept = kept_features(_features(), [CategoryFilter("label", ("cat",))])
    assert kept.samples["sample_id"].tolist() == ["a", "c"]
    np.testing.assert_array_equal(kept.features, [[0, 1], [4, 5]])
    assert kept.key.startswith("k-kept-") and kept.key != "k"
    assert kept_features(_features(), [CategoryFilter("label", ("cat",))]).key == kept.key
    assert kept_features(_features(), [CategoryFilter("label", ("dog",))]).key != kept.key


def test_no_filter_or_nothing_filtered_out_maps_every_point():
    full = _features()
    assert kept_features(full, []) is full
    assert kept_features(full, [RangeFilter("confidence", 0.0, 1.0)]) is full


def test_filters_on_columns_the_features_lack_are_left_out():
    full = _features()
    assert kept_features(full, [CategoryFilter("cluster", ("1",))]) is full


def test_filters_that_keep_nothing_are_said_plainly():
    with pytest.raises(DataError, match="keep no points"):
        kept_features(_features(), [CategoryFilter("label", ("horse",))])
