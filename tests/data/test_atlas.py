"""Sprite atlases: each image's thumbnail is where the atlas says, a second request is a cache hit,
and an unfinished atlas is never served."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from embedviz.data import atlas as atlases
from embedviz.data.atlas import atlas_key, build_atlas, open_atlas
from embedviz.data.images import file_hashes, load_folder
from embedviz.data.thumbnails import thumbnail


@pytest.fixture
def photos(tmp_path):
    """JPEG 'photos' of several sizes and shapes (landscape, portrait, tiny), and one broken file."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    (folder / "a").mkdir(parents=True)
    for i, (w, h) in enumerate([(400, 300), (300, 400), (64, 64), (1000, 200), (12, 9)] * 5):
        base = rng.integers(0, 255, (3, 4, 3), dtype=np.uint8)  # a smooth field: little JPEG noise
        Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC).save(folder / "a" / f"{i:02d}.jpg", quality=95)
    (folder / "a" / "zz-broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    collection = load_folder(folder)
    return [str(p) for p in collection.paths()], file_hashes(collection)


def _close(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_every_thumbnail_is_where_the_atlas_says_across_sheets(photos, tmp_path, monkeypatch):
    paths, hashes = photos
    monkeypatch.setattr(atlases, "SHEET", 96 * 3)  # 9 thumbnails a sheet: 26 images need 3 sheets
    monkeypatch.setattr(atlases, "_BAND", 96 * 2)  # tasks of 1 row: 2 rows would straddle sheets of 3
    made = build_atlas(paths, hashes, root=tmp_path / "atlases", workers=2)
    assert made.count == len(paths) == 26 and made.sheets == 3
    assert [made.sheet_path(s).is_file() for s in range(3)] == [True] * 3
    assert made.readable.tolist() == [True] * 25 + [False]  # the broken file: a grey cell, said as such
    for i in range(25):
        expected = thumbnail(paths[i], 96)
        assert max(made.thumbnail(i).size) == 96 and _close(made.thumbnail(i), expected) < 6, paths[i]
    places = {made.where(i)[:3] for i in range(len(paths))}
    assert len(places) == len(paths)  # no two images share a cell


def test_a_second_request_is_a_cache_hit_and_other_images_or_sizes_are_not(photos, tmp_path):
    paths, hashes = photos
    root = tmp_path / "atlases"
    first = build_atlas(paths, hashes, root=root, workers=1)
    written = first.sheet_path(0).stat().st_mtime_ns
    seen = []
    again = build_atlas(paths, hashes, root=root, progress=lambda done, total, message: seen.append(message))
    assert again.key == first.key and again.sheet_path(0).stat().st_mtime_ns == written
    assert seen == ["thumbnails (made before)"]
    assert atlas_key(hashes[::-1]) != first.key and atlas_key(hashes, cell=64) != first.key
    assert [p.name for p in root.iterdir()] == [first.key]  # nothing left half-written beside it


def test_an_unfinished_atlas_is_made_again_not_served(photos, tmp_path):
    paths, hashes = photos
    root = tmp_path / "atlases"
    made = build_atlas(paths[:5], hashes[:5], root=root, workers=1)
    (made.folder / "atlas.json").unlink()  # as if the process died before its last write
    assert open_atlas(made.key, root) is None
    again = build_atlas(paths[:5], hashes[:5], root=root, workers=1)
    assert json.loads((again.folder / "atlas.json").read_text())["cell"] == 96


def test_a_failure_half_way_leaves_nothing_behind(photos, tmp_path, monkeypatch):
    paths, hashes = photos

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(atlases, "_band", broken)
    with pytest.raises(OSError, match="disk full"):
        build_atlas(paths, hashes, root=tmp_path / "atlases", workers=1)
    assert list((tmp_path / "atlases").iterdir()) == []
