"""Reading Compare's aligned maps: consecutive pairs, each set's map, paths through the sets, moved most."""

import numpy as np
import pandas as pd

from embedviz.maps.aligned import coords, moved_most, pairs, paths

MAPS = pd.DataFrame({"1_x": [0.0, 1.0], "1_y": [0.0, 2.0], "2_x": [5.0, 6.0], "2_y": [7.0, 8.0]})


def test_sets_are_paired_one_after_the_other():
    assert pairs(1) == [] and pairs(3) == [(0, 1), (1, 2)]


def test_each_sets_map_and_a_points_path_through_them():
    np.testing.assert_array_equal(coords(MAPS, 1), [[5.0, 7.0], [6.0, 8.0]])
    path = paths(MAPS, np.array([1]), 2)
    assert path.shape == (1, 2, 2)
    np.testing.assert_array_equal(path[0], [[1.0, 2.0], [6.0, 8.0]])


def test_the_points_whose_neighbourhood_changed_most_come_first_ties_in_row_order():
    samples = pd.DataFrame({"sample_id": list("abcde")})
    overlap = np.array([0.9, 0.1, 0.5, 0.1, 1.0])
    worst, median = moved_most(samples, overlap, count=3)
    assert worst["sample_id"].tolist() == ["b", "d", "c"] and median == 0.5
