"""The built-in demo: scikit-learn's 1,797 handwritten digits and a small CNN trained on them.

The images ship inside scikit-learn; :func:`demo_collection` writes them once as 8x8 PNGs
under ``$EMBEDVIZ_HOME/demo`` with a manifest (``label``, ``split``), so the demo goes
through the same manifest loader as anyone's data. The CNN's weights (final, and an early
checkpoint) are committed beside this file; ``scripts/train_demo.py`` remakes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from embedviz.data.images import ImageCollection, load_manifest
from embedviz.layout import layout

__all__ = ["FINAL_WEIGHTS", "EARLY_WEIGHTS", "digits_arrays", "demo_split", "demo_collection"]

_HERE = Path(__file__).resolve().parent
FINAL_WEIGHTS = _HERE / "digits_cnn.safetensors"
EARLY_WEIGHTS = _HERE / "digits_cnn_epoch1.safetensors"
_VERSION = "digits-v1"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits as uint8 images (white ink on black, 0..255) and integer labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def demo_split(labels: np.ndarray) -> np.ndarray:
    """``train``/``test`` per image: a seeded, class-stratified 60/40 split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    _, test = train_test_split(index, test_size=0.4, random_state=0, stratify=labels)
    split = np.full(len(labels), "train", dtype=object)
    split[test] = "test"
    return split


def demo_collection(root: Path | None = None) -> ImageCollection:
    """The digits as a collection of PNG files, written on first use."""
    from PIL import Image

    folder = (root or layout().demo) / _VERSION
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        images, labels = digits_arrays()
        (folder / "digits").mkdir(parents=True, exist_ok=True)
        paths = [f"digits/{i:04d}.png" for i in range(len(images))]
        for path, image in zip(paths, images):
            Image.fromarray(image, mode="L").save(folder / path)
        table = pd.DataFrame({"path": paths, "label": labels.astype(str), "split": demo_split(labels)})
        tmp = manifest.with_suffix(".tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(manifest)
    collection = load_manifest(manifest)
    return ImageCollection(root=collection.root, samples=collection.samples, name="digits (demo)")
