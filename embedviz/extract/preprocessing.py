"""How an image becomes a model's input: resize policy, size, channels and normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from embedviz.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["Preprocessing", "RESIZE_POLICIES", "INTERPOLATIONS", "make_preprocessing", "parse_values",
           "pixels_preprocessing", "weights_preprocessing"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ``crop``: shorter side to size·256/224, then a centred square (torchvision's ImageNet evaluation);
#: ``squash``: the whole image resized to a square, aspect ratio not kept.
RESIZE_POLICIES = ("crop", "squash")
INTERPOLATIONS = ("bilinear", "bicubic")
#: Raw pixels of images of several sizes, or of colour, are resized to this square ...
PIXELS_SIZE = 32
#: ... while grey images all of one square size up to this side keep their own size.
PIXELS_OWN_SIZE_MAX = 64


@dataclass(frozen=True)
class Preprocessing:
    """A PIL image in, a float tensor of shape (channels, size, size) out."""

    size: int = 224
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "crop"
    #: For ``crop``: the shorter side before cropping; 0 means size·256/224 (ImageNet's usual ratio).
    resize_to: int = 0
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        values = {"size": self.size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std),
                  "resize": self.resize}
        # Only when set, so feature keys made before these fields existed stay valid.
        if self.resize_to:
            values["resize_to"] = self.resize_to
        if self.interpolation != "bilinear":
            values["interpolation"] = self.interpolation
        return values

    def describe(self) -> str:
        colour = "grey" if self.channels == 1 else "RGB"
        resize = f"crop from {self.shorter_side}" if self.resize == "crop" else "squash"
        how = f", {self.interpolation}" if self.interpolation != "bilinear" else ""
        return f"{self.size}x{self.size} {colour}, {resize}{how}, mean {list(self.mean)}, std {list(self.std)}"

    @property
    def shorter_side(self) -> int:
        return self.resize_to or round(self.size * 256 / 224)

    def _resized(self, image: "Image.Image") -> "Image.Image":  # noqa: F821 - PIL type
        from PIL import Image

        resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
        if image.size == (self.size, self.size):
            return image
        if self.resize == "squash":
            return image.resize((self.size, self.size), resample)
        # "Shorter side to N, then the centre size x size" in one resize: the centre square of the
        # source that becomes the crop is resized straight to the output (a fraction of the pixels).
        side = min(image.size) * self.size / self.shorter_side
        left, top = (image.width - side) / 2, (image.height - side) / 2
        return image.resize((self.size, self.size), resample, box=(left, top, left + side, top + side))

    def __call__(self, image: "Image.Image") -> "torch.Tensor":  # noqa: F821 - PIL type
        image = self._resized(image.convert("L") if self.channels == 1 else image.convert("RGB"))
        array = np.asarray(image)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        # (x / 255 - mean) / std as one multiply-add, straight from the uint8 pixels.
        scale = (1.0 / (255.0 * np.asarray(self.std, dtype=np.float32)))[:, None, None]
        shift = (-np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32))[:, None, None]
        import torch  # here: the command line and a cache hit import this module without torch

        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) * scale + shift)


def make_preprocessing(size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                       resize: str = "crop", resize_to: int = 0, interpolation: str = "bilinear") -> Preprocessing:
    """A checked :class:`Preprocessing`; the message names what is off."""
    if not 4 <= int(size) <= 2048:
        raise ModelError(f"Input size {size} is outside 4–2048 pixels.")
    if resize_to and not int(size) <= int(resize_to) <= 4096:
        raise ModelError(f"The shorter side before cropping ({resize_to}) must be at least the input size "
                         f"({size}) and at most 4096; 0 means size·256/224.")
    if interpolation not in INTERPOLATIONS:
        raise ModelError(f"Interpolation must be one of {', '.join(INTERPOLATIONS)}, not {interpolation!r}.")
    if channels not in (1, 3):
        raise ModelError(f"Channels must be 1 (grey) or 3 (RGB), not {channels}.")
    if resize not in RESIZE_POLICIES:
        raise ModelError(f"Resize policy must be one of {', '.join(RESIZE_POLICIES)}, not {resize!r}.")
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != channels or len(std) != channels:
        raise ModelError(f"Give {channels} mean and {channels} std values, one per channel "
                         f"(got {len(mean)} and {len(std)}).")
    if any(s <= 0 for s in std):
        raise ModelError("Every std value must be above 0.")
    return Preprocessing(int(size), int(channels), mean, std, resize, int(resize_to or 0), interpolation)


def weights_preprocessing(transforms: Any) -> Preprocessing | None:
    """torchvision's evaluation transform for a set of weights (``weights.transforms()``) as a
    :class:`Preprocessing`: crop size, the resize before it, mean, std and interpolation.
    ``None`` for transforms that are not a classification crop (detection, segmentation)."""
    crop, resize = getattr(transforms, "crop_size", None), getattr(transforms, "resize_size", None)
    if not crop or not resize:
        return None
    mode = str(getattr(transforms, "interpolation", "bilinear")).rsplit(".", 1)[-1].lower()
    size, shorter = int(crop[0]), int(resize[0])
    return Preprocessing(size=size, channels=3, mean=tuple(float(m) for m in transforms.mean),
                         std=tuple(float(s) for s in transforms.std), resize="crop",
                         resize_to=0 if shorter == round(size * 256 / 224) else shorter,
                         interpolation=mode if mode in INTERPOLATIONS else "bilinear")


def pixels_preprocessing(shapes: Sequence[tuple[int, int, int]]) -> Preprocessing:
    """How the raw-pixels model feeds images of these ``(width, height, channels)``: grey images keep one
    channel and, when all are one square size of at most 64 pixels, that size (28x28 grey: 784 values);
    otherwise a 32x32 square, RGB if any image is colour. Values stay in 0–1 (mean 0, std 1).

    >>> pixels_preprocessing([(28, 28, 1), (28, 28, 1)]).describe()
    '28x28 grey, squash, mean [0.0], std [1.0]'
    """
    channels = 3 if not shapes or any(c != 1 for *_, c in shapes) else 1
    sizes = {(w, h) for w, h, _ in shapes}
    size = PIXELS_SIZE
    if channels == 1 and len(sizes) == 1:
        width, height = sizes.pop()
        if width == height and 4 <= width <= PIXELS_OWN_SIZE_MAX:
            size = width
    return Preprocessing(size=size, channels=channels, mean=(0.0,) * channels, std=(1.0,) * channels,
                         resize="squash")


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """``"0.485, 0.456, 0.406"`` as numbers; the message names ``what`` was malformed."""
    try:
        return tuple(float(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise ModelError(f"{what} must be numbers separated by commas, like 0.485, 0.456, 0.406.") from None
