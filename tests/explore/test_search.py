"""Search by text on a tiny CLIP (random weights, open_clip's own tokenizer), zero-shot labels and where two
feature spaces disagree."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

open_clip = pytest.importorskip("open_clip")

from embedviz.errors import DataError  # noqa: E402
from embedviz.explore.search import (  # noqa: E402
    neighbours_disagree,
    search_model,
    similarity,
    top,
    unit,
    unit_features,
    zero_shot,
    zero_shot_agreement,
)

PHRASES = ["a red square", "a dog on grass", "a blue circle", "three yellow stars", "an empty street at night"]


@pytest.fixture
def tiny(tiny_clip):
    return tiny_clip


def _manifest(architecture: str) -> dict:
    from torchvision.models.feature_extraction import get_graph_node_names

    from embedviz.extract.clip import clip_model

    _, nodes = get_graph_node_names(clip_model(architecture, "random").visual)
    return {"model": architecture, "weights": "random", "weights_sha256": "random:seed0", "layer": nodes[-1],
            "preprocessing": {"size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3, "resize": "squash"}}


def _planted(architecture: str, n: int = 400, seed: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """Features in the tower's space: noise, and for each phrase one sample lying near its text embedding."""
    model = search_model(_manifest(architecture), None)
    texts = model.encode_text(PHRASES)
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 1, (n, texts.shape[1])).astype(np.float32)
    rows = rng.choice(n, len(PHRASES), replace=False)
    features[rows] = texts * 3 + rng.normal(0, 0.05, texts.shape)
    return features, dict(zip(PHRASES, rows.tolist()))


def test_a_text_query_ranks_its_planted_image_first(tiny):
    features, planted = _planted(tiny)
    model = search_model(_manifest(tiny), None)
    space = unit_features(features, "planted")
    for phrase, row in planted.items():
        scores = similarity(space, model.encode_text([phrase])[0])
        assert top(scores, 1)[0] == row, phrase
        assert -1.0001 <= scores.min() and scores.max() <= 1.0001


def test_the_text_tower_is_kept_after_the_first_query(tiny):
    import time

    model = search_model(_manifest(tiny), None)
    model.encode_text(["warm up"])
    start = time.perf_counter()
    model.encode_text(["a second query"])
    assert time.perf_counter() - start < 0.5


def test_top_is_best_first_and_stays_within_the_rows_asked_for():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    assert top(scores, 3).tolist() == [1, 3, 2]
    assert top(scores, 2, within=np.array([True, False, True, False, True])).tolist() == [2, 4]
    assert top(scores, 99).tolist() == [1, 3, 2, 4, 0] and top(scores, 0).tolist() == []


def test_zero_shot_labels_each_image_with_the_nearest_class_name_and_says_how_often_labels_agree(tiny):
    model = search_model(_manifest(tiny), None)
    names = ["cat", "truck", "violin"]
    texts = model.encode_text([f"a photo of a {n}." for n in names])
    features = np.repeat(texts, 4, axis=0) * 2
    table = zero_shot(unit(features), names, model)
    assert table["zero_shot"].tolist() == [n for n in names for _ in range(4)]
    assert (table["zero_shot_confidence"] > 1 / 3).all()
    labels = pd.Series(["cat"] * 4 + ["truck"] * 4 + ["cello"] * 3 + [None], dtype="string")
    assert zero_shot_agreement(table["zero_shot"], labels) == pytest.approx(8 / 11)
    with pytest.raises(DataError, match="at least two class names"):
        zero_shot(unit(features), ["cat", " "], model)


def test_features_that_are_not_a_clip_embedding_are_refused_in_one_line(tiny):
    with pytest.raises(DataError, match="needs features from a CLIP") as not_clip:
        search_model({"model": "resnet18", "layer": "flatten"}, None)
    inner = dict(_manifest(tiny), layer="transformer.resblocks.0.attn")
    with pytest.raises(DataError, match="not the image tower's output") as wrong_layer:
        search_model(inner, None)
    with pytest.raises(DataError, match="Give the weights file") as no_weights:
        search_model(dict(_manifest(tiny), weights="clip.safetensors", weights_sha256="ab" * 32), None)
    for error in (not_clip, wrong_layer, no_weights):
        assert "\n" not in str(error.value)


def test_neighbours_disagree_is_zero_for_the_same_space_and_high_for_an_unrelated_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16))
    assert neighbours_disagree(a, a * 3, k=5).max() == 0  # scale does not change a neighbourhood
    unrelated = neighbours_disagree(a, rng.normal(size=(200, 16)), k=5)
    assert unrelated.mean() > 0.8 and ((unrelated >= 0) & (unrelated <= 1)).all()
    with pytest.raises(DataError, match="same images"):
        neighbours_disagree(a, a[:10])


def test_the_search_command_lists_the_planted_image_first(tiny, tmp_path, capsys):
    from embedviz.cli import main

    features, planted = _planted(tiny)
    folder = tmp_path / "clip-features"
    folder.mkdir()
    np.save(folder / "features.npy", features)
    pd.DataFrame({"sample_id": [f"img{i:03d}" for i in range(len(features))],
                  "path": [f"img{i:03d}.png" for i in range(len(features))]}).to_parquet(folder / "samples.parquet")
    (folder / "manifest.json").write_text(json.dumps(_manifest(tiny)))
    assert main(["search", "--features", str(folder), "--text", "a dog on grass", "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("sample_id,path,") and len(lines) == 4
    assert lines[1].startswith(f"img{planted['a dog on grass']:03d},")
    assert main(["search", "--features", str(folder), "--top", "3"]) == 2
    assert "Give --text" in capsys.readouterr().err


def test_a_short_query_is_encoded_as_open_clip_encodes_it(tiny):
    import torch

    from embedviz.extract.clip import _encode_text, clip_model

    model = clip_model(tiny, "random")
    tokens = open_clip.get_tokenizer("ViT-B-32")(["a dog", "a much longer sentence about several things on a table"])
    with torch.inference_mode():
        assert torch.allclose(_encode_text(model, tokens), model.encode_text(tokens), atol=1e-5)
