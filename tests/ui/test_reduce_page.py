"""The Reduce page says what a map costs and what a move changed (issue 17), in Streamlit's AppTest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.plotly_spec import figures

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def reduce_page(monkeypatch) -> AppTest:
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=400).run()
    return at.switch_page("pages/3_Reduce.py").run()


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _maps(at: AppTest) -> list[str]:
    return [chart for chart in figures(at) if '"uirevision":"embedviz-map"' in chart]


def test_sliders_show_whole_numbers_as_whole_numbers(reduce_page):
    at = reduce_page
    _clean(at)
    assert at.slider(key="ev_p_tsne_perplexity").proto.format == "%.0f"  # "30", not "30.00"
    assert at.slider(key="ev_p_tsne_early_exaggeration").proto.format == "%.0f"
    assert at.slider(key="ev_p_tsne_n_iter").proto.format == "%d"
    assert "early exaggeration" in at.slider(key="ev_p_tsne_n_iter").help


def test_a_perplexity_move_says_what_it_changed_and_how_long_it_took(reduce_page):
    at = reduce_page
    at.slider(key="ev_p_tsne_perplexity").set_value(45.0).run()
    _clean(at)
    [said] = [c.value for c in at.caption if c.value.startswith("What the move changed")]
    assert "(perplexity 30 → 45)" in said and "points moved a median" in said
    assert "each point's 45 nearest feature-space neighbours kept on the map:" in said and "% → " in said
    # the time reported is the wait, of which the reducer is a part
    [made] = [c.value for c in at.caption if "made in" in c.value]
    waited, reducer = map(float, re.search(r"made in ([\d.]+) s, ([\d.]+) s of it the reducer", made).groups())
    assert waited >= reducer > 0
    # where it moved: a column the map can be coloured by
    at.toggle(key="reduce_color_moved").set_value(True).run()
    _clean(at)
    assert '"text":"moved"' in _maps(at)[0]
