"""Sprite atlases: thumbnails of 10,000 photos packed into sheets, against a per-image loop, in one invocation.

1. The loop a notebook would write: open each JPEG with Pillow, ``thumbnail((96, 96))``, paste it
   into a sheet, save the sheets (one process).
2. embedviz's ``build_atlas``: JPEGs decoded at a reduced scale, one sheet per worker process.
3. The same request again: a cache hit in the store.

Target (issue 19): 10,000 images in ≤ 10 s on this project's 2 cores; reopening a cache hit.
Run: python -m benchmarks atlas [--images 10000] [--workers N] [--json PATH]
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/atlas.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import make_parser, save  # noqa: E402


def per_image_loop(paths: list[str], out: Path, cell: int = 96, side: int = 4096) -> float:
    """Pillow's own thumbnail, one image at a time, pasted into sheets saved as JPEG."""
    from PIL import Image

    per_row = side // cell
    per_sheet = per_row * per_row
    start = time.perf_counter()
    sheet = None
    for i, path in enumerate(paths):
        slot = i % per_sheet
        if slot == 0:
            if sheet is not None:
                sheet.save(out / f"loop-{i // per_sheet - 1}.jpg", quality=88)
            sheet = Image.new("RGB", (per_row * cell, per_row * cell), (245, 245, 245))
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((cell, cell))
        sheet.paste(image, ((slot % per_row) * cell, (slot // per_row) * cell))
    if sheet is not None:
        sheet.save(out / "loop-last.jpg", quality=88)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser("atlas", __doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    from benchmarks.extract import make_jpegs
    from embedviz.data.atlas import build_atlas
    from embedviz.data.images import file_hashes, load_folder

    with tempfile.TemporaryDirectory(prefix="embedviz-bench-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        collection = load_folder(make_jpegs(tmp / "jpegs", args.images))
        paths, hashes = [str(p) for p in collection.paths()], file_hashes(collection)
        made_s = time.perf_counter() - start
        print(f"# Atlases on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"{len(paths):,} JPEGs 400x300 made and hashed in {made_s:.1f} s (not timed below)")
        (tmp / "loop").mkdir()
        loop_s = per_image_loop(paths, tmp / "loop")
        start = time.perf_counter()
        atlas = build_atlas(paths, hashes, root=tmp / "atlases", workers=args.workers)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        again = build_atlas(paths, hashes, root=tmp / "atlases", workers=args.workers)
        reopen_s = time.perf_counter() - start
        sheet_mb = sum(atlas.sheet_path(s).stat().st_size for s in range(atlas.sheets)) / 2**20
        print(f"  per-image loop (Pillow thumbnail, one process)  {loop_s:6.1f} s")
        print(f"  embedviz build_atlas                            {ours_s:6.1f} s  = {loop_s / ours_s:.1f}x faster "
              f"(target ≤ 10 s for 10,000)")
        print(f"  the same request again (cache hit)              {reopen_s:6.3f} s  "
              f"same key: {again.key == atlas.key}")
        print(f"  {atlas.sheets} sheets of up to {atlas.per_sheet:,} thumbnails, {sheet_mb:.1f} MiB in all "
              f"({sheet_mb * 2**20 / len(paths) / 1024:.1f} KiB an image)")
    return save("atlas", args, {"images": len(paths), "loop_s": loop_s, "build_s": ours_s,
                                "speedup": loop_s / ours_s, "reopen_s": reopen_s, "sheets": atlas.sheets,
                                "sheet_mib": sheet_mb})


if __name__ == "__main__":
    main()
