"""Data for walking the app as a new user would: a few thousand photos-like images in class folders that
no test was written against, and a torchvision resnet18 trained on them for a minute (weights as a plain
``state_dict``, the way a user saves theirs).

    python scripts/journey_data.py OUT [--per-class 600] [--train-seconds 60]

writes ``OUT/shapes/<class>/<n>.jpg`` (five shapes drawn in random colours, sizes, positions and
rotations on noisy, gradient backgrounds; images of several sizes, a few grey), ``OUT/resnet18_shapes.pt``
and ``OUT/classes.json``. Seeded: the same command writes the same files.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["circle", "cross", "ring", "square", "triangle"]


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    corners = {"square": 4, "triangle": 3}[kind]
    return [(cx + r * math.cos(angle + 2 * math.pi * i / corners), cy + r * math.sin(angle + 2 * math.pi * i / corners))
            for i in range(corners)]


def draw(kind: str, rng: np.random.Generator) -> Image.Image:
    size = int(rng.choice([56, 64, 72, 96]))
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp).repeat(size, axis=1)
    background += rng.normal(0, rng.uniform(4, 30), background.shape)
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    r = size * rng.uniform(0.18, 0.38)
    cx, cy = (size / 2 + rng.uniform(-0.15, 0.15) * size for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    width = max(2, int(r * rng.uniform(0.2, 0.4)))
    if kind == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "ring":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=width)
    elif kind == "cross":
        for a in (angle, angle + math.pi / 2):
            dx, dy = r * math.cos(a), r * math.sin(a)
            pen.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=colour, width=width)
    else:
        pen.polygon(_polygon(kind, cx, cy, r, angle), fill=colour)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    if rng.random() < 0.05:
        image = image.convert("L")
    return image


def write_images(out: Path, per_class: int, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    root = out / "shapes"
    for kind in CLASSES:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw(kind, rng).save(folder / f"{i:04d}.jpg", quality=int(rng.integers(60, 95)))
    return root


def train(root: Path, out: Path, seconds: float, seed: int = 7) -> Path:
    """resnet18 (no pretrained weights: nothing can be downloaded here) trained on 64x64 crops until
    ``seconds`` have passed; good enough to make some mistakes worth looking at."""
    import torch
    from torchvision import models, transforms
    from torchvision.datasets import ImageFolder

    torch.manual_seed(seed)
    transform = transforms.Compose([transforms.Resize(72), transforms.CenterCrop(64),
                                    transforms.Lambda(lambda im: im.convert("RGB")),
                                    transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406],
                                                                                [0.229, 0.224, 0.225])])
    data = ImageFolder(str(root), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=0)
    model = models.resnet18(num_classes=len(CLASSES))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start, steps = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        for images, labels in loader:
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            if time.monotonic() - start >= seconds:
                break
    print(f"trained {steps} steps in {time.monotonic() - start:.0f} s, last loss {loss.item():.3f}")
    path = out / "resnet18_shapes.pt"
    torch.save(model.state_dict(), path)
    (out / "classes.json").write_text(json.dumps(dict(enumerate(data.classes))))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--train-seconds", type=float, default=60.0)
    args = parser.parse_args()
    root = write_images(args.out, args.per_class)
    print(f"wrote {args.per_class * len(CLASSES):,} images in {len(CLASSES)} classes under {root}")
    if args.train_seconds > 0:
        train(root, args.out, args.train_seconds)


if __name__ == "__main__":
    main()
