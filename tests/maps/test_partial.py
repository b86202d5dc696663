"""A stopped map is shown as it was at its last frame, marked partial, with the rest of a sample's points
waiting at the centre."""

import numpy as np

from embedviz.maps.partial import partial_embedding

SETTINGS = {"method": "tsne", "params": {"perplexity": 5.0}, "n_components": 2, "random_state": 3}


def test_a_stopped_map_keeps_its_last_frame_and_says_it_is_partial():
    coords = np.arange(8, dtype=np.float32).reshape(4, 2)
    embedding = partial_embedding('{"a": 1}', {"coords": coords, "done": 40, "total": 750}, SETTINGS)
    assert embedding.partial and embedding.method == "tsne" and embedding.random_state == 3
    np.testing.assert_array_equal(embedding.coords, coords)
    assert "Stopped at step 40 of 750" in embedding.notes[0] and "Continue" in embedding.notes[0]


def test_points_not_fitted_yet_wait_at_the_centre_of_the_fitted_ones():
    coords = np.array([[0.0, 0.0], [2.0, 4.0]], dtype=np.float32)
    frame = {"coords": coords, "done": 1, "total": 2, "rows": np.array([1, 3]), "n": 4}
    full = partial_embedding("t", frame, SETTINGS).coords
    assert full.shape == (4, 2) and full.dtype == np.float32
    np.testing.assert_array_equal(full[[1, 3]], coords)
    np.testing.assert_array_equal(full[[0, 2]], [[1.0, 2.0], [1.0, 2.0]])


def test_the_key_names_the_settings_and_the_step():
    frame = {"coords": np.zeros((3, 2)), "done": 10, "total": 20}
    a = partial_embedding("settings a", frame, SETTINGS).key
    assert a == partial_embedding("settings a", frame, SETTINGS).key and a.endswith("-10")
    assert a != partial_embedding("settings b", frame, SETTINGS).key
    assert a != partial_embedding("settings a", {**frame, "done": 11}, SETTINGS).key
