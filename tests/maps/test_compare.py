"""Comparing feature sets: alignment, neighbourhood change and per-class separation, on cases
whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from embedviz.errors import DataError
from embedviz.maps.compare import align, align_series, neighbourhood_overlap, same_rows, separation_by_class
from tests.plotly_spec import figures


def _turned(coords: np.ndarray, angle: float, reflect: bool, scale: float, shift) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    if reflect:
        rotation = rotation @ np.diag([1.0, -1.0])
    return scale * coords @ rotation + np.asarray(shift)


def test_a_rotated_reflected_scaled_and_shifted_copy_aligns_back():
    ref = np.random.default_rng(0).normal(size=(300, 2))
    moved = _turned(ref, 2.1, True, 3.7, (40.0, -12.0))
    result = align(ref, moved)
    assert np.allclose(result.coords, ref, atol=1e-9)
    assert result.disparity < 1e-18
    assert np.isclose(abs(np.linalg.det(result.rotation)), 1.0)
    assert np.isclose(np.linalg.det(result.rotation), -1.0)  # the reflection was undone


def test_alignment_of_a_noisy_copy_is_close_and_of_an_unrelated_map_is_not():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(500, 2))
    noisy = _turned(ref + rng.normal(scale=0.05, size=ref.shape), 0.7, False, 2.0, (5, 5))
    assert align(ref, noisy).disparity < 0.01
    assert align(ref, rng.normal(size=ref.shape)).disparity > 0.9


def test_three_d_maps_align_too_and_the_same_input_gives_the_same_picture():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(200, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = ref @ q * 0.5 + 1.0
    first, again = align(ref, moved), align(ref, moved.copy())
    assert np.allclose(first.coords, ref, atol=1e-9)
    assert np.array_equal(first.coords, again.coords)


def test_a_series_is_aligned_step_by_step_and_the_first_map_stays():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(150, 2))
    series = [base, _turned(base, 1.0, False, 2.0, (1, 1)), _turned(base, -2.0, True, 0.3, (-4, 0))]
    aligned = align_series(series)
    assert np.array_equal(aligned[0].coords, base)
    for step in aligned[1:]:
        assert np.allclose(step.coords, base, atol=1e-9)
    assert align_series([]) == []
    with pytest.raises(DataError, match="same shape"):
        align(base, base[:10])


def test_neighbourhood_overlap_is_one_for_the_same_space_and_falls_where_points_moved():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(400, 16)).astype(np.float32)
    same = neighbourhood_overlap(a, a * 3.0 + 1.0, k=10)  # scaled and shifted: the same neighbours
    assert np.allclose(same, 1.0)
    b = a.copy()
    moved = np.arange(50)
    b[moved] = rng.normal(size=(50, 16)) * 5  # 50 points sent somewhere else
    overlap = neighbourhood_overlap(a, b, k=10)
    assert overlap[moved].mean() < 0.2 and overlap[50:].mean() > 0.6
    assert set(np.argsort(overlap, kind="stable")[:40].tolist()) <= set(moved.tolist())  # those that moved most


def test_separation_by_class_is_a_number_that_tells_separated_classes_from_mixed_ones():
    rng = np.random.default_rng(5)
    labels = np.array(["cat"] * 100 + ["dog"] * 100 + ["owl"] * 100)
    centres = {"cat": (0, 0), "dog": (10, 0), "owl": (0, 10)}
    separated = np.array([centres[c] for c in labels]) + rng.normal(scale=0.5, size=(300, 2))
    mixed = separated.copy()  # cats and dogs on top of each other, owls apart
    mixed[labels == "dog"] = rng.normal(scale=0.5, size=(100, 2))
    good, bad = separation_by_class(separated, labels), separation_by_class(mixed, labels)
    assert good["label"].tolist() == ["cat", "dog", "owl"] and good["points"].tolist() == [100, 100, 100]
    assert (good["silhouette"] > 0.8).all() and (good["knn_accuracy"] > 0.95).all()
    by = bad.set_index("label")
    assert by.loc["cat", "silhouette"] < 0.2 and by.loc["dog", "knn_accuracy"] < 0.8
    assert by.loc["owl", "silhouette"] > 0.8 and by.loc["owl", "knn_accuracy"] > 0.95
    with pytest.raises(DataError, match="two classes"):
        separation_by_class(separated, ["cat"] * 300)


def test_rows_are_matched_by_sample_id_between_feature_sets():
    left, right = same_rows(["a", "b", "c", "d"], ["d", "c", "x", "a"])
    assert left.tolist() == [0, 2, 3] and right.tolist() == [3, 1, 0]
    with pytest.raises(DataError, match="share no sample ids"):
        same_rows(["a"], ["b"])


def test_the_command_line_writes_aligned_maps_of_two_checkpoints_and_says_which_separates(tmp_path, capsys):
    """The demo's early and final checkpoints: the final one separates the digits better."""
    import pandas as pd

    from embedviz.cli import main
    from embedviz.data.demo import EARLY_WEIGHTS

    for name, weights in (("early", ["--weights", str(EARLY_WEIGHTS)]), ("final", [])):
        assert main(["extract", "--data", "demo", "--model", "demo", *weights, "--out", str(tmp_path / name),
                     "--workers", "0"]) == 0
    out = tmp_path / "compared"
    assert main(["compare", "--features", str(tmp_path / "early"), "--features", str(tmp_path / "final"),
                 "--method", "pca", "--out", str(out)]) == 0
    maps = pd.read_parquet(out / "maps.parquet")
    assert len(maps) == 1797
    assert {"early_x", "early_y", "final_x", "final_y", "overlap_early_final"} <= set(maps.columns)
    assert maps["overlap_early_final"].between(0, 1).all()
    separation = pd.read_csv(out / "separation.csv").groupby("set")[["silhouette", "knn_accuracy"]].mean()
    assert separation.loc["final", "knn_accuracy"] > separation.loc["early", "knn_accuracy"]
    assert separation.loc["final", "silhouette"] > separation.loc["early", "silhouette"]
    again = tmp_path / "again"
    assert main(["compare", "--features", str(tmp_path / "early"), "--features", str(tmp_path / "final"),
                 "--method", "pca", "--out", str(again)]) == 0
    assert pd.read_parquet(again / "maps.parquet").equals(maps)  # same seed, same picture
    assert "k-NN accuracy" in capsys.readouterr().out


def test_one_command_extracts_two_checkpoints_at_two_layers_and_compares_them(tmp_path, capsys):
    import pandas as pd

    from embedviz.cli import main
    from embedviz.data.demo import EARLY_WEIGHTS, FINAL_WEIGHTS

    out = tmp_path / "compared"
    assert main(["compare", "--data", "demo", "--model", "demo", "--weights", str(EARLY_WEIGHTS),
                 "--weights", str(FINAL_WEIGHTS), "--layer", "classifier.1,flatten", "--method", "pca",
                 "--workers", "0", "--out", str(out)]) == 0
    maps = pd.read_parquet(out / "maps.parquet")
    early, final = EARLY_WEIGHTS.stem, FINAL_WEIGHTS.stem
    names = [f"{early}:classifier.1", f"{early}:flatten", f"{final}:classifier.1", f"{final}:flatten"]
    assert [c[:-2] for c in maps.columns if c.endswith("_x")] == names
    assert len([c for c in maps.columns if c.startswith("overlap_")]) == 3
    assert set(pd.read_csv(out / "separation.csv")["set"]) == set(names)
    assert main(["compare", "--data", "demo", "--model", "demo", "--out", str(out)]) == 2  # one set: said
    assert "two or more feature sets" in capsys.readouterr().err


# --- the Compare page (Streamlit's AppTest) ---------------------------------------------------------

def _compare_page(monkeypatch, **state):
    """The app with ``state`` in the session (maps by PCA, so they are quick), switched to Compare."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    at = AppTest.from_file(str(root / "app.py"), default_timeout=240)
    at.session_state["ev_method"] = "pca"
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/7_Compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_on_the_demo_with_raw_pixels_the_two_checkpoints_are_offered_and_compared(monkeypatch):
    """Issue 17, item 9: with the model set to raw pixels, the box offered nothing ("No options to select")."""
    at = _compare_page(monkeypatch, model={"architecture": "pixels", "weights": None})
    box = at.multiselect(key="ev_cmp_sets")
    early, final = box.value
    assert "early checkpoint" in early and "final" in final
    assert any(o.startswith("raw pixels") for o in box.options)  # the current model is a feature set too
    maps = [c for c in figures(at) if '"uirevision":"embedviz-map"' in c]
    assert len(maps) == 3  # two maps and the step-through


def test_one_chosen_set_is_one_line_and_a_button_that_adds_the_other_checkpoint(monkeypatch):
    at = _compare_page(monkeypatch, ev_method="pca")
    at.multiselect(key="ev_cmp_sets").set_value(at.multiselect(key="ev_cmp_sets").value[:1]).run()
    assert any("Choose two or more feature sets" in i.value for i in at.info)
    [add] = [b for b in at.button if b.key == "compare_add"]
    assert add.label.startswith("Compare with demo CNN (final")
    add.click().run()
    assert not at.exception and not at.error
    assert len(at.multiselect(key="ev_cmp_sets").value) == 2
    assert not any("Choose two or more" in i.value for i in at.info)


def test_images_with_one_feature_set_say_what_to_do_instead_of_an_empty_box(monkeypatch, tmp_path):
    """Issue 17, item 9: raw pixels of one's own images gave a disabled "No options to select" box."""
    from tests.conftest import make_image_folder

    folder = make_image_folder(tmp_path / "shapes", per_class=6)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = _compare_page(monkeypatch, dataset={"kind": "path", "path": str(folder)},
                       model={"architecture": "pixels", "weights": None})
    assert not at.multiselect  # no empty box
    [line] = [i.value for i in at.info]
    assert "is the only feature set of these images: choose a model on Data & model" in line
    links = [e for e in at.get("page_link") if "Choose a model" in str(e.proto)]
    assert links and links[0].proto.page == "Data_and_model"
