"""The app opens on the demo with nothing clicked, and every page works (Streamlit's AppTest)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.plotly_spec import figure_points, figure_rows, figures

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/1_Data_and_model.py", "pages/2_Extract.py", "pages/3_Reduce.py", "pages/4_Explore.py",
         "pages/5_Point.py", "pages/6_Runs.py", "pages/7_Compare.py"]


@pytest.fixture
def app(monkeypatch) -> AppTest:
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _shown(markdown: str) -> str:
    """Markdown as it reads on screen, for escaped user strings (backslashes, word joiners)."""
    return markdown.replace("\\", "").replace("\u2060", "")


def _maps(at: AppTest) -> list[str]:
    """The maps on the page (not the confusion matrix)."""
    return [chart for chart in figures(at) if '"uirevision":"embedviz-map"' in chart]


def test_home_opens_on_the_demo_map_and_every_page_opens(app):
    at = app.run()
    _assert_clean(at)
    [home_map] = _maps(at)
    assert figure_points(home_map) == 1797
    assert sorted(figure_rows(home_map)) == list(range(1797))
    assert at.metric[0].value == "1,797"
    accuracy = float(at.metric[2].value.rstrip("%"))
    assert 90 < accuracy < 100  # a real model with real mistakes

    for page in PAGES:
        at.switch_page(page).run()
        _assert_clean(at)
        if page.endswith(("Reduce.py", "Explore.py")):
            assert [figure_points(m) for m in _maps(at)] == [1797]
    at.switch_page("pages/2_Extract.py").run()
    assert any("Cache hit" in s.value for s in at.success)


def test_reduce_sliders_change_the_map(app):
    at = app.run()
    at.switch_page("pages/3_Reduce.py").run()
    before = _maps(at)[0]
    at.segmented_control(key="ev_method").set_value("pca").run()
    _assert_clean(at)
    after = _maps(at)[0]
    assert figure_points(after) == 1797 and after != before
    at.segmented_control(key="ev_dims").set_value(3).run()
    _assert_clean(at)
    assert '"scatter3d"' in _maps(at)[0]


def test_a_slider_move_starts_from_the_map_on_screen(app):
    at = app.run()
    at.switch_page("pages/3_Reduce.py").run()
    before = _maps(at)[0]
    assert any("1,797 points × 64 dimensions" in c.value and "takes about" in c.value for c in at.caption)
    at.slider(key="ev_p_tsne_perplexity").set_value(40.0).run()
    _assert_clean(at)
    after = _maps(at)[0]
    assert after != before and figure_points(after) == 1797
    assert any("Started from the previous map" in c.value for c in at.caption)
    # back to 30: the map made before for 30 is shown again, not a new one
    at.slider(key="ev_p_tsne_perplexity").set_value(30.0).run()
    assert _maps(at)[0] == before
    # a fresh start is a choice
    at.toggle(key="ev_warm").set_value(False).run()
    at.slider(key="ev_p_tsne_perplexity").set_value(35.0).run()
    _assert_clean(at)
    assert not any("Started from the previous map" in c.value for c in at.caption)
    # (Stop during the optimisation, the partial map and Continue: tests/e2e/test_browser.py, which
    # can press a button while a run is going on.)


def test_fitting_on_a_stratified_sample_is_said(app):
    at = app.run()
    at.switch_page("pages/3_Reduce.py").run()
    at.segmented_control(key="ev_method").set_value("pca").run()
    at.toggle(key="ev_sample_on").set_value(True).run()
    at.number_input(key="ev_sample_size").set_value(500).run()
    at.selectbox(key="ev_stratify").set_value("label").run()
    _assert_clean(at)
    assert any("stratified by label sample of" in i.value and "1,797 points" in i.value for i in at.info)
    assert figure_points(_maps(at)[0]) == 1797


def test_a_points_page_lists_its_feature_space_neighbours_and_follows_one(app):
    at = app.run()
    at.switch_page("pages/5_Point.py").run()
    _assert_clean(at)
    assert at.selectbox(key="ev_point").value == "digits/0000.png"
    assert any("12 nearest in feature space" in m.value and "share its label (0)" in m.value for m in at.markdown)
    captions = [c.value for c in at.caption if "distance" in c.value]
    assert len(captions) == 12
    # four grid columns are read column by column: items 0, 4, 8, then 1, 5, 9, ...
    order = [i for column in range(4) for i in range(column, 12, 4)]
    in_order = [captions[order.index(i)] for i in range(12)]
    distances = [float(c.rsplit("distance ", 1)[1]) for c in in_order]
    assert distances == sorted(distances) and distances[0] > 0
    first = captions[0].split(" · ")[0]
    at.button(key=f"go_{first}").click().run()
    _assert_clean(at)
    assert at.selectbox(key="ev_point").value == first
    # not its own neighbour
    assert not any(c.value.startswith(first + " ") for c in at.caption if "distance" in c.value)
    at.selectbox(key="ev_point_metric").set_value("cosine").run()
    _assert_clean(at)


def test_explore_filters_hide_points(app):
    at = app.run()
    at.switch_page("pages/4_Explore.py").run()
    at.segmented_control(key="ev_f_correct").set_value("wrong").run()
    _assert_clean(at)
    shown = figure_points(_maps(at)[0])
    assert 0 < shown < 100  # only the model's mistakes
    assert at.metric[0].value == f"{shown:,}" and at.metric[0].label == "Points shown, of 1,797"


def test_explore_sets_clusters_and_styles_become_part_of_the_map(app):
    import json

    at = app.run()
    at.switch_page("pages/4_Explore.py").run()
    at.session_state["explore_sets"] = {"odd ones": ["digits/0003.png", "digits/0010.png", "not/in/this/data.png"]}
    at.run()
    _assert_clean(at)
    assert "set: odd ones" in at.selectbox(key="ev_color").options  # a saved set is a column
    assert any("odd ones: 2 points here (1 are not in this data)" in t.value for t in at.text)
    at.selectbox(key="ev_show_set").set_value("odd ones").run()
    figure = json.loads(_maps(at)[0])
    ring = [t for t in figure["data"] if t["name"].startswith("highlighted")]
    assert len(ring) == 1 and sorted(figure_rows(ring[0] and {"data": ring}, skip=())) == [3, 10]
    assert any("Ringed on the map: the set 'odd ones' (2 points)" in c.value for c in at.caption)

    at.selectbox(key="ev_cluster_method").set_value("kmeans")
    at.number_input(key="ev_cluster_k").set_value(12)
    at.button[[b.label for b in at.button].index("Find clusters")].click().run()
    _assert_clean(at)
    assert at.selectbox(key="ev_color").value == "cluster"  # the map is coloured by the new clusters
    names = {t["name"] for t in json.loads(_maps(at)[0])["data"]}
    assert {str(i) for i in range(1, 13)} <= names
    assert any("12 clusters: k-means, k = 12, on the features" in c.value for c in at.caption)

    at.slider(key="ev_size").set_value(9.0).run()
    at.selectbox(key="ev_symbol").set_value("split").run()
    figure = json.loads(_maps(at)[0])
    assert figure["data"][0]["marker"]["size"] == 9.0 and "symbol" in figure["data"][0]["marker"]
    at.segmented_control(key="ev_f_correct").set_value("wrong").run()
    at.radio(key="ev_filtered").set_value("grey").run()
    _assert_clean(at)
    grey = [t for t in json.loads(_maps(at)[0])["data"] if t["name"].startswith("filtered out")]
    assert len(grey) == 1 and figure_points({"data": grey}) > 1700


def test_a_colour_chosen_for_a_class_colours_its_points_and_can_be_undone(app):
    import json

    at = app.run()
    at.switch_page("pages/4_Explore.py").run()
    at.selectbox(key="ev_colour_of_label").set_value("7").run()
    at.color_picker(key="ev_colour_label_7").pick("#123456").run()
    _assert_clean(at)

    def colour_of(name: str) -> str:
        return [t for t in json.loads(_maps(at)[0])["data"] if t["name"] == name][0]["marker"]["color"]

    assert colour_of("7") == "#123456" and colour_of("3") != "#123456"
    at.button(key="explore_colours_reset").click().run()
    _assert_clean(at)
    assert colour_of("7") != "#123456"


def test_a_filter_applied_before_reducing_maps_only_the_points_it_keeps(app):
    at = app.run()
    at.switch_page("pages/4_Explore.py").run()
    at.multiselect(key="ev_f_columns").set_value(["label"]).run()
    at.multiselect(key="ev_f_label").set_value(["3", "8"]).run()
    kept = int(at.metric[0].value.replace(",", ""))
    at.button(key="map_these_points").click().run()
    _assert_clean(at)
    assert figure_points(_maps(at)[0]) == kept  # a new map of only those points
    assert at.metric[0].label == f"Points shown, of {kept:,}"
    assert any("made from only the points kept by: label is 3 or 8" in i.value for i in at.info)
    at.switch_page("pages/3_Reduce.py").run()
    _assert_clean(at)
    assert any("label is 3 or 8" in i.value for i in at.info) and figure_points(_maps(at)[0]) == kept
    at.button(key="map_all_points").click().run()
    _assert_clean(at)
    assert figure_points(_maps(at)[0]) == 1797


def test_choosing_the_early_checkpoint_changes_the_model(app):
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[1].set_value("early (epoch 1)").run()
    _assert_clean(at)
    assert any("early checkpoint" in s.value for s in at.success)
    at.switch_page("app.py").run()
    _assert_clean(at)
    assert float(at.metric[2].value.rstrip("%")) < 90  # one epoch of training makes more mistakes


def test_filters_survive_a_trip_to_another_page(app):
    at = app.run()
    at.switch_page("pages/4_Explore.py").run()
    at.multiselect(key="ev_f_columns").set_value(["label", "confidence"]).run()
    at.multiselect(key="ev_f_label").set_value(["3", "8"]).run()
    kept = at.metric[0].value
    assert 0 < int(kept.replace(",", "")) < 400
    at.switch_page("pages/3_Reduce.py").run()
    at.switch_page("pages/4_Explore.py").run()
    _assert_clean(at)
    assert not at.warning
    assert at.multiselect(key="ev_f_label").value == ["3", "8"] and at.metric[0].value == kept


def test_a_bad_path_is_one_line_and_the_current_data_stays(app, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.text_input[0].input(str(tmp_path / "no/such/images")).run()
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"{tmp_path}/no/such/images does not exist: give a folder, a .zip/.tar archive or a CSV/Parquet manifest."]
    assert any("1,797 images" in s.value for s in at.success)  # the demo is still the current data
    layer = [s for s in at.selectbox if s.label == "Take features from"][0]
    assert layer.value == "classifier.1"  # the rest of the page still works
    at.switch_page("app.py").run()
    _assert_clean(at)
    assert figure_points(_maps(at)[0]) == 1797


def test_preprocessing_is_shown_editable_and_checked(app):
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    assert any(e.label.startswith("Preprocessing: 8x8 grey, squash") for e in at.expander)
    std = [t for t in at.text_input if t.label == "Std per channel"][0]
    std.input("0").run()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert [e.value for e in at.error] == ["Every std value must be above 0."]
    assert any(e.label.startswith("Preprocessing: 8x8 grey") and "(changed)" not in e.label for e in at.expander)
    [t for t in at.number_input if t.label == "Input size (pixels)"][0].set_value(16).run()
    std = [t for t in at.text_input if t.label == "Std per channel"][0]
    std.input("0.4").run()
    [b for b in at.button if b.label == "Apply"][0].click().run()
    assert any("16x16 grey" in e.label and "(changed)" in e.label for e in at.expander)
    at.switch_page("app.py").run()  # the demo CNN cannot take 16x16 inputs: said in one line
    assert not at.exception
    assert [e.value for e in at.error][0].startswith("demo cannot take inputs of shape (1, 16, 16)")


def test_a_manifest_with_its_own_path_column_and_prefix(app, tmp_path, monkeypatch):
    import pandas as pd

    from tests.conftest import make_image_folder

    images = make_image_folder(tmp_path / "images", per_class=5)
    manifest = tmp_path / "list.csv"
    pd.DataFrame({"文件": [f"discs/{i:02d}.png" for i in range(5)], "标注类别名称": ["圆"] * 5}).to_csv(
        manifest, index=False)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.text_input[0].input(str(manifest))
    at.text_input[1].input(str(images))
    at.text_input[2].input("文件")
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("list**: 5 images (no labels)" in s.value for s in at.success), [s.value for s in at.success]
    at.switch_page("pages/4_Explore.py").run()
    _assert_clean(at)
    assert figure_points(_maps(at)[0]) == 5


def test_a_metascatter_map_on_the_server_opens_without_reducing(app, tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    from tests.conftest import make_image_folder

    make_image_folder(tmp_path, per_class=4)
    paths = [f"{c}/{i:02d}.png" for c in ("discs", "squares") for i in range(4)]
    pd.DataFrame({"Paths": paths, "X-Coord": range(8), "Y-Coord": [0, 1] * 4,
                  "label": [p.split("/")[0] for p in paths]}).to_csv(tmp_path / "map.csv", index=False)
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    at.radio[1].set_value("Features or a map made elsewhere").run()
    at.text_input[0].input(str(tmp_path / "map.csv")).run()
    at.button[0].click().run()
    _assert_clean(at)
    assert any("8 points, a map with its own coordinates, 2 classes" in s.value for s in at.success)
    at.switch_page("pages/3_Reduce.py").run()
    _assert_clean(at)
    assert at.segmented_control(key="ev_method").value == "precomputed"
    assert any("nothing was reduced" in i.value for i in at.info)
    assert figure_points(_maps(at)[0]) == 8
    at.switch_page("pages/4_Explore.py").run()
    _assert_clean(at)
    at.switch_page("pages/1_Data_and_model.py").run()  # back to images: the method fits them again
    at.radio[0].set_value("Built-in demo (digits)").run()
    at.switch_page("pages/4_Explore.py").run()  # Explore first: it too falls back from "As given"
    _assert_clean(at)
    at.switch_page("pages/3_Reduce.py").run()
    _assert_clean(at)
    assert at.segmented_control(key="ev_method").value == "tsne"


def test_features_with_a_bad_metadata_table_say_so_then_load_without_it(app, tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    features = tmp_path / "f.npy"
    np.save(features, np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32))
    at.radio[0].set_value("Path on this server").run()
    at.radio[1].set_value("Features or a map made elsewhere").run()
    (tmp_path / "meta.csv").write_text("name\n" + "\n".join(f"s{i}" for i in range(29)))
    at.text_input[0].input(str(features))
    [t for t in at.text_input if t.label.startswith("Metadata table")][0].input(str(tmp_path / "meta.csv"))
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "f.npy has 30 feature rows but the metadata has 29 rows; they are joined on row order, "
        "so the counts must match."]
    [t for t in at.text_input if t.label.startswith("Metadata table")][0].input("")
    at.button[0].click().run()
    _assert_clean(at)
    assert any("30 points, 6-dimensional features" in s.value for s in at.success)
    at.switch_page("pages/3_Reduce.py").run()
    _assert_clean(at)
    assert "precomputed" not in at.segmented_control(key="ev_method").options
    assert figure_points(_maps(at)[0]) == 30


def test_server_paths_never_reach_other_sessions_uploads_or_unshared_folders(app, tmp_path, monkeypatch):
    import os

    from tests.conftest import make_image_folder

    home = Path(os.environ["EMBEDVIZ_HOME"])
    theirs = make_image_folder(home / "sessions" / "someone-else" / "images", per_class=2)
    shared = make_image_folder(tmp_path / "shared", per_class=2)
    elsewhere = make_image_folder(tmp_path / "private", per_class=2)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = app.run()
    at.switch_page("pages/1_Data_and_model.py").run()
    at.radio[0].set_value("Path on this server").run()
    # the same words for both: a different message for embedviz's own storage would tell where it is
    for path, words in ((theirs, "outside the folders this server shares"),
                        (elsewhere, "outside the folders this server shares")):
        at.text_input[0].input(str(path))
        at.button[0].click().run()
        assert not at.exception and len(at.error) == 1 and words in at.error[0].value
        assert any("1,797 images" in s.value for s in at.success)
    at.text_input[0].input(str(shared))
    at.button[0].click().run()
    _assert_clean(at)
    assert any("shared**: 5 images" in s.value for s in at.success), [s.value for s in at.success]


def test_a_link_opens_the_same_map_in_another_session_once_its_run_is_published(app):
    from embedviz.serve.catalog import Catalog

    at = app.run()
    _assert_clean(at)
    run_id = at.query_params["run"]
    run = Catalog().get(run_id)
    assert run.kind == "map" and run.n_points == 1797 and not run.published
    assert run.params["reducer"]["method"] == "tsne" and run.inputs["map"]
    [first] = _maps(at)

    other = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    other.query_params["run"] = run_id
    other.run()
    assert any("is private to the person who made it" in e.value for e in other.error)
    assert other.query_params["run"] != run_id  # the other session's own map, not the private one

    Catalog().publish(run_id, run.owner)
    colleague = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    colleague.query_params["run"] = run_id
    colleague.run()
    _assert_clean(colleague)
    assert colleague.query_params["run"] == run_id  # the published run stays the view's run
    assert _maps(colleague) == [first]  # the same map, read from the store
    mine = Catalog().runs(run.owner, mine_only=True)
    assert {r.kind for r in mine} == {"map", "extraction"}


def test_an_unknown_run_in_a_link_is_one_line_and_the_demo_opens(app):
    app.query_params["run"] = "0123456789ab"
    at = app.run()
    assert any("cannot be opened" in e.value for e in at.error)
    assert not at.exception
    assert len(_maps(at)) == 1


def test_an_allow_list_without_sign_in_keeps_everyone_out_with_a_sentence(app, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_ALLOWED", "@example.org")
    at = app.run()
    assert any("admits only the people on its list" in e.value for e in at.error)
    assert not at.exception and not _maps(at)


def test_a_proxy_header_names_the_user_and_the_allow_list_applies(app, monkeypatch):
    import embedviz.ui.auth as auth

    monkeypatch.setenv("EMBEDVIZ_USER_HEADER", "X-Forwarded-Email")
    monkeypatch.setenv("EMBEDVIZ_ALLOWED", "@example.org")
    monkeypatch.setattr(auth, "_header_email", lambda: "eve@elsewhere.io")
    at = app.run()
    assert any("eve@elsewhere.io is not on this instance's list" in _shown(e.value) for e in at.error)
    monkeypatch.setattr(auth, "_header_email", lambda: "alice@example.org")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    _assert_clean(at)
    from embedviz.serve.catalog import Catalog

    run = Catalog().get(at.query_params["run"])
    assert run.owner == "user:alice@example.org" and run.owner_name == "alice@example.org"


def test_with_sign_in_configured_only_signed_in_people_on_the_list_get_in(app):
    from embedviz.serve.catalog import Catalog

    auth = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
            "client_id": "embedviz", "client_secret": "s", "server_metadata_url": "https://id.example.org/.well-known"}
    app.secrets["auth"] = auth
    app.secrets["embedviz"] = {"allowed": ["@example.org"]}
    app.user = {"is_logged_in": False}
    if importlib.util.find_spec("authlib") is None:  # the operator is told what to install
        at = app.run()
        assert any("Authlib" in e.value for e in at.error) and not _maps(at)
        pytest.skip("Authlib is not installed (pip install -e '.[auth]'): sign-in itself is not reachable")
    at = app.run()
    assert any("sign in to use it" in i.value for i in at.info)
    assert [b.label for b in at.button] == ["Sign in"] and not _maps(at)

    def signed_in(email: str) -> AppTest:
        session = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        session.secrets["auth"] = auth
        session.secrets["embedviz"] = {"allowed": ["@example.org"]}
        session.user = {"is_logged_in": True, "email": email}
        return session.run()

    eve = signed_in("eve@elsewhere.io")
    assert any("eve@elsewhere.io is not on this instance's list" in _shown(e.value) for e in eve.error)
    assert not _maps(eve)
    alice = signed_in("alice@example.org")
    _assert_clean(alice)
    assert len(_maps(alice)) == 1
    assert Catalog().get(alice.query_params["run"]).owner == "user:alice@example.org"


def test_compare_opens_on_the_demos_two_checkpoints_and_scores_the_final_one_higher(app):
    at = app.run()
    at.switch_page("pages/7_Compare.py").run()
    _assert_clean(at)
    assert len(at.multiselect(key="ev_cmp_sets").value) == 2
    maps = [c for c in figures(at) if '"uirevision":"embedviz-map"' in c]
    assert len(maps) == 3 and all(figure_points(m) == 1797 for m in maps)  # two maps and the step-through
    table = at.dataframe[-1].value
    early, final = table.columns[0], table.columns[1]
    assert "early" in early and "final" in final
    assert table[final].mean() > table[early].mean()  # k-NN accuracy per class: training separated the digits


def test_explore_makes_the_images_of_the_open_tab_only_and_stays_on_it(app):
    """Issue 22: a rerun of Explore does not build the Mistakes tab's galleries while another tab is
    open; opening it shows them, and later reruns stay on it."""
    at = app.switch_page("pages/4_Explore.py").run()
    _assert_clean(at)
    pictures = lambda: at.get("image")  # noqa: E731 - the gallery's thumbnails
    assert not pictures()
    at.session_state["explore_tab"] = "Mistakes"
    at.run()
    _assert_clean(at)
    assert len(pictures()) >= 24  # 12 most confident mistakes, 12 least sure right answers
    at.run()
    assert at.session_state["explore_tab"] == "Mistakes" and len(pictures()) >= 24
