from __future__ import annotations

import os
import pickle
import re

import pytest
import torch
from safetensors.torch import save_file

from embedviz.errors import ModelError
from embedviz.extract.layers import check_layer, default_layer, list_layers
from embedviz.extract.models import PRETRAINED, load_model, read_state_dict


def _resnet18_state(num_classes: int) -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=num_classes).state_dict()


def test_demo_model_and_its_default_layer():
    model = load_model("demo")
    assert model.num_classes == 10
    assert list_layers(model)[-1] == "classifier.2"
    assert default_layer(model) == "classifier.1"  # the input of the final Linear


def test_pixels_has_one_layer():
    model = load_model("pixels")
    assert model.is_pixels and list_layers(model) == ["pixels"]


def test_num_classes_is_read_from_safetensors(tmp_path):
    path = tmp_path / "resnet18_7.safetensors"
    save_file(_resnet18_state(7), str(path))
    model = load_model("resnet18", path)
    assert model.num_classes == 7
    assert default_layer(model) == "flatten"
    assert "layer4.1.relu_1" in list_layers(model)
    assert check_layer(model, "layer4") == "layer4"  # a module name means its last node


def test_pt_state_dict_in_a_wrapper_with_dataparallel_prefix(tmp_path):
    state = {f"module.{k}": v for k, v in _resnet18_state(3).items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 5, "state_dict": state}, path)
    assert load_model("resnet18", path).num_classes == 3


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickled_code_is_never_executed(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"weight": _Payload(str(marker))}, fh)
    with pytest.raises(ModelError, match="plain state_dict"):
        read_state_dict(path)
    assert not marker.exists()


def test_weights_for_another_architecture_are_refused(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file(_resnet18_state(5), str(path))
    with pytest.raises(ModelError, match="does not fit"):
        load_model("mobilenet_v3_small", path)


def test_bad_names_and_files_get_clear_messages(tmp_path):
    with pytest.raises(ModelError, match="Unknown architecture 'resnet19'"):
        load_model("resnet19", "random")
    with pytest.raises(ModelError, match="needs weights"):
        load_model("resnet18")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="not a valid .safetensors"):
        load_model("resnet18", junk)
    with pytest.raises(ModelError, match="has no layer 'layer9'"):
        check_layer(load_model("resnet18", "random"), "layer9")


def test_pretrained_download_offline_fails_with_a_message(monkeypatch):
    import torch.hub

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ModelError, match="Could not download torchvision's pretrained resnet18 weights"):
        load_model("resnet18", PRETRAINED)


def test_pretrained_download_reports_a_broken_transfer_but_not_a_bug(monkeypatch):
    """A cut connection is "could not fetch"; an error of our own code is not dressed up as one."""
    import http.client

    import torchvision

    weights = type(torchvision.models.get_model_weights("resnet18").DEFAULT)

    def cut(self, **kwargs):
        raise http.client.IncompleteRead(b"partial")

    monkeypatch.setattr(weights, "get_state_dict", cut)
    with pytest.raises(ModelError, match="Could not download torchvision's pretrained resnet18 weights"):
        load_model("resnet18", PRETRAINED)

    def bug(self, **kwargs):
        raise TypeError("get_state_dict() got an unexpected keyword argument")

    monkeypatch.setattr(weights, "get_state_dict", bug)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_model("resnet18", PRETRAINED)


@pytest.mark.parametrize("wrap", [
    lambda s: {"state_dict_ema": s},
    lambda s: {f"_orig_mod.{k}": v for k, v in s.items()},
    lambda s: {"model": {f"module._orig_mod.{k}": v for k, v in s.items()}},
    lambda s: {**{f"module.{k}": v for k, v in s.items()}, "n_averaged": torch.tensor(3)},
], ids=["ema", "compiled", "nested-dataparallel-compiled", "swa"])
def test_real_checkpoint_layouts_unwrap(tmp_path, wrap):
    path = tmp_path / "ckpt.pt"
    torch.save(wrap(_resnet18_state(4)), path)
    assert load_model("resnet18", path).num_classes == 4


def test_mismatch_names_wrongly_shaped_keys(tmp_path):
    state = _resnet18_state(4)
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    del state["bn1.bias"]
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError) as info:
        load_model("resnet18", path)
    message = str(info.value)
    assert "missing bn1.bias" in message
    assert "wrong shape layer1.0.conv1.weight (file (64, 64, 5, 5), model (64, 64, 3, 3))" in message


def test_formats_that_carry_code_are_refused_by_name(tmp_path):
    from embedviz.extract.models import DigitsCNN

    module = DigitsCNN().eval()
    torch.jit.save(torch.jit.script(module), tmp_path / "scripted.pt")
    torch.save(module, tmp_path / "whole.pt")
    torch.export.save(torch.export.export(module, (torch.zeros(1, 1, 8, 8),)), tmp_path / "exported.pt2")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch")
    expected = {"scripted.pt": "a TorchScript archive",
                "whole.pt": "whole pickled object (embedviz.extract.digits.DigitsCNN)",
                "exported.pt2": "a torch.export program", "model.onnx": "an ONNX graph"}
    for name, words in expected.items():
        with pytest.raises(ModelError, match=re.escape(words)) as info:
            read_state_dict(tmp_path / name)
        assert "torch.save(model.state_dict()" in str(info.value)


def test_segmentation_models_use_the_last_encoder_layer(tmp_path):
    import torchvision

    from embedviz.data.demo import demo_collection
    from embedviz.data.images import ImageCollection
    from embedviz.extract.features import extract_features

    torch.manual_seed(0)
    state = torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=6).state_dict()
    path = tmp_path / "seg.safetensors"
    save_file(state, str(path))
    model = load_model("lraspp_mobilenet_v3_large", path)
    assert model.task == "segmentation" and model.num_classes == 6
    assert default_layer(model) == "backbone.16"
    demo = demo_collection()
    part = ImageCollection(demo.root, demo.samples.iloc[:4].reset_index(drop=True), "part")
    result = extract_features(part, model)
    assert result.features.shape == (4, 960)
    assert "prediction" not in result.samples.columns  # per-pixel outputs are not class predictions


def test_segmentation_checkpoint_with_an_auxiliary_head(tmp_path):
    import torchvision

    state = torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=4, aux_loss=True).state_dict()
    save_file(state, str(tmp_path / "deeplab_aux.safetensors"))
    model = load_model("deeplabv3_mobilenet_v3_large", tmp_path / "deeplab_aux.safetensors")
    assert model.num_classes == 4 and default_layer(model) == "backbone.16"


def test_pretrained_weights_bring_their_own_preprocessing_and_class_names(monkeypatch):
    import torchvision

    weights = torchvision.models.EfficientNet_B0_Weights.DEFAULT
    torch.manual_seed(0)
    state = torchvision.models.efficientnet_b0().state_dict()
    monkeypatch.setattr(type(weights), "get_state_dict", lambda self, **kwargs: state)  # no download
    model = load_model("efficientnet_b0", PRETRAINED)
    pre = model.preprocessing
    # torchvision evaluates these weights at 224 px cropped from 256, resized bicubically.
    assert (pre.size, pre.shorter_side, pre.interpolation) == (224, 256, "bicubic")
    assert pre.mean == tuple(weights.transforms().mean)
    assert len(model.class_names) == 1000 and model.class_names[1] == "goldfish"
    # A user's own file for the architecture starts from the same preprocessing.
    assert load_model("efficientnet_b0", "random").preprocessing == pre
    assert load_model("inception_v3", "random").preprocessing.size == 299


def test_a_detector_checkpoint_gives_its_backbone(tmp_path, image_folder):
    import torchvision

    from embedviz.data.images import load_folder
    from embedviz.extract.features import extract_features

    torch.manual_seed(0)
    detector = torchvision.models.get_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=None,
                                            weights_backbone=None, num_classes=3)
    # As trained detectors are saved: frozen batch norm (no step counters), wrapped by DataParallel.
    state = {f"module.{k}": v for k, v in detector.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"model": state, "epoch": 26}, tmp_path / "detector.pth")
    model = load_model("fasterrcnn_mobilenet_v3_large_320_fpn", tmp_path / "detector.pth")
    assert model.task == "detection" and model.num_classes is None
    for name, tensor in detector.backbone.state_dict().items():
        assert torch.equal(model.module.state_dict()[name], tensor), name
    assert default_layer(model) == "body.16" and "fpn" in list_layers(model)
    images = load_folder(image_folder)
    deepest = extract_features(images, model)
    pyramid = extract_features(images, model, "fpn")  # each level averaged, then side by side
    assert deepest.features.shape == (len(deepest), 960) and pyramid.features.shape == (len(deepest), 3 * 256)
    assert "prediction" not in deepest.samples.columns

    save_file(_resnet18_state(10), str(tmp_path / "resnet.safetensors"))
    with pytest.raises(ModelError, match="does not fit this architecture .missing body.0.0.weight"):
        load_model("fasterrcnn_mobilenet_v3_large_320_fpn", tmp_path / "resnet.safetensors")


@pytest.mark.slow  # each program is opened by a fresh Python process that imports torch
def test_code_carrying_files_run_only_when_allowed_and_only_in_a_child_process(tmp_path, monkeypatch):
    import numpy as np

    from embedviz.data.demo import demo_collection
    from embedviz.data.images import ImageCollection
    from embedviz.extract.features import extract_features
    from embedviz.extract.models import PROGRAM, DigitsCNN, list_architectures
    from embedviz.extract.trusted import ENV_VAR

    demo = load_model("demo")
    module = DigitsCNN().eval()
    module.load_state_dict(demo.module.state_dict())
    torch.jit.save(torch.jit.script(module), tmp_path / "scripted.pt")
    torch.save(module, tmp_path / "whole.pt")
    torch.export.save(torch.export.export(module, (torch.zeros(2, 1, 8, 8),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), tmp_path / "exported.pt2")
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert PROGRAM not in list_architectures()
    with pytest.raises(ModelError, match=f"TorchScript archive.*setting {ENV_VAR}=1"):
        load_model("resnet18", tmp_path / "scripted.pt")

    monkeypatch.setenv(ENV_VAR, "1")
    assert PROGRAM in list_architectures()
    full = demo_collection()
    images = ImageCollection(full.root, full.samples.head(40).reset_index(drop=True), "demo-40")
    reference = extract_features(images, demo, "classifier.1")
    for name in ("scripted.pt", "whole.pt", "exported.pt2"):
        program = load_model(PROGRAM, tmp_path / name).with_preprocessing(demo.preprocessing)
        assert program.program and program.module is None  # nothing of the file was loaded here
        logits = extract_features(images, program)  # "output": what forward returns, with predictions
        np.testing.assert_allclose(logits.features, extract_features(images, demo, "classifier.2").features,
                                   rtol=1e-4, atol=1e-5)
        assert (logits.samples["prediction"] == reference.samples["prediction"]).all()
    pickled = load_model(PROGRAM, tmp_path / "whole.pt").with_preprocessing(demo.preprocessing)
    assert "classifier.1" in list_layers(pickled)  # hooks reach a pickled module's layers
    np.testing.assert_allclose(extract_features(images, pickled, "classifier.1").features, reference.features,
                               rtol=1e-4, atol=1e-5)
    broken = load_model(PROGRAM, tmp_path / "scripted.pt")  # 224 px RGB into an 8x8 grey CNN
    with pytest.raises(ModelError, match=r"The model failed on inputs of shape \(3, 224, 224\)"):
        extract_features(images, broken)
    with pytest.raises(ModelError, match="holds plain weights; choose its architecture"):
        save_file(_resnet18_state(10), str(tmp_path / "plain.safetensors"))
        load_model(PROGRAM, tmp_path / "plain.safetensors")


def _folder(root, sizes_and_modes) -> "os.PathLike":
    import numpy as np
    from PIL import Image

    root.mkdir()
    rng = np.random.default_rng(0)
    for i, (size, mode) in enumerate(sizes_and_modes):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / f"{i:02d}.png")
    return root


@pytest.mark.parametrize("images, dims", [
    ([(28, "L")] * 6, 28 * 28),  # grey, one size: its own size, one channel
    ([(28, "L")] * 3 + [(20, "L")] * 3, 32 * 32),  # grey, mixed sizes: a fixed square, still one channel
    ([(28, "L")] * 5 + [(28, "RGB")], 32 * 32 * 3),  # any colour: the fixed RGB square
])
def test_pixels_are_fed_as_the_images_are(tmp_path, images, dims):
    from embedviz.data.images import collection_hash, load_folder
    from embedviz.extract.features import extract_features, feature_key
    from embedviz.extract.models import fit_to_images

    collection = load_folder(_folder(tmp_path / "images", images))
    model = fit_to_images(load_model("pixels"), collection)
    assert extract_features(collection, model).features.shape == (6, dims)
    assert fit_to_images(load_model("pixels"), collection) == model  # the same every time
    images_sha = collection_hash(collection)
    fixed = feature_key(images_sha, load_model("pixels"), "pixels")  # how every collection was fed before
    assert (feature_key(images_sha, model, "pixels") == fixed) == (dims == 32 * 32 * 3)  # never mixed


def test_other_models_are_not_fitted_and_the_demo_digits_are_8x8_grey():
    from embedviz.data.demo import demo_collection
    from embedviz.extract.models import describe, fit_to_images

    demo = load_model("demo")
    assert fit_to_images(demo, demo_collection()) is demo
    assert describe(fit_to_images(load_model("pixels"), demo_collection())) == "raw pixels (8x8x1)"


def test_the_command_line_extracts_grey_pixels_at_their_size(tmp_path, capsys):
    import numpy as np

    from embedviz import cli

    data = _folder(tmp_path / "images", [(28, "L")] * 4)
    assert cli.main(["extract", "--data", str(data), "--model", "pixels", "--out", str(tmp_path / "out"),
                     "--workers", "0"]) == 0
    assert np.load(tmp_path / "out" / "features.npy").shape == (4, 784)


def test_architecture_names_are_read_without_importing_torchvision():
    """torchvision's package imports every family (3.5 s, torch._dynamo included); the names and tasks
    embedviz validates against come from its sources, and agree with its registry."""
    import subprocess
    import sys

    from embedviz.extract import models

    assert models._registered() == models._families()
    code = ("import sys\nfrom embedviz.extract.models import _check_architecture, list_architectures\n"
            "print(_check_architecture('resnet18'), _check_architecture('deeplabv3_resnet50'), "
            "_check_architecture('fasterrcnn_resnet50_fpn'), 'vit_b_16' in list_architectures())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))[:3])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["classification segmentation detection True", "[]"]
    with pytest.raises(ModelError, match="Unknown architecture 'resnet19'"):
        models._check_architecture("resnet19")


def test_sessions_listing_layers_while_others_start_extractions_all_see_every_layer():
    """torch.fx tracing patches nn.Module for the whole process: unguarded, concurrent traces recorded
    each other's calls (the demo CNN listed with one layer, or none) or failed outright."""
    import threading

    import torch

    from embedviz.extract.engine import Forward

    expected = list_layers(load_model("demo"))
    seen: list[object] = []

    def session(lists: bool) -> None:
        for _ in range(15):
            model = load_model("demo")  # a fresh module: no cached trace
            try:
                if lists:
                    seen.append(list_layers(model))
                else:
                    Forward(model, ["classifier.1"], torch.device("cpu"))
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                seen.append(repr(exc))

    threads = [threading.Thread(target=session, args=(i % 2 == 1,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen and all(result == expected for result in seen), [r for r in seen if r != expected][:3]
