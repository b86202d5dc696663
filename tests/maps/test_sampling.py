"""The dashboard's sample policy: when a map is fitted on a sample, and which sample the user's choices name."""

from embedviz.maps.reducers import Sample
from embedviz.maps.sampling import AUTO_SAMPLE_FROM, AUTO_SAMPLE_SIZE, auto_sample, chosen_sample


def test_small_data_are_fitted_whole_and_large_data_start_with_a_sample():
    assert auto_sample(AUTO_SAMPLE_FROM - 1, ["label"]) is None
    assert auto_sample(AUTO_SAMPLE_FROM, ["label"]) == {"ev_sample_on": True, "ev_sample_size": AUTO_SAMPLE_SIZE,
                                                        "ev_stratify": "label"}


def test_without_labels_the_automatic_sample_is_not_stratified():
    assert auto_sample(1_000_000, ["path"]) == {"ev_sample_on": True, "ev_sample_size": AUTO_SAMPLE_SIZE}


def test_the_users_sample_is_honoured_and_stratified_by_an_existing_column():
    assert chosen_sample(1_000, "tsne", True, 100, "label", ["label"]) == Sample(100, "label")
    assert chosen_sample(1_000, "umap", True, 100, "(none)", ["label"]) == Sample(100)
    assert chosen_sample(1_000, "umap", True, 100, None, ["label"]) == Sample(100)
    assert chosen_sample(1_000, "umap", True, 100, "cluster", ["label"]) == Sample(100)  # a column gone since


def test_no_sample_when_off_when_it_would_hold_every_point_or_for_given_coordinates():
    assert chosen_sample(1_000, "tsne", False, 100, "label", ["label"]) is None
    assert chosen_sample(1_000, "tsne", True, 1_000, "label", ["label"]) is None
    assert chosen_sample(1_000, "tsne", True, 0, "label", ["label"]) is None
    assert chosen_sample(1_000, "tsne", True, None, "label", ["label"]) is None
    assert chosen_sample(1_000, "precomputed", True, 100, "label", ["label"]) is None
