"""The audit: suspected label errors, duplicates and leaks, and outliers, planted in data made here."""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np
import pandas as pd
import pytest

from embedviz.cli import main
from embedviz.data.featureset import FeatureSet, save_feature_set
from embedviz.errors import DataError
from embedviz.explore.audit import (
    audit,
    audit_key,
    class_summary,
    confused_pairs,
    content_hashes,
    load_audit,
    save_audit,
)
from embedviz.maps.reducers.neighbours import graph_stats

CLASSES = ["a", "b", "c", "d", "e", "f"]
PER_CLASS = 50
HOSTILE = "<img src=x onerror=alert(1)>"
REQUIRED = ["sample_id", "label", "suggested_label", "label_issue_score", "is_label_issue", "duplicate_group",
            "is_leak", "outlier_score", "is_outlier"]
# row -> the wrong label it is given: four a's called b (the confusion a user should see first), one c called d,
# one e called a
FLIPS = {3: "b", 17: "b", 29: "b", 41: "b", 110: "d", 222: "a"}


def blobs(dim: int = 16, seed: int = 0, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Well-separated Gaussian clusters: (features, true class per row, class centres)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CLASSES), dim)) * 10
    truth = np.repeat(np.arange(len(CLASSES)), per_class)
    features = centres[truth] + rng.normal(size=(len(truth), dim))
    return features.astype(np.float32), truth, centres


def model_columns(features: np.ndarray, centres: np.ndarray, classes=CLASSES) -> dict[str, np.ndarray]:
    """A classifier's p_<class> columns: a softmax of the distances to the class centres."""
    logits = -np.linalg.norm(features[:, None, :] - centres[None], axis=2) / 3
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return {f"p_{c}": p[:, i] for i, c in enumerate(classes)}


def table(truth: np.ndarray, flips: dict[int, str] | None = None, **columns) -> pd.DataFrame:
    labels = np.array(CLASSES, dtype=object)[truth]
    for row, label in (flips or {}).items():
        labels[row] = label
    return pd.DataFrame({"sample_id": [f"img/{i:03d}.png" for i in range(len(truth))], "label": labels, **columns})


@pytest.fixture(scope="module")
def planted():
    features, truth, centres = blobs()
    samples = table(truth, FLIPS, **model_columns(features, centres))
    return features, truth, samples


@pytest.mark.parametrize("source", ["knn", "from-model"])
def test_planted_label_errors_are_found_first_with_the_true_class_suggested(planted, source):
    features, truth, samples = planted
    result = audit(features, samples, source=source)
    t = result.table
    assert result.source == source
    assert set(np.flatnonzero(t["is_label_issue"])) == set(FLIPS)
    top = np.argsort(-t["label_issue_score"].to_numpy(), kind="stable")[:len(FLIPS)]
    assert set(top) == set(FLIPS) and set(result.ranked("label")) == set(FLIPS)
    scores = t["label_issue_score"].to_numpy()[result.ranked("label")]
    assert (np.diff(scores) <= 0).all()  # the most suspect first
    for row in FLIPS:
        assert t["suggested_label"][row] == CLASSES[truth[row]]
        assert t["label"][row] == FLIPS[row]
    assert ((t["label_issue_score"] >= 0) & (t["label_issue_score"] <= 1)).all()


@pytest.mark.parametrize("source", ["knn", "from-model"])
def test_a_sample_the_probabilities_plainly_call_mislabelled_is_flagged(source):
    # knn: three a's called b; the third scores 0.90 against at most 0.17 for any clean sample.
    # from-model: one d called e, which a confident model gives 2e-8 (score 1.0, clean ones 1e-4).
    if source == "knn":
        features, truth, _ = blobs(dim=64, seed=8, per_class=40)
        flips = {3: "b", 17: "b", 29: "b"}
        samples = table(truth, flips)
    else:
        features, truth, centres = blobs(seed=7)
        flips = {187: "e"}
        samples = table(truth, flips, **model_columns(features, centres))
    t = audit(features, samples, source=source).table
    clean = t["label_issue_score"].drop(list(flips))
    assert (t["label_issue_score"][list(flips)] > 0.5).all() and (clean < 0.2).all()  # the scores tell them apart
    assert (t["suggested_label"][list(flips)] == [CLASSES[truth[r]] for r in flips]).all()
    assert set(flips) <= set(np.flatnonzero(t["is_label_issue"]))


def test_auto_uses_the_models_probabilities_when_its_classes_are_the_labels(planted):
    features, truth, samples = planted
    assert audit(features, samples).source == "from-model"
    assert audit(features, samples[["sample_id", "label"]]).source == "knn"
    assert "model" in audit(features, samples).notes[0] and "nearest" in audit(features, samples, source="knn").notes[0]


@pytest.mark.parametrize("source", ["knn", "from-model"])
def test_clean_data_is_hardly_flagged(source):
    features, truth, centres = blobs(seed=1)
    result = audit(features, table(truth, **model_columns(features, centres)), source=source)
    counts = result.counts()
    assert counts["label"] <= 0.01 * len(features)
    assert counts["outlier"] <= 0.05 * len(features)
    assert counts["duplicate"] == 0 and counts["leak"] == 0
    assert (result.table["suggested_label"] == result.table["label"]).mean() > 0.99


def test_the_report_has_the_promised_columns():
    features, truth, _ = blobs(seed=2)
    result = audit(features, table(truth))
    t = result.table
    assert list(t.columns[:2]) == ["sample_id", "label"] and set(REQUIRED) <= set(t.columns)
    assert len(t) == len(features) and t["sample_id"].tolist() == [f"img/{i:03d}.png" for i in range(len(features))]
    assert t["label_issue_score"].between(0, 1).all() and t["outlier_score"].between(0, 1).all()
    assert t["duplicate_group"].isna().all()  # no duplicates: empty, not a group of their own
    assert t["is_label_issue"].dtype == bool and t["is_leak"].dtype == bool and t["is_outlier"].dtype == bool
    assert result.neighbours.shape[0] == len(features)
    assert (result.neighbours != np.arange(len(features))[:, None]).all()  # a sample is not its own neighbour


@pytest.fixture(scope="module")
def with_duplicates():
    """The clusters plus: row 10 copied into test (same bytes: a leak), row 20 copied within train (same
    bytes), row 30 copied with a whisker of noise and other bytes (a near duplicate, across splits)."""
    features, truth, _ = blobs(seed=3)
    n = len(features)
    copies = [10, 20, 30]
    extra = features[copies].copy()
    extra[2] += 1e-3
    features = np.concatenate([features, extra])
    truth = np.concatenate([truth, truth[copies]])
    samples = table(truth)
    split = np.array(["train"] * len(features), dtype=object)
    split[n] = "test"
    split[30] = "val"
    samples["split"] = split
    hashes = [f"h{i}" for i in range(n)] + ["h10", "h20", f"h{n + 2}"]
    hashes[50:55] = ["missing"] * 5  # unknown contents are not one another's duplicates
    return features, samples, hashes, {"leak": [10, n], "within": [20, n + 1], "near": [30, n + 2]}


def test_planted_duplicates_form_one_group_each(with_duplicates):
    features, samples, hashes, groups = with_duplicates
    t = audit(features, samples, hashes=hashes).table
    names = []
    for rows in groups.values():
        name = t["duplicate_group"][rows[0]]
        assert pd.notna(name) and t["duplicate_group"][rows[1]] == name
        assert sorted(np.flatnonzero(t["duplicate_group"] == name)) == rows
        names.append(name)
    assert len(set(names)) == 3
    assert t["duplicate_group"].notna().sum() == 6


def test_a_group_across_splits_is_a_leak_and_one_within_a_split_is_not(with_duplicates):
    features, samples, hashes, groups = with_duplicates
    result = audit(features, samples, hashes=hashes)
    t = result.table
    assert t["is_leak"][groups["leak"]].all() and t["is_leak"][groups["near"]].all()
    assert not t["is_leak"][groups["within"]].any()
    assert sorted(np.flatnonzero(t["is_leak"])) == sorted(groups["leak"] + groups["near"])
    assert result.counts()["leak"] == 4 and result.counts()["duplicate"] == 6


def test_duplicates_are_exact_when_the_bytes_match_and_near_otherwise(with_duplicates):
    features, samples, hashes, groups = with_duplicates
    t = audit(features, samples, hashes=hashes).table
    assert (t["duplicate_kind"][groups["leak"] + groups["within"]] == "exact").all()
    assert (t["duplicate_kind"][groups["near"]] == "near").all()
    assert t["duplicate_kind"][t["duplicate_group"].isna()].isna().all()
    # without the images' bytes, identical features are still duplicates, near ones
    t = audit(features, samples).table
    assert t["duplicate_group"].notna().sum() == 6 and (t["duplicate_kind"].dropna() == "near").all()


def test_same_bytes_are_duplicates_even_where_the_features_differ():
    features, truth, _ = blobs(seed=4)
    hashes = [f"h{i}" for i in range(len(features))]
    hashes[7] = hashes[200]  # same file content, features from other clusters
    t = audit(features, table(truth), hashes=hashes).table
    assert t["duplicate_group"][7] == t["duplicate_group"][200] and t["duplicate_group"].notna().sum() == 2
    assert t["duplicate_kind"][7] == "exact" and not t["is_leak"][7]  # no split column: no leaks


@pytest.mark.parametrize("source", ["knn", "from-model"])
def test_copies_of_one_image_with_different_labels_are_label_errors(source):
    """Two copies called a and one called e (the majority is right), and a pair a/b with no majority:
    wherever the neighbours or the model point, the copies whose label another copy contradicts are
    flagged, with that copy's label suggested."""
    features, truth, centres = blobs(seed=6)
    samples = table(truth, **model_columns(features, centres))
    hashes = [f"h{i}" for i in range(len(features))]
    hashes[1] = hashes[2] = hashes[230] = "one picture"  # rows 1, 2 are a; 230 is an e
    hashes[5] = hashes[60] = "another"  # 5 is an a, 60 a b
    result = audit(features, samples, source=source, hashes=hashes)
    t = result.table
    assert t["is_label_issue"][[230, 5, 60]].all() and not t["is_label_issue"][[1, 2]].any()
    assert t["suggested_label"][230] == "a"
    assert (t["suggested_label"][5], t["suggested_label"][60]) == ("b", "a")
    assert t["label_issue_score"][230] >= 0.85 and min(t["label_issue_score"][[5, 60]]) >= 0.5
    assert any("different label" in note for note in result.notes)
    # the same copies with one label are not label errors
    clean = audit(features, samples.assign(label=np.array(CLASSES, dtype=object)[truth]), source=source,
                  hashes=[f"h{i}" for i in range(len(features))]).table
    assert not clean["is_label_issue"][[230, 5, 60]].any()


def test_the_extractions_duplicate_of_column_makes_exact_duplicates_without_hashes():
    features, truth, _ = blobs(seed=7)
    samples = table(truth)
    samples["duplicate_of"] = pd.Series(pd.NA, index=samples.index, dtype="string")
    samples.loc[120, "duplicate_of"] = samples["sample_id"][4]  # the same bytes, features far apart
    t = audit(features, samples).table
    assert t["duplicate_group"][4] == t["duplicate_group"][120] and (t["duplicate_kind"][[4, 120]] == "exact").all()
    assert t["duplicate_group"].notna().sum() == 2


def test_a_far_away_point_is_the_top_outlier():
    features, truth, _ = blobs(seed=5)
    features[123] = features.mean(axis=0) + 200
    result = audit(features, table(truth))
    t = result.table
    assert t["is_outlier"][123]
    assert int(t["outlier_score"].idxmax()) == 123 and result.ranked("outlier")[0] == 123
    assert t["is_outlier"].sum() <= 0.05 * len(features)


def test_an_audit_keeps_and_loads_as_it_was(with_duplicates):
    features, samples, hashes, _ = with_duplicates
    result = audit(features, samples.assign(label=samples["label"].where(samples.index != 5, None)), hashes=hashes)
    key = audit_key("features-1", "auto", hashes)
    assert load_audit(key) is None
    path = save_audit(result, key)
    assert path.exists()
    again = load_audit(key)
    pd.testing.assert_frame_equal(again.table, result.table)
    np.testing.assert_array_equal(again.neighbours, result.neighbours)
    assert again.source == result.source and again.notes == result.notes
    assert again.counts() == result.counts()


def test_the_audit_key_changes_with_source_and_hashes():
    base = audit_key("features-1")
    assert audit_key("features-1") == base
    assert len({base, audit_key("features-1", "knn"), audit_key("features-1", "from-model"),
                audit_key("features-1", "auto", ["h1", "h2"]), audit_key("features-1", "auto", ["h1", "h3"]),
                audit_key("features-2")}) == 6


def test_a_second_audit_of_the_same_features_reuses_the_neighbour_graph(planted):
    features, _, samples = planted
    key = f"test-{uuid.uuid4().hex}"
    before = graph_stats["computed"]
    first = audit(features, samples, features_key=key)
    second = audit(features, samples, features_key=key)
    assert graph_stats["computed"] == before + 1
    pd.testing.assert_frame_equal(first.table, second.table)
    pd.testing.assert_frame_equal(first.table, audit(features, samples).table)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_bad_input_is_one_clear_line(planted):
    features, truth, samples = planted
    nan = features.copy()
    nan[7, 3] = np.nan
    with pytest.raises(DataError) as exc:
        audit(nan, samples)
    assert "NaN" in one_line(exc) and "img/007.png" in one_line(exc)
    with pytest.raises(DataError) as exc:
        audit(features[:2], samples[:2])
    assert "at least 3" in one_line(exc)
    with pytest.raises(DataError) as exc:
        audit(features, samples[["sample_id", "label"]], source="from-model")
    assert "p_<class>" in one_line(exc) and "knn" in one_line(exc)
    with pytest.raises(DataError) as exc:  # the model's classes do not name every label
        audit(features, samples.drop(columns="p_f"), source="from-model")
    assert "p_<class>" in one_line(exc)
    with pytest.raises(DataError) as exc:
        audit(features, samples[:-1])
    one_line(exc)
    with pytest.raises(DataError) as exc:
        audit(features, samples, source="guess")
    assert "knn" in one_line(exc)


@pytest.mark.parametrize("how", ["no label column", "every label missing"])
def test_without_labels_duplicates_and_outliers_are_still_found(how):
    features, truth, _ = blobs(seed=6)
    features = np.concatenate([features, features[[4]]])
    features[9] = features.mean(axis=0) + 200
    samples = table(np.concatenate([truth, truth[[4]]]))
    samples = samples.drop(columns="label") if how == "no label column" else samples.assign(label=None)
    result = audit(features, samples)
    t = result.table
    assert result.source == "" and "label" in t.columns
    assert t["label"].isna().all() and t["suggested_label"].isna().all() and t["label_issue_score"].isna().all()
    assert not t["is_label_issue"].any()
    assert any("label errors were not looked for" in note for note in result.notes)
    assert t["duplicate_group"][4] == t["duplicate_group"][len(t) - 1] and pd.notna(t["duplicate_group"][4])
    assert t["is_outlier"][9] and int(t["outlier_score"].idxmax()) == 9
    assert class_summary(result)["samples"].sum() == len(t)
    assert confused_pairs(result).empty


@pytest.mark.parametrize("source", ["auto", "knn"])
def test_one_class_says_so_and_flags_no_label_errors(source):
    features, truth, _ = blobs(seed=7)
    samples = table(truth).assign(label="cat")
    result = audit(features, samples, source=source)
    assert not result.table["is_label_issue"].any() and result.table["label_issue_score"].isna().all()
    assert any("one class" in note and "cat" in note for note in result.notes)


def test_unlabelled_samples_among_labelled_ones_are_not_flagged(planted):
    features, truth, samples = planted
    samples = samples[["sample_id", "label"]].copy()
    samples.loc[[0, 60, 120], "label"] = None
    t = audit(features, samples, source="knn").table
    assert not t["is_label_issue"][[0, 60, 120]].any() and t["label_issue_score"][[0, 60, 120]].isna().all()
    assert set(np.flatnonzero(t["is_label_issue"])) == set(FLIPS)


def test_content_hashes_do_not_follow_paths_out_of_the_root(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(b"same bytes")
    (root / "sub" / "b.png").write_bytes(b"same bytes")
    (root / "c.png").write_bytes(b"other bytes")
    (tmp_path / "secret.png").write_bytes(b"same bytes")
    paths = ["a.png", "sub/b.png", "c.png", "../secret.png", str(tmp_path / "secret.png"), "sub/../../secret.png",
             "nowhere.png", None, "sub"]
    if hasattr(os, "symlink"):
        os.symlink(tmp_path / "secret.png", root / "link.png")
        paths.append("link.png")
    hashes = content_hashes(root, paths)
    assert len(hashes) == len(paths)
    assert hashes[0] == hashes[1] != hashes[2] and "missing" not in hashes[:3]
    assert hashes[3:] == ["missing"] * (len(paths) - 3)


def test_the_planted_confusion_is_the_top_pair(planted):
    features, truth, samples = planted
    result = audit(features, samples, source="knn")
    pairs = confused_pairs(result)
    assert list(pairs.columns) == ["label", "suggested_label", "samples"]
    assert pairs.iloc[0].tolist() == ["b", "a", 4]
    assert pairs["samples"].sum() == len(FLIPS) and len(pairs) == 3
    summary = class_summary(result).set_index("label")
    assert summary.index.tolist() == CLASSES
    assert summary.loc["b", "label_issues"] == 4 and summary.loc["b", "most_suggested_instead"] == "a"
    assert summary.loc["b", "samples"] == PER_CLASS + 4 and summary.loc["a", "samples"] == PER_CLASS - 4 + 1
    assert summary.loc["f", "label_issues"] == 0 and pd.isna(summary.loc["f", "most_suggested_instead"])


# --- python -m embedviz audit -------------------------------------------------------------------------------------


@pytest.fixture
def feature_folder(tmp_path):
    """An extract-style folder of 64-dimensional clusters with the planted label errors, a hostile label,
    two paths to the same image bytes and a far-away point."""
    features, truth, _ = blobs(dim=64, seed=8, per_class=40)
    features[100] = features.mean(axis=0) + 300
    flips = {3: "b", 45: "c", 130: "a"}
    samples = table(truth, flips)
    samples["label"] = samples["label"].replace("f", HOSTILE)
    samples["path"] = [f"{i:03d}.png" for i in range(len(samples))]
    images = tmp_path / "images"
    images.mkdir()
    for i, path in enumerate(samples["path"]):
        (images / path).write_bytes(f"image {i}".encode())
    shutil.copy(images / "050.png", images / "190.png")
    folder = tmp_path / "features"
    save_feature_set(FeatureSet(features, samples, pd.DataFrame(columns=["path", "reason"]), {"model": "test"}), folder)
    return folder, images, flips


def test_cli_writes_a_csv_report_with_the_planted_errors(feature_folder, tmp_path, capsys):
    folder, _, flips = feature_folder
    out = tmp_path / "report.csv"
    assert main(["audit", "--features", str(folder), "--out", str(out)]) == 0
    report = pd.read_csv(out)
    assert set(REQUIRED) <= set(report.columns) and len(report) == 240
    assert set(flips) <= set(np.flatnonzero(report["is_label_issue"]))
    assert report.loc[list(flips), "suggested_label"].tolist() == ["a", "b", "d"]
    assert report["is_outlier"][100] and report["outlier_score"].idxmax() == 100
    assert report["duplicate_group"].isna().all()  # without --images no bytes were compared
    assert f"{report['is_label_issue'].sum()} suspected label errors" in capsys.readouterr().out


def test_cli_finds_same_image_bytes_with_images(feature_folder, tmp_path):
    folder, images, _ = feature_folder
    out = tmp_path / "report.parquet"
    assert main(["audit", "--features", str(folder), "--images", str(images), "--out", str(out)]) == 0
    report = pd.read_parquet(out)
    assert set(REQUIRED) <= set(report.columns)
    assert report["duplicate_group"][50] == report["duplicate_group"][190] and pd.notna(report["duplicate_group"][50])
    assert report["duplicate_group"].notna().sum() == 2 and report["duplicate_kind"][50] == "exact"


def test_cli_html_report_escapes_text_from_the_data(feature_folder, tmp_path):
    folder, _, _ = feature_folder
    out = tmp_path / "report.html"
    assert main(["audit", "--features", str(folder), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Suspected label errors" in html and "img/045.png" in html


def test_cli_html_report_summarises_a_cluster_column_and_an_unwritable_out_is_one_line(feature_folder, tmp_path,
                                                                                        capsys):
    folder, _, _ = feature_folder
    samples = pd.read_parquet(folder / "samples.parquet")
    samples["cluster"] = np.where(np.arange(len(samples)) < 120, "west", "east")
    samples.to_parquet(folder / "samples.parquet", index=False)
    out = tmp_path / "report.html"
    assert main(["audit", "--features", str(folder), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<h2>Per cluster</h2>" in html and "west" in html and "east" in html
    capsys.readouterr()
    (tmp_path / "a folder.csv").mkdir()
    assert main(["audit", "--features", str(folder), "--out", str(tmp_path / "a folder.csv")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"embedviz audit: Cannot write {tmp_path / 'a folder.csv'}: it is a folder, or its parent is a file; give a "
        "file name."]  # said before any work: no progress lines


@pytest.mark.parametrize("args, words", [
    (["--out", "REPORT.xlsx"], ".csv, .parquet or .html"),
    (["--probabilities", "from-model", "--out", "REPORT.csv"], "p_<class>"),
    (["--images", "NOWHERE", "--out", "REPORT.csv"], "no such folder"),
])
def test_cli_bad_input_exits_2_with_one_line(feature_folder, tmp_path, capsys, args, words):
    folder, _, _ = feature_folder
    args = [str(tmp_path / a) if a.startswith(("REPORT", "NOWHERE")) else a for a in args]
    assert main(["audit", "--features", str(folder), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert lines[0].startswith("embedviz audit: ")
    assert not list(tmp_path.glob("REPORT*"))


def test_cli_features_with_nan_exit_2(tmp_path, capsys):
    features, truth, _ = blobs(seed=9)
    features[5, 0] = np.nan
    folder = tmp_path / "features"
    save_feature_set(FeatureSet(features, table(truth), pd.DataFrame(columns=["path", "reason"]), {}), folder)
    assert main(["audit", "--features", str(folder), "--out", str(tmp_path / "r.csv")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "NaN" in lines[0], lines
    assert not (tmp_path / "r.csv").exists()
