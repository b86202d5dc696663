"""The Data & model page as a user meets it (Streamlit's AppTest): the model named as soon as it is
chosen, weights from a file on the server, typed paths kept across pages, raw pixels at the images' size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
DATA_PAGE = "pages/1_Data_and_model.py"
SERVER = "Path on this server"


@pytest.fixture
def data_page(monkeypatch):
    """The Data & model page of a fresh session."""
    monkeypatch.chdir(ROOT)

    def open_page() -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.switch_page(DATA_PAGE).run()
        _assert_clean(at)
        return at

    return open_page


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _architecture(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Architecture")


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _grey_folder(root: Path, size: int = 28, per_class: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for kind in ("a", "b"):
        (root / kind).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8), "L").save(root / kind / f"{i}.png")
    return root


def _use_server_folder(at: AppTest, folder: Path) -> None:
    at.radio[0].set_value(SERVER).run()
    at.text_input[0].input(str(folder))  # the folder field
    _button(at, "Use this path").click().run()
    _assert_clean(at)


def test_a_chosen_architecture_is_named_while_it_waits_for_weights(data_page):
    at = data_page()
    _architecture(at).set_value("resnet18").run()
    assert not at.exception
    assert not any("Model:" in s.value for s in at.success)  # not the demo CNN still
    [waiting] = [i.value for i in at.info if "Model:" in i.value]
    assert "resnet18" in waiting and "waiting for its weights" in waiting
    at.switch_page("pages/2_Extract.py").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["resnet18 is waiting for its weights: give a weights file on the Data & "
                                           "model page (or choose Random or torchvision pretrained there)."]
    assert not [b for b in at.button if b.label == "Extract features"]
    at.switch_page(DATA_PAGE).run()  # still chosen on coming back
    assert _architecture(at).value == "resnet18" and any("waiting for its weights" in i.value for i in at.info)
    next(r for r in at.radio if r.label == "Weights").set_value("Random (untrained baseline)").run()
    _assert_clean(at)
    assert any("Model:** resnet18 (random" in s.value for s in at.success) and not at.info


def test_weights_by_a_path_on_the_server_load_inside_its_folders_only(data_page, tmp_path, monkeypatch):
    import torch
    import torchvision

    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    torch.manual_seed(0)
    state = torchvision.models.shufflenet_v2_x0_5(num_classes=3).state_dict()
    torch.save(state, shared / "three.pth")
    torch.save(state, private / "three.pth")
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = data_page()
    _architecture(at).set_value("shufflenet_v2_x0_5").run()
    weights = next(r for r in at.radio if r.label == "Weights")
    assert SERVER in weights.options
    weights.set_value(SERVER).run()
    at.text_input(key="ev_weights_path").input(str(private / "three.pth"))
    _button(at, "Use these weights").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "outside the folders this server shares" in at.error[0].value
    assert any("waiting for its weights" in i.value for i in at.info)  # nothing was loaded
    at.text_input(key="ev_weights_path").input(str(shared / "three.pth"))
    _button(at, "Use these weights").click().run()
    _assert_clean(at)
    assert any("Model:** shufflenet_v2_x0_5 (three.pth, 3 classes)" in s.value for s in at.success), \
        [s.value for s in at.success]
    at.switch_page("pages/6_Runs.py").run()
    at.switch_page(DATA_PAGE).run()  # the path is shown again, and the model stays
    assert next(r for r in at.radio if r.label == "Weights").value == SERVER
    assert at.text_input(key="ev_weights_path").value == str(shared / "three.pth")
    assert any("three.pth, 3 classes" in s.value for s in at.success)


def test_weights_on_the_server_are_not_offered_where_no_folder_is_shared(data_page, monkeypatch):
    monkeypatch.delenv("EMBEDVIZ_DATA_ROOTS", raising=False)
    at = data_page()
    _architecture(at).set_value("resnet18").run()
    assert SERVER not in next(r for r in at.radio if r.label == "Weights").options


def test_the_typed_folder_is_still_there_after_another_page(data_page, tmp_path, monkeypatch):
    folder = _grey_folder(tmp_path / "digits")
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = data_page()
    _use_server_folder(at, folder)
    assert any("digits**: 6 images" in s.value for s in at.success)
    at.switch_page("pages/6_Runs.py").run()
    at.switch_page(DATA_PAGE).run()
    _assert_clean(at)
    assert at.radio[0].value == SERVER and at.text_input[0].value == str(folder)
    typed = str(tmp_path / "not-used-yet")
    at.text_input[0].input(typed).run()  # typed but not used: kept as typed too
    at.switch_page("pages/6_Runs.py").run()
    at.switch_page(DATA_PAGE).run()
    assert at.text_input[0].value == typed


def test_pixels_of_grey_images_keep_their_size_and_one_channel(data_page, tmp_path, monkeypatch):
    folder = _grey_folder(tmp_path / "digits")
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = data_page()
    _use_server_folder(at, folder)
    _architecture(at).set_value("pixels").run()
    _assert_clean(at)
    assert any("Model:** raw pixels (28x28x1)" in s.value for s in at.success), [s.value for s in at.success]
    assert any(e.label.startswith("Preprocessing: 28x28 grey, squash") and "(fitted to the images)" in e.label
               for e in at.expander)
    at.switch_page("pages/2_Extract.py").run()
    _button(at, "Extract features").click().run()
    _assert_clean(at)
    assert next(m for m in at.metric if m.label == "Dimensions").value == "784"


def test_a_class_index_by_a_path_on_the_server(data_page, tmp_path, monkeypatch):
    import json

    shared, private = tmp_path / "shared", tmp_path / "private"
    for folder in (shared, private):
        folder.mkdir()
        (folder / "digits.json").write_text(json.dumps({str(i): f"digit {i}" for i in range(10)}))
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = data_page()
    at.text_input(key="ev_classes_path").input(str(private / "digits.json"))
    _button(at, "Use this class index").click().run()
    assert len(at.error) == 1 and "outside the folders this server shares" in at.error[0].value
    at.text_input(key="ev_classes_path").input(str(shared / "digits.json"))
    _button(at, "Use this class index").click().run()
    _assert_clean(at)
    assert any("named by digits.json" in c.value for c in at.caption)



def test_timm_and_clip_names_are_offered_and_wait_for_weights(data_page):
    """Any timm:NAME or clip:NAME can be typed (accept_new_options, which AppTest cannot type into); the
    examples listed take the same path."""
    pytest.importorskip("timm")
    at = data_page()
    assert {"timm:convnext_tiny", "clip:ViT-B-32"} <= set(_architecture(at).options)
    _architecture(at).set_value("timm:convnext_tiny").run()
    assert not at.exception and not at.error
    [waiting] = [i.value for i in at.info if "Model:" in i.value]
    assert "convnext_tiny" in waiting and "waiting for its weights" in waiting
    weights = next(r for r in at.radio if r.label == "Weights")
    assert "timm pretrained (downloads from Hugging Face)" in weights.options
