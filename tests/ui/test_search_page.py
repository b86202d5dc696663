"""Explore's Search tab on clip:ViT-B-32's features, random weights (Streamlit's AppTest; the extraction job's
child process builds the model by name, so not the tests' tiny CLIP): shown only for CLIP features; "more
like the selected points" ranks the map and rings the best; similarity becomes a column."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("open_clip")


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture
def clip_session(tmp_path, monkeypatch):
    from embedviz.data.spec import DatasetSpec
    from embedviz.extract.spec import ModelSpec
    from tests.conftest import make_image_folder

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    folder = make_image_folder(tmp_path / "shapes", per_class=10)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    assert "Search" not in [t.label for t in at.switch_page("pages/4_Explore.py").run().tabs]  # the demo CNN
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.text_input[0].input(str(folder))
    at.button[0].click().run()
    _clean(at)
    assert DatasetSpec.from_dict(at.session_state["dataset"].to_dict()).path == str(folder)
    at.session_state["model"] = ModelSpec("clip:ViT-B-32", "random")  # as the picker sets it, the layer unset
    at.session_state["layer"] = None
    return at


def test_more_like_the_selected_points_rings_the_best_and_colours_by_similarity(clip_session):
    at = clip_session
    at.switch_page("pages/4_Explore.py").run()
    _clean(at)
    assert "Search" in [t.label for t in at.tabs]
    at.session_state["explore_tab"] = "Search"
    at.session_state["_linked_sel"] = ["discs/00.png", "discs/01.png"]
    at.run()
    like = at.button(key="explore_search_like")
    assert like.label == "More like the 2 selected" and not like.disabled
    at.number_input(key="explore_search_k").set_value(6)
    like.click().run()
    _clean(at)
    assert any("The 6 points most like the 2 selected points" in c.value for c in at.caption)
    assert any("Ringed on the map: the 6 points most like the 2 selected points" in c.value for c in at.caption)
    assert at.selectbox(key="ev_color").value == "similarity"
    assert len(at.get("image")) >= 6
