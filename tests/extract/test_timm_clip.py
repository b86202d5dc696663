"""timm (``timm:NAME``) and open_clip (``clip:NAME``) models: every family loads weights saved by the library
itself, lists its layers and extracts the same features as calling the library directly; a mismatched
checkpoint names its keys, a pickle is refused, and what would download or is not installed is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embedviz.cli import main
from embedviz.data.images import load_collection
from embedviz.errors import ModelError
from embedviz.extract.features import extract_features, extract_layers
from embedviz.extract.layers import default_layer, list_layers
from embedviz.extract.models import load_model, needs_weights
from embedviz.extract.spec import ModelSpec
from embedviz.extract.trusted import ENV_VAR

from ..conftest import make_image_folder

timm = pytest.importorskip("timm")
open_clip = pytest.importorskip("open_clip")



@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("timm") / "shapes", per_class=3)


@pytest.fixture(autouse=True)
def _no_programs(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    """As the libraries publish weights: a .safetensors file, or a plain state dict for torch.load."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def _inputs(fs, model, folder: Path) -> torch.Tensor:
    """The extracted images fed exactly as embedviz fed them, for the library's own call."""
    return torch.stack([model.preprocessing(Image.open(folder / p)) for p in fs.samples["path"]])


def _close(a: np.ndarray, b: torch.Tensor) -> None:
    np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-5, atol=1e-5)


TIMM_CASES = [
    pytest.param("resnet18", 7, ".safetensors", "global_pool.flatten", id="resnet-safetensors"),
    pytest.param("convnext_atto", 5, ".pth", "head.drop", id="convnext-pth"),
    pytest.param("vit_tiny_patch16_224", 0, ".safetensors", "head", id="vit-no-head", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, classes, suffix, layer", TIMM_CASES)
def test_a_timm_model_loads_its_own_state_dict_and_extracts_what_timm_computes(images, tmp_path, name, classes,
                                                                                suffix, layer):
    torch.manual_seed(1)
    reference = timm.create_model(name, pretrained=False, num_classes=classes).eval()
    path = _save(reference.state_dict(), tmp_path / f"{name}{suffix}")

    model = load_model(f"timm:{name}", str(path))
    assert model.num_classes == (classes or None) and model.task == ("classification" if classes else "embedding")
    config = timm.data.resolve_data_config({}, model=reference)
    assert (model.preprocessing.size, model.preprocessing.interpolation) == (config["input_size"][-1], "bicubic")
    assert model.preprocessing.mean == pytest.approx(config["mean"]) and model.preprocessing.std == pytest.approx(
        config["std"])
    assert model.preprocessing.resize_to == int(config["input_size"][-1] / config["crop_pct"])
    assert layer in list_layers(model) and default_layer(model) == layer

    collection = load_collection(images)
    fs = extract_features(collection, model, batch_size=4, num_workers=0)
    with torch.inference_mode():
        x = _inputs(fs, model, images)
        expected = reference.forward_head(reference.forward_features(x), pre_logits=True)
    assert fs.features.shape == (len(collection) - 1, expected.shape[1])
    _close(fs.features, expected)
    assert ("prediction" in fs.samples.columns) == bool(classes)  # an embedding model predicts nothing
    assert ModelSpec(f"timm:{name}", str(path)).name() == f"timm {name} ({path.name})"


def test_a_vits_cls_token_and_mean_of_patch_tokens_are_both_layers(images):
    model = load_model("timm:vit_tiny_patch16_224", "random")
    assert model.prefix_tokens == 1 and default_layer(model) == "head_drop"  # the CLS token, pre-logits
    collection = load_collection(images)
    sets = extract_layers(collection, model, ["head_drop", "norm"], batch_size=8, num_workers=0)
    with torch.inference_mode():
        tokens = model.module.forward_features(_inputs(sets["norm"], model, images))
    _close(sets["head_drop"].features, tokens[:, 0])  # fc_norm is the identity with the CLS token
    _close(sets["norm"].features, tokens[:, 1:].mean(dim=1))  # the CLS token is not in the average


def test_random_timm_weights_are_seeded_and_a_dinov2_keeps_its_size():
    a, b = load_model("timm:resnet18", "random"), load_model("timm:resnet18", "random")
    assert a.weights_sha256 == "random:seed0" and a.num_classes == 1000
    assert all(torch.equal(x, y) for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values()))
    dino = load_model("timm:vit_small_patch14_dinov2.lvd142m", "random")
    assert dino.preprocessing.size == 518 and dino.task == "embedding" and dino.num_classes is None
    assert default_layer(dino) == list_layers(dino)[-1]


def test_a_clip_image_tower_extracts_what_encode_image_computes(images, tmp_path, tiny_clip):
    from embedviz.extract.clip import build_clip

    torch.manual_seed(2)
    reference = build_clip(tiny_clip)
    for suffix in (".safetensors", ".pth"):
        path = _save(reference.state_dict(), tmp_path / f"clip{suffix}")
        model = load_model(tiny_clip, str(path))
        assert model.task == "embedding" and model.num_classes is None and model.weights_name == path.name
        assert model.preprocessing.size == 64 and model.preprocessing.interpolation == "bicubic"
        assert default_layer(model) == list_layers(model)[-1]
        fs = extract_features(load_collection(images), model, batch_size=4, num_workers=0)
        with torch.inference_mode():
            expected = reference.encode_image(_inputs(fs, model, images))
        assert fs.features.shape[1] == 32 and "prediction" not in fs.samples.columns
        _close(fs.features, expected)
    assert ModelSpec(tiny_clip, "random").name() == f"open_clip {tiny_clip.removeprefix('clip:')} (random)"


def test_random_clip_weights_match_the_text_towers(tiny_clip):
    from embedviz.extract.clip import clip_model

    model = load_model(tiny_clip, "random")
    again = clip_model(tiny_clip, "random").visual
    assert model.weights_sha256 == "random:seed0"
    assert all(torch.equal(x, y) for x, y in zip(model.module.state_dict().values(), again.state_dict().values()))


@pytest.mark.slow
def test_clip_vit_b_32_loads_and_extracts(images, tmp_path):
    from embedviz.extract.clip import build_clip

    reference = build_clip("clip:ViT-B-32")
    path = _save(reference.state_dict(), tmp_path / "open_clip_model.safetensors")
    model = load_model("clip:ViT-B-32", str(path))
    assert default_layer(model) == "matmul" and "ln_post" in [n.split(".")[0] for n in list_layers(model)]
    fs = extract_features(load_collection(images), model, batch_size=8, num_workers=0)
    with torch.inference_mode():
        _close(fs.features, reference.encode_image(_inputs(fs, model, images)))


def test_a_mismatched_checkpoint_names_missing_unexpected_and_misshaped_keys(tmp_path):
    state = timm.create_model("resnet18", pretrained=False, num_classes=3).state_dict()
    del state["layer1.0.conv1.weight"]
    state["projector.weight"] = torch.zeros(2, 2)
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = _save(state, tmp_path / "bad.safetensors")
    with pytest.raises(ModelError) as info:
        load_model("timm:resnet18", str(path))
    message = str(info.value)
    assert "\n" not in message
    assert "missing layer1.0.conv1.weight" in message and "unexpected projector.weight" in message
    assert "wrong shape conv1.weight (file (64, 3, 3, 3), model (64, 3, 7, 7))" in message


def test_a_clip_checkpoint_of_another_model_names_its_keys(tmp_path, tiny_clip):
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    path = _save(state, tmp_path / "resnet.pth")
    with pytest.raises(ModelError, match=r"missing .*unexpected "):
        load_model(tiny_clip, str(path))


@pytest.mark.parametrize("architecture", ["timm:resnet18", "clip"])
def test_a_pickled_module_is_refused_in_one_line(tmp_path, architecture, tiny_clip):
    path = tmp_path / "whole.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(ModelError) as info:
        load_model(tiny_clip if architecture == "clip" else architecture, str(path))
    assert "will not unpickle" in str(info.value) and "\n" not in str(info.value)


def test_pretrained_offline_is_one_line(monkeypatch, tiny_clip):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as info:
        load_model("timm:resnet18", "pretrained")
    assert "Could not download timm's pretrained resnet18" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelError, match="Published CLIP weights are downloaded"):
        load_model(tiny_clip, "pretrained")


@pytest.mark.parametrize("architecture, package", [("timm:resnet18", "timm"), ("clip:ViT-B-32", "open_clip")])
def test_a_missing_package_is_one_line_naming_the_install(monkeypatch, architecture, package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as when it is not installed
    for weights in ("random", None):
        with pytest.raises(ModelError) as info:
            load_model(architecture, weights)
        assert "pip install -e '.[models]'" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("architecture, words", [
    ("timm:resnet_nope", "timm has no model 'resnet_nope'"),
    ("timm:resnet50.nope", "Invalid pretrained tag"),
    ("timm:", "Name the timm model"),
    ("clip:ViT-Nope", "open_clip has no model 'ViT-Nope'"),
])
def test_unknown_names_are_one_line(architecture, words):
    with pytest.raises(ModelError, match=words):
        load_model(architecture, "random")


def test_weights_are_needed_and_named(tmp_path):
    assert needs_weights("timm:resnet18", None) and not needs_weights("timm:resnet18", "random")
    with pytest.raises(ModelError, match="timm:resnet18 needs weights"):
        load_model("timm:resnet18", None)


def test_a_vit_fed_another_size_is_one_line(images):
    from embedviz.extract.preprocessing import Preprocessing

    model = load_model("timm:vit_tiny_patch16_224", "random")
    model = model.with_preprocessing(Preprocessing(size=160))
    with pytest.raises(ModelError, match=r"cannot take inputs of shape \(3, 160, 160\)"):
        extract_features(load_collection(images), model, batch_size=4, num_workers=0)


def test_the_command_line_lists_layers_and_extracts(images, tmp_path, capsys, tiny_clip):
    assert main(["layers", "--model", "timm:resnet18", "--weights", "random"]) in (0, None)
    assert "global_pool.flatten  (default)" in capsys.readouterr().out
    state = timm.create_model("resnet18", pretrained=False, num_classes=2).state_dict()
    path = _save(state, tmp_path / "resnet18.safetensors")
    assert main(["extract", "--data", str(images), "--model", "timm:resnet18", "--weights", str(path),
                 "--out", str(tmp_path / "timm"), "--workers", "0"]) in (0, None)
    assert np.load(tmp_path / "timm" / "features.npy").shape == (6, 512)
    assert main(["extract", "--data", str(images), "--model", tiny_clip, "--weights", "random",
                 "--out", str(tmp_path / "clip"), "--workers", "0"]) in (0, None)
    assert np.load(tmp_path / "clip" / "features.npy").shape == (6, 32)


def test_an_empty_or_huge_head_and_a_huge_model_are_refused_before_anything_is_built():
    from embedviz.extract.models import load_model
    from embedviz.extract.timm_models import checked_classes

    with pytest.raises(ModelError, match="not a classifier") as empty:  # 80 bytes asking for a million classes
        checked_classes(torch.zeros(1_000_000, 0), "fc.weight")
    with pytest.raises(ModelError, match="billion parameters") as huge:
        load_model("timm:vit_7b_patch16_dinov3", "random")
    assert "\n" not in str(empty.value) + str(huge.value)


def test_a_token_map_loses_its_cls_token_only_once_it_has_one():
    from embedviz.extract.pooling import pool

    with_cls, patches = torch.randn(2, 197, 8), torch.randn(2, 196, 8)
    assert torch.allclose(pool(with_cls, prefix_tokens=1), with_cls[:, 1:].mean(dim=1))
    assert torch.allclose(pool(patches, prefix_tokens=1), patches.mean(dim=1))  # before the CLS token is added
