"""How an image becomes a model's input: resize policy, size, channels and normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .errors import ModelError

__all__ = ["Preprocessing", "RESIZE_POLICIES", "make_preprocessing", "parse_values"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ``crop``: shorter side to size·256/224, then a centred square (torchvision's ImageNet evaluation);
#: ``squash``: the whole image resized to a square, aspect ratio not kept.
RESIZE_POLICIES = ("crop", "squash")


@dataclass(frozen=True)
class Preprocessing:
    """A PIL image in, a float tensor of shape (channels, size, size) out."""

    size: int = 224
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "crop"

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std),
                "resize": self.resize}

    def _resized(self, image: "Image.Image") -> "Image.Image":  # noqa: F821 - PIL type
        from PIL import Image

        if self.resize == "squash" or image.size == (self.size, self.size):
            return image if image.size == (self.size, self.size) else image.resize(
                (self.size, self.size), Image.Resampling.BILINEAR)
        short = round(self.size * 256 / 224)
        scale = short / min(image.size)
        image = image.resize((max(short, round(image.width * scale)), max(short, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
        left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
        return image.crop((left, top, left + self.size, top + self.size))

    def __call__(self, image: "Image.Image") -> torch.Tensor:  # noqa: F821 - PIL type
        image = self._resized(image.convert("L") if self.channels == 1 else image.convert("RGB"))
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return torch.from_numpy((array - mean) / std)


def make_preprocessing(size: int, channels: int, mean: Sequence[float], std: Sequence[float],
                       resize: str = "crop") -> Preprocessing:
    """A checked :class:`Preprocessing`; the message names what is off."""
    if not 4 <= int(size) <= 2048:
        raise ModelError(f"Input size {size} is outside 4–2048 pixels.")
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
    return Preprocessing(int(size), int(channels), mean, std, resize)


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """``"0.485, 0.456, 0.406"`` as numbers; the message names ``what`` was malformed."""
    try:
        return tuple(float(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise ModelError(f"{what} must be numbers separated by commas, like 0.485, 0.456, 0.406.") from None
