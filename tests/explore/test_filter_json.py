"""Filters survive the trip through a run's JSON (what a link reopens)."""

import json

from embedviz.explore.filter_json import deserialise_filters, serialise_filters
from embedviz.explore.filters import CategoryFilter, RangeFilter, TextFilter, TopKFilter


def test_every_kind_of_filter_comes_back_as_it_was():
    filters = (CategoryFilter("label", ("cat", "dog")), RangeFilter("confidence", 0.2, 0.8),
               TextFilter("path", "img_1", regex=True), TopKFilter(3, contains=False))
    assert deserialise_filters(json.loads(json.dumps(serialise_filters(filters)))) == filters


def test_unknown_entries_are_skipped_and_nothing_gives_nothing():
    assert deserialise_filters([{"type": "Bogus", "column": "x"}]) == ()
    assert deserialise_filters(None) == ()
