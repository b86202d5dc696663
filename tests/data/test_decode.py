"""Untrusted image files: every mode made RGB correctly, bad files refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embedviz.data.decode import ImageRejected, open_image


def _rgb(path) -> np.ndarray:
    return np.asarray(open_image(path))


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    grey = _rgb(tmp_path / "deep.png")[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    assert 120 <= grey[32, 0] <= 135  # the middle of the ramp is mid-grey, not white


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = _rgb(tmp_path / "phone.jpg")
    assert upright.shape == (40, 20, 3)
    assert upright[2, 10, 0] > 200 and upright[-3, 10, 2] > 200  # red on top, blue below


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "print.jpg", quality=95)
    pixel = _rgb(tmp_path / "print.jpg")[8, 8]
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60  # red


def test_transparency_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "alpha.png")
    pixels = _rgb(tmp_path / "alpha.png")
    assert tuple(pixels[4, 4]) == (255, 255, 255) and tuple(pixels[0, 0]) == (0, 0, 255)

    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.save(tmp_path / "palette.png", transparency=0)
    pixels = _rgb(tmp_path / "palette.png")
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[4, 4]) == (0, 128, 0)


def test_one_bit_and_grey_images(tmp_path):
    bits = Image.new("1", (8, 8), 0)
    bits.putpixel((1, 1), 1)
    bits.save(tmp_path / "bits.png")
    pixels = _rgb(tmp_path / "bits.png")
    assert tuple(pixels[1, 1]) == (255, 255, 255) and tuple(pixels[0, 0]) == (0, 0, 0)
    Image.new("LA", (4, 4), (90, 255)).save(tmp_path / "la.png")
    assert tuple(_rgb(tmp_path / "la.png")[0, 0]) == (90, 90, 90)


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    Image.new("L", (60, 60)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 3,600 pixels: above the warning line
    with pytest.raises(ImageRejected, match="decompression bomb"):
        open_image(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # above twice the line: Pillow's own error
    with pytest.raises(ImageRejected, match="decompression bomb"):
        open_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("name,content,reason", [
    ("empty.png", b"", "empty file"),
    ("fake.jpg", b"<html>not an image</html>", "not an image"),
])
def test_empty_and_fake_files(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageRejected, match=reason):
        open_image(tmp_path / name)


def test_truncated_file(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRejected, match="truncated|cannot decode"):
        open_image(tmp_path / "cut.png")


def test_formats_outside_the_list_are_refused(tmp_path):
    # PostScript would be handed to Ghostscript on load: refused by its content, whatever its name.
    (tmp_path / "sneaky.png").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\n%%EndComments\n")
    with pytest.raises(ImageRejected, match="format EPS is not accepted"):
        open_image(tmp_path / "sneaky.png")


def test_every_reason_reaches_skipped_csv(tmp_path):
    from embedviz.data.images import load_folder
    from embedviz.extract.features import extract_features
    from embedviz.extract.models import load_model

    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "good.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "fake.png").write_bytes(b"nope")
    result = extract_features(load_folder(folder), load_model("pixels"))
    assert len(result) == 1
    reasons = dict(zip(result.skipped["path"], result.skipped["reason"]))
    assert reasons["empty.png"] == "empty file" and reasons["fake.png"].startswith("not an image")
