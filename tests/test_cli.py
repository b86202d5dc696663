"""``python -m embedviz`` on a folder made here, as a person with a large job would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from .conftest import make_image_folder


def run(*args: str, check: bool = True, home=None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"EMBEDVIZ_HOME": str(home)} if home else {})}
    result = subprocess.run([sys.executable, "-m", "embedviz", *args], capture_output=True, text=True, timeout=300,
                            env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_image_folder(root / "images", per_class=10, seed=3)
    out = root / "features"
    # a module fixture runs before the per-test EMBEDVIZ_HOME is set: give it a home of its own
    result = run("extract", "--data", str(data), "--model", "pixels", "--out", str(out), "--batch-size", "7",
                 home=root / "home")
    return out, result


def test_extract_writes_the_four_files(extracted):
    out, result = extracted
    features = np.load(out / "features.npy")
    samples = pd.read_parquet(out / "samples.parquet")
    skipped = pd.read_csv(out / "skipped.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    assert features.dtype == np.float32 and features.shape == (20, 3072)
    assert samples["sample_id"].tolist()[:2] == ["discs/00.png", "discs/01.png"]
    assert set(samples["label"]) == {"discs", "squares"}
    assert skipped["path"].tolist() == ["squares/broken.png"]
    assert manifest["model"] == "pixels" and manifest["num_features"] == 20 and manifest["num_skipped"] == 1
    assert "20 images" in result.stdout


def test_second_extract_is_a_cache_hit(tmp_path):
    data = make_image_folder(tmp_path / "images", per_class=3)
    first = run("extract", "--data", str(data), "--model", "pixels", "--out", str(tmp_path / "first"))
    again = run("extract", "--data", str(data), "--model", "pixels", "--out", str(tmp_path / "again"))
    assert "cache hit" not in first.stdout and "cache hit" in again.stdout
    assert (tmp_path / "again" / "features.npy").read_bytes() == (tmp_path / "first" / "features.npy").read_bytes()


def test_reduce_to_csv_parquet_html_and_metascatter(extracted, tmp_path):
    out, _ = extracted
    run("reduce", "--features", str(out), "--method", "pca", "--out", str(tmp_path / "map.csv"))
    table = pd.read_csv(tmp_path / "map.csv")
    assert list(table.columns[:3]) == ["sample_id", "x", "y"] and "label" in table.columns and len(table) == 20

    run("reduce", "--features", str(out), "--method", "tsne", "--dims", "3", "--param", "perplexity=5",
        "--out", str(tmp_path / "map.parquet"))
    assert {"x", "y", "z"} <= set(pd.read_parquet(tmp_path / "map.parquet").columns)

    run("reduce", "--features", str(out), "--method", "pca", "--format", "metascatter",
        "--out", str(tmp_path / "ms.csv"))
    assert list(pd.read_csv(tmp_path / "ms.csv").columns[:3]) == ["Paths", "X-Coord", "Y-Coord"]

    run("reduce", "--features", str(out), "--method", "pca", "--out", str(tmp_path / "map.html"))
    html = (tmp_path / "map.html").read_text()
    assert "<script src=" not in html.split("</head>")[0] and "plotly" in html.lower()  # plotly.js is embedded
    assert "00.png" in html  # hover shows each image's id


def test_plain_npy_is_accepted(tmp_path):
    matrix = np.random.default_rng(0).random((30, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", matrix)
    run("reduce", "--features", str(tmp_path / "x.npy"), "--method", "pca", "--out", str(tmp_path / "m.csv"))
    assert pd.read_csv(tmp_path / "m.csv")["sample_id"].tolist() == list(range(30))


@pytest.mark.parametrize("args,words", [
    (["extract", "--data", "/no/such/folder", "--model", "pixels", "--out", "x"], "does not exist"),
    (["extract", "--data", ".", "--model", "resnet19", "--weights", "random", "--out", "x"], "Unknown architecture"),
    (["reduce", "--features", "/no/such.npy", "--method", "pca", "--out", "m.csv"], "does not exist"),
    (["reduce", "--features", "/no/such/folder", "--method", "pca", "--out", "m.csv"], "neither a feature folder"),
    (["reduce", "--features", "FEATURES", "--method", "tsne", "--param", "perplexity", "--out", "m.csv"], "NAME=VALUE"),
    (["reduce", "--features", "FEATURES", "--method", "pca", "--out", "m.xlsx"], ".csv, .parquet or .html"),
    (["reduce", "--features", "FEATURES", "--method", "isomap", "--out", "m.csv"], "invalid choice"),
    (["extract", "--model", "pixels"], "required"),
])
def test_bad_input_exits_2_with_one_line(extracted, tmp_path, args, words):
    out, _ = extracted
    args = [str(out) if a == "FEATURES" else a for a in args]
    args = [str(tmp_path / a) if a in ("x", "m.csv", "m.xlsx") else a for a in args]
    result = run(*args, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_layers_lists_nodes_and_marks_the_default():
    lines = run("layers", "--model", "demo").stdout.splitlines()
    assert "classifier.1  (default)" in lines and lines[-1] == "classifier.2"


@pytest.mark.slow
def test_torchvision_architecture_with_safetensors(tmp_path):
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = tmp_path / "resnet18_2.safetensors"
    save_file(torchvision.models.resnet18(num_classes=2).state_dict(), str(weights))
    data = make_image_folder(tmp_path / "images", per_class=4, seed=9)
    out = tmp_path / "features"
    run("extract", "--data", str(data), "--model", "resnet18", "--weights", str(weights), "--out", str(out))
    samples = pd.read_parquet(out / "samples.parquet")
    assert np.load(out / "features.npy").shape == (8, 512)
    assert set(samples["prediction"]) <= {"discs", "squares"}  # class names from the folders, sorted
    assert "correct" in samples.columns
    run("extract", "--data", str(data), "--model", "resnet18", "--weights", str(weights), "--layer", "layer3",
        "--out", str(tmp_path / "l3"))
    assert np.load(tmp_path / "l3" / "features.npy").shape == (8, 256)  # spatial map pooled to a vector


def test_duplicates_are_reported(tmp_path):
    import shutil

    data = make_image_folder(tmp_path / "images", per_class=3)
    shutil.copy(data / "discs" / "01.png", data / "discs" / "01_again.png")
    out = tmp_path / "features"
    result = run("extract", "--data", str(data), "--model", "pixels", "--out", str(out))
    assert "1 exact duplicates" in result.stdout
    samples = pd.read_parquet(out / "samples.parquet").set_index("sample_id")
    assert samples.loc["discs/01_again.png", "duplicate_of"] == "discs/01.png"
    assert samples["duplicate_of"].notna().sum() == 1


def test_reduce_precomputed_features_with_metadata(tmp_path):
    matrix = np.random.default_rng(1).normal(size=(25, 6)).astype(np.float32)
    np.save(tmp_path / "emb.npy", matrix)
    pd.DataFrame({"path": [f"p/{i}.jpg" for i in range(25)], "label": ["x", "y"] * 12 + ["x"]}).to_csv(
        tmp_path / "meta.csv", index=False)
    run("reduce", "--features", str(tmp_path / "emb.npy"), "--metadata", str(tmp_path / "meta.csv"),
        "--method", "pca", "--format", "metascatter", "--out", str(tmp_path / "ms.csv"))
    table = pd.read_csv(tmp_path / "ms.csv")
    assert table["Paths"].tolist()[:2] == ["p/0.jpg", "p/1.jpg"] and "label" in table.columns


def test_class_index_names_labels_and_predictions(tmp_path):
    (tmp_path / "digits.json").write_text(json.dumps({str(i): f"digit-{i}" for i in range(10)}))
    out = tmp_path / "named"
    run("extract", "--data", "demo", "--model", "demo", "--classes", str(tmp_path / "digits.json"), "--out", str(out))
    samples = pd.read_parquet(out / "samples.parquet")
    assert samples["label"].iat[0] == "digit-0" and samples["prediction"].str.startswith("digit-").all()
    assert samples["correct"].mean() > 0.95


def test_a_metascatter_map_goes_round_trip_unchanged(extracted, tmp_path):
    out, _ = extracted
    run("reduce", "--features", str(out), "--method", "pca", "--format", "metascatter",
        "--out", str(tmp_path / "map.csv"))
    first = pd.read_csv(tmp_path / "map.csv")
    run("reduce", "--features", str(tmp_path / "map.csv"), "--method", "precomputed", "--format", "metascatter",
        "--out", str(tmp_path / "again.csv"))
    again = pd.read_csv(tmp_path / "again.csv")
    np.testing.assert_allclose(again[["X-Coord", "Y-Coord"]], first[["X-Coord", "Y-Coord"]], rtol=1e-6)
    assert list(again["Paths"]) == list(first["Paths"])
    done = run("reduce", "--features", str(tmp_path / "map.csv"), "--method", "precomputed", "--dims", "3",
               "--out", str(tmp_path / "bad.csv"), check=False)
    assert done.returncode == 2 and done.stderr.strip() == "embedviz reduce: The given coordinates are 2-D; choose 2-D."


def test_several_layers_in_one_call_each_in_its_folder(tmp_path):
    done = run("extract", "--data", "demo", "--model", "demo", "--layer", "features.4,classifier.1", "--pooling", "max",
               "--out", str(tmp_path / "layers"))
    assert done.stdout.count("1,797 images") == 2
    assert np.load(tmp_path / "layers" / "features.4" / "features.npy").shape == (1797, 32)
    assert np.load(tmp_path / "layers" / "classifier.1" / "features.npy").shape == (1797, 64)


def test_projector_files_open_again_as_the_same_features(extracted, tmp_path):
    out_dir, _ = extracted
    image_dir = out_dir.parent / "images"
    result = run("projector", "--features", str(out_dir), "--images", str(image_dir), "--out", str(tmp_path / "tb"))
    assert "with a sprite" in result.stdout
    names = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert names == ["metadata.tsv", "projector_config.pbtxt", "sprite.png", "tensors.tsv"]
    from embedviz.data.precomputed import load_feature_set, load_precomputed

    original = load_feature_set(out_dir)
    again = load_precomputed(tmp_path / "tb")
    np.testing.assert_allclose(again.features, original.features, rtol=1e-6)
    assert again.samples["sample_id"].tolist() == original.samples["sample_id"].astype(str).tolist()
    config = (tmp_path / "tb" / "projector_config.pbtxt").read_text()
    assert 'sprite {' in config and "single_image_dim: 64" in config
    from PIL import Image

    side = Image.open(tmp_path / "tb" / "sprite.png").size[0]
    assert side == 64 * int(np.ceil(np.sqrt(len(original))))


def test_the_package_and_the_help_start_without_heavy_libraries():
    """``import embedviz`` and ``--help`` import torch, pandas and plotly only when a command needs them;
    every public name still imports, the first time it is asked for."""
    heavy = "[m for m in ('torch', 'torchvision', 'pandas', 'plotly') if m in sys.modules]"
    code = ("import sys, embedviz, embedviz.cli\n"
            "try:\n    embedviz.cli._parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print({heavy})\n"
            "from embedviz import FeatureStore, load_model, scatter_figure, EmbedVizError\n"
            "assert sorted(embedviz.__all__) == sorted(embedviz._SOURCES)\n"
            "assert all(getattr(embedviz, name) is not None for name in embedviz.__all__)\n"
            f"print({heavy})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.strip().splitlines()[-2:]
    assert before == "[]" and "pandas" in after and "plotly" in after
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        import embedviz

        embedviz.nothing_here  # noqa: B018


def test_a_second_extract_is_read_from_the_store_without_torch(tmp_path):
    """The first run remembers the model (its identity and layers); the second finds the stored
    features from that alone: no torch, no model built, the same files written."""
    data = make_image_folder(tmp_path / "images", per_class=4, seed=5)
    args = ["extract", "--data", str(data), "--model", "demo", "--layer", "features.4,classifier.1"]
    first = run(*args, "--out", str(tmp_path / "first"), home=tmp_path / "home")
    env = {**os.environ, "EMBEDVIZ_HOME": str(tmp_path / "home")}
    second = subprocess.run([sys.executable, "-X", "importtime", "-m", "embedviz", *args, "--out",
                             str(tmp_path / "second")], capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr
    assert "cache hit" not in first.stdout and second.stdout.count("cache hit") == 2
    imported = {line.rsplit("|", 1)[-1].strip() for line in second.stderr.splitlines()
                if line.startswith("import time:")}
    assert "torch" not in imported and "torchvision" not in imported
    for layer in ("features.4", "classifier.1"):
        np.testing.assert_array_equal(np.load(tmp_path / "first" / layer / "features.npy"),
                                      np.load(tmp_path / "second" / layer / "features.npy"))
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "first" / layer / "samples.parquet"),
                                      pd.read_parquet(tmp_path / "second" / layer / "samples.parquet"))
