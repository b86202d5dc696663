"""Sprite atlases: every image of a collection as a small thumbnail, packed into a few large sheets.

A browser loads a handful of sheets once instead of one request per image, then shows any image by
cropping its cell (the hover preview and the pictures drawn in place of dots on the map; TensorBoard's
projector works the same way). An atlas is stored by content: its key is made of the images' own
SHA-256s, in order, and the cell size, so the same images give the same atlas whoever asks, and a
second request is a cache hit that reads one small JSON file.

On disk, under ``$EMBEDVIZ_HOME/atlases/<key>/``: ``sheet-0.jpg``, ``sheet-1.jpg``, ... and
``atlas.json`` (written last: a folder without it is unfinished and is made again).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from embedviz.hashing import sha256_json
from embedviz.layout import layout, mark_used
from embedviz.progress import ProgressCallback, report

__all__ = ["Atlas", "CELL", "SHEET", "atlas_key", "build_atlas", "open_atlas"]

#: The longer side of a thumbnail, in pixels (the hover preview shows it at 96-128 px).
CELL = 96
#: The most pixels on a sheet's side: 10 x 10 = 100 thumbnails of 96 px per sheet. A browser loads a
#: sheet when a point on it is first hovered or drawn as a picture, and decodes it before it shows: a
#: 1,024-px JPEG decodes well within the hover target in headless Chromium, a 2,048-px one did not
#: (docs/benchmarks.md, the Explore page).
SHEET = 1024
#: Bumped when the way thumbnails are made changes, so old atlases are not reused.
VERSION = 3
#: About how many pixels high one worker's task is (a band of whole rows of a sheet).
_BAND = 512
_MANIFEST = "atlas.json"
_BACKGROUND = (245, 245, 245)  # a cell's empty margin; unreadable images are a darker grey
_UNREADABLE = (200, 200, 200)


@dataclass(frozen=True)
class Atlas:
    """A stored atlas: where each image's thumbnail is.

    Image ``i`` is on sheet ``i // per_sheet``, in the cell at row ``(i % per_sheet) // per_row`` and
    column ``(i % per_sheet) % per_row``; the thumbnail fills the top-left ``sizes[i]`` (width, height)
    of its cell. ``readable[i]`` is false where the image could not be decoded (a grey cell).
    """

    key: str
    folder: Path
    cell: int
    per_row: int
    per_sheet: int
    sizes: np.ndarray
    readable: np.ndarray

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def sheets(self) -> int:
        return -(-self.count // self.per_sheet)

    def sheet_path(self, sheet: int) -> Path:
        return self.folder / f"sheet-{sheet}.jpg"

    def sheet_size(self, sheet: int) -> tuple[int, int]:
        """``(width, height)`` of a sheet in pixels (the last one may hold fewer rows; a sheet of one
        row only as many cells as it has images)."""
        count = min(self.per_sheet, self.count - sheet * self.per_sheet)
        rows = -(-count // self.per_row)
        return (self.per_row * self.cell if rows > 1 else count * self.cell), rows * self.cell

    def where(self, index: int) -> tuple[int, int, int, int, int]:
        """``(sheet, x, y, width, height)`` of image ``index``'s thumbnail, in pixels of its sheet."""
        sheet, slot = divmod(int(index), self.per_sheet)
        row, column = divmod(slot, self.per_row)
        width, height = (int(v) for v in self.sizes[index])
        return sheet, column * self.cell, row * self.cell, width, height

    def thumbnail(self, index: int) -> "Image.Image":  # noqa: F821 - PIL type
        """Image ``index``'s thumbnail, cut from its sheet."""
        from PIL import Image

        sheet, x, y, width, height = self.where(index)
        with Image.open(self.sheet_path(sheet)) as image:
            return image.crop((x, y, x + width, y + height)).convert("RGB")


def atlas_key(hashes: Sequence[str], cell: int = CELL) -> str:
    """The atlas of images with these SHA-256s, in this order, at this cell size."""
    return sha256_json({"atlas": VERSION, "cell": int(cell), "images": sha256_json(list(hashes))})


def open_atlas(key: str, root: Path | None = None) -> Atlas | None:
    """The atlas stored under ``key``, or ``None`` when there is none (or only an unfinished one)."""
    folder = (root or layout().atlases) / key
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    sizes = np.asarray(manifest["sizes"], dtype=np.int32).reshape(-1, 2)
    atlas = Atlas(key, folder, int(manifest["cell"]), int(manifest["per_row"]), int(manifest["per_sheet"]), sizes,
                  np.asarray(manifest["readable"], dtype=bool))
    if not all(atlas.sheet_path(s).is_file() for s in range(atlas.sheets)):
        return None
    mark_used(folder)
    return atlas


def _band(paths: list[str], cell: int, per_row: int) -> tuple[bytes, tuple[int, int], list, list]:
    """Rows of a sheet (in a worker process): each image's thumbnail in its cell, as raw RGB bytes."""
    from PIL import Image

    from embedviz.data.thumbnails import thumbnail

    rows = -(-len(paths) // per_row)
    band = Image.new("RGB", (per_row * cell, rows * cell), _BACKGROUND)
    sizes, readable = [], []
    for i, path in enumerate(paths):
        image = thumbnail(path, cell, placeholder=None)
        readable.append(image is not None)
        if image is None:
            image = Image.new("RGB", (cell, cell), _UNREADABLE)
        row, column = divmod(i, per_row)
        band.paste(image, (column * cell, row * cell))
        sizes.append(image.size)
    return band.tobytes(), band.size, sizes, readable


def build_atlas(paths: Sequence[str | Path], hashes: Sequence[str], *, cell: int = CELL, root: Path | None = None,
                workers: int | None = None, progress: ProgressCallback | None = None) -> Atlas:
    """The atlas of these images (``hashes``: their SHA-256s, in the same order), made now in
    ``workers`` processes (default: every core), or found in the store if it was made before."""
    if len(paths) != len(hashes):
        raise ValueError("one hash per image")
    key = atlas_key(hashes, cell)
    root = root or layout().atlases
    found = open_atlas(key, root)
    if found is not None:
        report(progress, len(paths), len(paths), "thumbnails (made before)")
        return found
    per_row = max(1, SHEET // cell)
    per_sheet = per_row * per_row
    # A few rows a task, so every worker stays busy and transfers stay small; a divisor of the rows of
    # a sheet, so no task straddles two sheets.
    band_rows = max(d for d in range(1, per_row + 1) if per_row % d == 0 and d <= max(1, _BAND // cell))
    per_band = band_rows * per_row
    bands = [[str(p) for p in paths[s:s + per_band]] for s in range(0, len(paths), per_band)]
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{uuid.uuid4().hex[:8]}.partial"
    tmp.mkdir()
    from PIL import Image

    sizes: list[tuple[int, int]] = []
    readable: list[bool] = []
    sheet = None
    try:
        workers = max(1, min(workers or os.cpu_count() or 1, len(bands)))
        report(progress, 0, len(paths), "thumbnails")
        with contextlib.ExitStack() as stack:
            if workers == 1:
                results = (_band(band, cell, per_row) for band in bands)
            else:  # never a plain fork: the dashboard's process has threads (see embedviz/serve/jobs.py)
                method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
                pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)))
                results = pool.map(_band, bands, [cell] * len(bands), [per_row] * len(bands))
            for raw, size, band_sizes, band_readable in results:
                first = len(sizes)
                if first % per_sheet == 0:
                    rows = -(-min(per_sheet, len(paths) - first) // per_row)
                    sheet = Image.new("RGB", (per_row * cell if rows > 1 else len(band_sizes) * cell, rows * cell),
                                      _BACKGROUND)
                sheet.paste(Image.frombytes("RGB", size, raw), (0, (first % per_sheet) // per_row * cell))
                sizes += band_sizes
                readable += band_readable
                if len(sizes) % per_sheet == 0 or len(sizes) == len(paths):
                    sheet.save(tmp / f"sheet-{first // per_sheet}.jpg", "JPEG", quality=88)
                report(progress, len(sizes), len(paths), "thumbnails")
        (tmp / _MANIFEST).write_text(json.dumps({"cell": cell, "per_row": per_row, "per_sheet": per_sheet,
                                                 "sizes": [list(s) for s in sizes], "readable": readable}))
        final = root / key
        if final.exists() and open_atlas(key, root) is None:  # damaged (a sheet or the manifest gone): replaced
            shutil.rmtree(final, ignore_errors=True)
        try:
            tmp.rename(final)
        except OSError:  # another request made it first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atlas = open_atlas(key, root)
    if atlas is None:
        raise OSError(f"the atlas {key[:12]} could not be stored")
    return atlas
