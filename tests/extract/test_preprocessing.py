from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from embedviz.errors import ModelError
from embedviz.extract.preprocessing import make_preprocessing


def test_crop_keeps_the_centre_and_squash_keeps_everything():
    image = Image.new("RGB", (300, 100), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 50, 100))  # a white band at the far left
    crop = make_preprocessing(32, 3, (0, 0, 0), (1, 1, 1), "crop")(image)
    squash = make_preprocessing(32, 3, (0, 0, 0), (1, 1, 1), "squash")(image)
    assert crop.shape == squash.shape == (3, 32, 32)
    assert crop.max() == 0  # the centre square never sees the left band
    assert squash[:, :, :4].mean() > 0.9  # squashing keeps it


def test_the_shorter_side_before_the_crop_decides_how_much_is_seen():
    image = Image.new("RGB", (100, 100), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 100, 10))  # a white band along the top edge
    tight = make_preprocessing(32, 3, (0, 0, 0), (1, 1, 1), "crop", resize_to=32)(image)
    loose = make_preprocessing(32, 3, (0, 0, 0), (1, 1, 1), "crop", resize_to=64)(image)
    assert tight[:, 0].mean() > 0.9 and loose.max() == 0  # cropped from 64 px the band is cut away
    assert make_preprocessing(32, 3, (0, 0, 0), (1, 1, 1), "crop").shorter_side == 37


def test_normalisation_and_grey():
    grey = make_preprocessing(8, 1, (0.5,), (0.25,), "squash")(Image.new("RGB", (8, 8), (255, 255, 255)))
    assert grey.shape == (1, 8, 8) and torch.allclose(grey, torch.full((1, 8, 8), 2.0))


@pytest.mark.parametrize("args,words", [
    ((2, 3, (0, 0, 0), (1, 1, 1)), "outside 4–2048"),
    ((32, 2, (0, 0), (1, 1)), "1 (grey) or 3 (RGB)"),
    ((32, 3, (0,), (1, 1, 1)), "one per channel"),
    ((32, 3, (0, 0, 0), (1, 0, 1)), "above 0"),
    ((32, 3, (0, 0, 0), (1, 1, 1), "crop", 16), "must be at least the input size (32)"),
    ((32, 3, (0, 0, 0), (1, 1, 1), "crop", 0, "lanczos"), "bilinear, bicubic"),
])
def test_bad_settings_are_named(args, words):
    with pytest.raises(ModelError, match=re.escape(words)):
        make_preprocessing(*args)


def test_a_model_that_rejects_its_input_says_so(image_folder):
    from embedviz.data.images import load_folder
    from embedviz.extract.features import extract_features
    from embedviz.extract.models import load_model

    model = load_model("demo")
    wrong = model.with_preprocessing(make_preprocessing(16, 1, (0.3,), (0.4,), "squash"))
    assert wrong.identity() != model.identity()
    with pytest.raises(ModelError, match=r"cannot take inputs of shape \(1, 16, 16\)"):
        extract_features(load_folder(image_folder), wrong)
    assert np.isfinite(extract_features(load_folder(image_folder), model).features).all()


def test_raw_pixels_keep_grey_images_own_size_and_fall_back_to_32_squares():
    from embedviz.extract.preprocessing import pixels_preprocessing

    grey = pixels_preprocessing([(28, 28, 1)] * 5)
    assert (grey.size, grey.channels, grey.mean, grey.std, grey.resize) == (28, 1, (0.0,), (1.0,), "squash")
    assert (pixels_preprocessing([(8, 8, 1)]).size, pixels_preprocessing([(8, 8, 1)]).channels) == (8, 1)
    mixed = pixels_preprocessing([(28, 28, 1), (32, 40, 1)])
    assert (mixed.size, mixed.channels) == (32, 1)  # several sizes: a fixed square, still grey
    colour = pixels_preprocessing([(28, 28, 1), (28, 28, 3)])
    assert (colour.size, colour.channels, colour.mean) == (32, 3, (0.0, 0.0, 0.0))  # any colour: RGB
    assert pixels_preprocessing([(500, 500, 1)]).size == 32  # large grey images are not kept whole
    assert pixels_preprocessing([(28, 32, 1)]).size == 32  # one size, not square
    assert pixels_preprocessing([]).to_dict() == {"size": 32, "channels": 3, "mean": [0.0, 0.0, 0.0],
                                                  "std": [1.0, 1.0, 1.0], "resize": "squash"}


def test_image_shapes_read_headers_and_know_grey_palettes(tmp_path):
    from embedviz.data.images import image_shapes, load_folder

    Image.new("L", (10, 10)).save(tmp_path / "grey.png")
    Image.new("RGB", (12, 10)).save(tmp_path / "rgb.png")
    greys = Image.new("P", (10, 10))
    greys.putpalette([v for i in range(256) for v in (i, i, i)])
    greys.save(tmp_path / "palette_grey.png")
    colours = Image.new("P", (10, 10))
    colours.putpalette([v for i in range(256) for v in (i, 0, 255 - i)])
    colours.save(tmp_path / "palette_colour.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    shapes = dict(zip(sorted(p.name for p in tmp_path.iterdir() if p.name != "broken.png"),
                      image_shapes(load_folder(tmp_path))))
    assert shapes == {"grey.png": (10, 10, 1), "palette_colour.png": (10, 10, 3), "palette_grey.png": (10, 10, 1),
                      "rgb.png": (12, 10, 3)}
    assert len(image_shapes(load_folder(tmp_path), limit=2)) <= 2
