"""Fixtures made in code from fixed seeds; nothing is downloaded, nothing touches ~/.embedviz."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Servers and AppTests started by the tests do not compile UMAP in the background (a minute of
# both cores); tests/serve/test_warmup.py checks the warm-up itself.
os.environ.setdefault("EMBEDVIZ_WARMUP", "0")
# AppTests run page scripts in the test process, which imports new modules test after test: freezing
# after each would keep every test's cyclic garbage. Servers the browser tests start freeze as deployed.
os.environ.setdefault("EMBEDVIZ_GC_FREEZE", "0")


@pytest.fixture(autouse=True)
def embedviz_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets a private ``EMBEDVIZ_HOME``."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("EMBEDVIZ_HOME", str(home))
    return home


def _shape_image(kind: str, rng: np.random.Generator, size: int = 24) -> Image.Image:
    """A bright shape on a noisy dark background: squares and discs are easy to tell apart."""
    array = (rng.random((size, size, 3)) * 60).astype(np.uint8)
    c = rng.integers(8, size - 8, size=2)
    r = int(rng.integers(4, 7))
    yy, xx = np.mgrid[:size, :size]
    if kind == "squares":
        inside = (abs(yy - c[0]) <= r) & (abs(xx - c[1]) <= r)
    else:
        inside = (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r * r
    array[inside] = rng.integers(180, 255, size=3)
    return Image.fromarray(array, "RGB")


def make_image_folder(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """``root/{discs,squares}/NN.png``, one unreadable file, and macOS junk that must be ignored."""
    rng = np.random.default_rng(seed)
    for kind in ("discs", "squares"):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            _shape_image(kind, rng).save(root / kind / f"{i:02d}.png")
    (root / "squares" / "broken.png").write_bytes(b"this is not a png")
    (root / ".DS_Store").write_bytes(b"\0\0junk")
    (root / "discs" / "._00.png").write_bytes(b"resource fork")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "shapes")


def zip_folder(folder: Path, archive: Path) -> Path:
    """``folder``'s files in a zip, paths relative to it (what a user uploads)."""
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


@pytest.fixture
def tiny_clip():
    """``clip:embedviz-test-tiny-clip``: an open_clip model small enough to build in a moment (two 64-wide
    layers per tower, 64-px images, open_clip's own tokenizer), registered under its own name."""
    factory = pytest.importorskip("open_clip.factory")
    name = "embedviz-test-tiny-clip"
    factory._MODEL_CONFIGS[name] = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }
    yield f"clip:{name}"
    factory._MODEL_CONFIGS.pop(name, None)
