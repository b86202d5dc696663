"""Inputs that could crash or exhaust a shared server: feature files that decompress far beyond
their size, tables and archives over the caps, damaged or hostile archives, and image decoders.

Every refusal is one line that says what to do or names the setting that raises the cap; a cap
is checked from headers and footers before the data is read (tracemalloc shows nothing big was
allocated). Each hostile file is built here, from fixed seeds.
"""

from __future__ import annotations

import io
import struct
import tarfile
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.lib import format as npformat
from PIL import Image

from embedviz.data.decode import ImageRejected, open_image
from embedviz.data.images import load_archive, load_collection, load_folder, load_manifest
from embedviz.data.precomputed import load_precomputed
from embedviz.errors import DataError


def _refused(call, *args, match: str, **kwargs) -> str:
    """Run ``call``: it must raise a one-line DataError matching ``match``; return the message."""
    with pytest.raises(DataError, match=match) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def _peak_while(call) -> int:
    """Peak bytes allocated (numpy's buffers included) while ``call`` runs."""
    tracemalloc.start()
    try:
        call()
    except DataError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _png_bytes(seed: int, size: int = 8) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _nothing_left(workspace) -> bool:
    return not workspace.exists() or not any(workspace.iterdir())


# ---- feature files: caps checked from the header or footer -------------------------------------------

def test_npz_bomb_is_refused_from_its_header_before_decompressing(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_MAX_FEATURES_MB", "8")
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, features=np.zeros((4000, 4096), np.float32))  # 62.5 MiB of zeros
    assert path.stat().st_size < 200_000
    message = _refused(load_precomputed, path, match="EMBEDVIZ_MAX_FEATURES_MB raises it")
    assert "63 MiB" in message  # says how big it would be
    assert _peak_while(lambda: load_precomputed(path)) < 4 * 2**20
    # A member whose zip entry is small but whose .npy header declares a huge array: refused by the header.
    header = io.BytesIO()
    npformat.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1000, 10**6)})
    with zipfile.ZipFile(tmp_path / "liar.npz", "w") as zf:
        zf.writestr("features.npy", header.getvalue() + b"\0" * 64)
    _refused(load_precomputed, tmp_path / "liar.npz", match="1,000,000 columns.*EMBEDVIZ_MAX_COLUMNS raises it")
    monkeypatch.setenv("EMBEDVIZ_MAX_COLUMNS", "1e7")
    _refused(load_precomputed, tmp_path / "liar.npz", match="3,815 MiB of features.*EMBEDVIZ_MAX_FEATURES_MB")


def test_parquet_bomb_is_refused_from_its_footer_before_decoding(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, dims = 20_000, 256  # 19.5 MiB of float32 zeros that pack into a few KiB
    values = pa.array(np.zeros(rows * dims, np.float32))
    vectors = pa.ListArray.from_arrays(pa.array(np.arange(0, rows * dims + 1, dims, dtype=np.int32)), values)
    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"id": pa.array(np.arange(rows)), "embedding": vectors}), path, compression="zstd")
    assert path.stat().st_size < 200_000
    monkeypatch.setenv("EMBEDVIZ_MAX_FEATURES_MB", "4")
    _refused(load_precomputed, path, match="20,000 vectors of 256 values.*EMBEDVIZ_MAX_FEATURES_MB raises it")
    assert _peak_while(lambda: load_precomputed(path)) < 3 * 2**20
    monkeypatch.setenv("EMBEDVIZ_MAX_FEATURES_MB", "64")  # under a larger cap the same file loads
    assert load_precomputed(path).features.shape == (rows, dims)


def test_parquet_manifest_that_decodes_past_the_table_cap_is_refused(tmp_path, monkeypatch):
    rows = 5_000
    pd.DataFrame({"path": [f"{i}.png" for i in range(rows)], "note": ["x" * 2000] * rows}).to_parquet(
        tmp_path / "m.parquet")
    assert (tmp_path / "m.parquet").stat().st_size < 200_000  # ~10 MiB of notes, dictionary-encoded
    monkeypatch.setenv("EMBEDVIZ_MAX_TABLE_MB", "2")
    _refused(load_manifest, tmp_path / "m.parquet", match="EMBEDVIZ_MAX_TABLE_MB raises it")


def _npy_header_only(path, shape, descr="<f4", data=b"\0" * 64) -> None:
    with open(path, "wb") as fh:
        npformat.write_array_header_1_0(fh, {"descr": descr, "fortran_order": False, "shape": shape})
        fh.write(data)


def test_npy_header_declaring_a_trillion_rows_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "huge.npy"
    _npy_header_only(path, (10**12, 8))
    _refused(load_precomputed, path, match="1,000,000,000,000 rows.*EMBEDVIZ_MAX_ROWS raises it")
    # Even where an operator lifts every cap, a header declaring more than the file holds is one line,
    # not a MemoryError.
    monkeypatch.setenv("EMBEDVIZ_MAX_ROWS", "1e13")
    monkeypatch.setenv("EMBEDVIZ_MAX_FEATURES_MB", "1e12")
    _refused(load_precomputed, path, match="cut short.*save it again")


def test_npy_over_the_column_and_size_caps(tmp_path, monkeypatch):
    np.save(tmp_path / "wide.npy", np.zeros((4, 300), np.float32))
    monkeypatch.setenv("EMBEDVIZ_MAX_COLUMNS", "256")
    _refused(load_precomputed, tmp_path / "wide.npy", match="300 columns.*EMBEDVIZ_MAX_COLUMNS raises it")
    monkeypatch.delenv("EMBEDVIZ_MAX_COLUMNS")
    np.save(tmp_path / "big.npy", np.zeros((2000, 300), np.float64))  # 4.6 MiB
    monkeypatch.setenv("EMBEDVIZ_MAX_FEATURES_MB", "1")
    _refused(load_precomputed, tmp_path / "big.npy", match="EMBEDVIZ_MAX_FEATURES_MB raises it")


def test_csv_manifest_over_the_table_cap_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "m.csv"
    pd.DataFrame({"path": [f"img/{i:05d}.png" for i in range(5000)], "label": ["a"] * 5000}).to_csv(path, index=False)
    monkeypatch.setenv("EMBEDVIZ_MAX_TABLE_MB", "0.05")  # 50 KiB; the file is ~90 KiB
    message = _refused(load_manifest, path, match="m.csv is 0.1 MiB.*EMBEDVIZ_MAX_TABLE_MB raises it")
    assert "img/" not in message  # no content of the file is shown
    monkeypatch.setenv("EMBEDVIZ_MAX_TABLE_MB", "1")
    monkeypatch.setenv("EMBEDVIZ_MAX_ROWS", "1000")
    _refused(load_manifest, path, match="EMBEDVIZ_MAX_ROWS raises it")


def test_metascatter_csv_and_tensorboard_tsv_over_the_row_and_column_caps(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    pd.DataFrame({"Paths": [f"{i}.png" for i in range(300)], "X-Coord": rng.normal(size=300),
                  "Y-Coord": rng.normal(size=300)}).to_csv(tmp_path / "map.csv", index=False)
    (tmp_path / "tb").mkdir()
    np.savetxt(tmp_path / "tb" / "tensors.tsv", rng.normal(size=(10, 40)), delimiter="\t")
    monkeypatch.setenv("EMBEDVIZ_MAX_ROWS", "200")
    _refused(load_precomputed, tmp_path / "map.csv", match="map.csv has 201 rows.*EMBEDVIZ_MAX_ROWS raises it")
    monkeypatch.setenv("EMBEDVIZ_MAX_COLUMNS", "32")
    _refused(load_precomputed, tmp_path / "tb", match="tensors.tsv has 40 columns.*EMBEDVIZ_MAX_COLUMNS raises it")
    monkeypatch.delenv("EMBEDVIZ_MAX_COLUMNS")
    monkeypatch.setenv("EMBEDVIZ_MAX_FEATURES_MB", "0.001")
    _refused(load_precomputed, tmp_path / "tb", match="EMBEDVIZ_MAX_FEATURES_MB raises it")


# ---- archives: caps -------------------------------------------------------------------------------------

def test_archive_over_the_member_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_MAX_ARCHIVE_FILES", "10")
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as zf:
        for i in range(20):
            zf.writestr(f"a/{i}.png", b"x")
    with tarfile.open(tmp_path / "many.tar", "w") as tf:
        for i in range(20):
            info = tarfile.TarInfo(f"a/{i}.png")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    _refused(load_archive, tmp_path / "many.zip", tmp_path / "ws", match="20 members.*EMBEDVIZ_MAX_ARCHIVE_FILES")
    _refused(load_archive, tmp_path / "many.tar", tmp_path / "ws", match="EMBEDVIZ_MAX_ARCHIVE_FILES raises it")
    assert _nothing_left(tmp_path / "ws")


def _pack_both(stem: Path, blobs: list[bytes], folder: str, compression: int = zipfile.ZIP_STORED) -> None:
    """``blobs`` as ``folder/<i>.png`` in ``stem.zip`` and in ``stem.tar.gz``."""
    with zipfile.ZipFile(stem.with_suffix(".zip"), "w", compression=compression) as zf:
        for i, blob in enumerate(blobs):
            zf.writestr(f"{folder}/{i}.png", blob)
    with tarfile.open(stem.with_suffix(".tar.gz"), "w:gz") as tf:
        for i, blob in enumerate(blobs):
            info = tarfile.TarInfo(f"{folder}/{i}.png")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))


def test_archive_over_the_unpacked_size_cap_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_MAX_ARCHIVE_MB", "1")
    rng = np.random.default_rng(1)
    blobs = [rng.bytes(700_000) for _ in range(3)]  # incompressible: no ratio alarm, only the size cap
    _pack_both(tmp_path / "big", blobs, "a")
    _refused(load_archive, tmp_path / "big.zip", tmp_path / "ws", match="EMBEDVIZ_MAX_ARCHIVE_MB raises it")
    _refused(load_archive, tmp_path / "big.tar.gz", tmp_path / "ws", match="EMBEDVIZ_MAX_ARCHIVE_MB raises it")
    assert _nothing_left(tmp_path / "ws")  # the first 0.7 MiB written from the .tar.gz is gone too


# ---- archives: damaged, hostile, odd ---------------------------------------------------------------------

def _patch_zip_headers(path, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flag and compression method of every member, in the local and
    central headers (zipfile cannot write encrypted members or unknown methods)."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        start = data.find(signature)
        while start != -1:
            if flag is not None:
                struct.pack_into("<H", data, start + flag_at, flag)
            if method is not None:
                struct.pack_into("<H", data, start + method_at, method)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def _small_zip(path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cats/0.png", b"not really a png, but zip does not care")


def test_encrypted_zip_is_one_line(tmp_path):
    _small_zip(tmp_path / "secret.zip")
    _patch_zip_headers(tmp_path / "secret.zip", flag=0x1)
    _refused(load_archive, tmp_path / "secret.zip", tmp_path / "ws", match="encrypted.*without a password")
    _small_zip(tmp_path / "aes.zip")
    _patch_zip_headers(tmp_path / "aes.zip", method=99)  # WinZip AES
    _refused(load_archive, tmp_path / "aes.zip", tmp_path / "ws", match="encrypted")
    assert _nothing_left(tmp_path / "ws")


def test_zip_with_an_unsupported_compression_method_is_one_line(tmp_path):
    _small_zip(tmp_path / "ppmd.zip")
    _patch_zip_headers(tmp_path / "ppmd.zip", method=98)  # PPMd: zipfile has no decompressor for it
    _refused(load_archive, tmp_path / "ppmd.zip", tmp_path / "ws",
             match="compression method 98.*pack it again as a standard zip")


@pytest.mark.parametrize("name", ["notes.zip", "notes.tar.gz", "notes.tar", "notes.tgz"])
def test_a_file_that_is_not_an_archive_is_one_line(tmp_path, name):
    (tmp_path / name).write_text("user,password\nalice,hunter2\n")
    message = _refused(load_collection, tmp_path / name, workspace=tmp_path / "ws",
                       match="not a readable.*upload a .zip, .tar or .tar.gz")
    assert "gzip" not in message and "bz2" not in message and "hunter2" not in message


def test_truncated_zip_and_tar_gz_are_one_line_and_leave_nothing(tmp_path):
    rng = np.random.default_rng(2)
    blobs = [_png_bytes(i, 64) + rng.bytes(50_000) for i in range(4)]
    _pack_both(tmp_path / "full", blobs, "cats", compression=zipfile.ZIP_DEFLATED)
    for name in ("full.zip", "full.tar.gz"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / name.replace("full", "cut")
        cut.write_bytes(data[: int(len(data) * 0.6)])
        message = _refused(load_archive, cut, tmp_path / "ws", match="cut short.*upload it again")
        assert "method gz" not in message
        assert _nothing_left(tmp_path / "ws"), list((tmp_path / "ws").rglob("*"))


def test_member_name_of_300_characters_is_one_line(tmp_path):
    with zipfile.ZipFile(tmp_path / "long.zip", "w") as zf:
        zf.writestr("cats/" + "a" * 300 + ".png", _png_bytes(0))
    _refused(load_archive, tmp_path / "long.zip", tmp_path / "ws", match="longer than 255 bytes.*shorten it")
    assert _nothing_left(tmp_path / "ws")


def test_nesting_200_folders_deep_is_one_line(tmp_path):
    with tarfile.open(tmp_path / "deep.tar", "w") as tf:
        data = _png_bytes(0)
        info = tarfile.TarInfo("/".join(f"level{i:03d}" for i in range(200)) + "/0.png")  # ~1,800 bytes
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    _refused(load_archive, tmp_path / "deep.tar", tmp_path / "ws", match="200 folders deep.*move them up")
    assert _nothing_left(tmp_path / "ws")


def test_a_good_archive_still_unpacks_once_and_completely(tmp_path):
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"shapes/cats/{i}.png", _png_bytes(i))
    collection = load_archive(tmp_path / "ok.zip", tmp_path / "ws")
    assert sorted(collection.samples["sample_id"]) == [f"cats/{i}.png" for i in range(3)]
    assert [p.name.endswith(".partial") for p in (tmp_path / "ws").iterdir()] == [False]


# ---- decoders ---------------------------------------------------------------------------------------------

def _avif_supported() -> bool:
    from PIL import features

    return bool(features.check("avif"))


@pytest.mark.skipif(not _avif_supported(), reason="this Pillow has no AVIF codec")
def test_avif_images_are_found_and_decoded(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    (tmp_path / "cats").mkdir()
    Image.fromarray(pixels).save(tmp_path / "cats" / "0.avif", "AVIF")
    Image.fromarray(pixels).save(tmp_path / "cats" / "1.png")
    collection = load_folder(tmp_path)
    assert sorted(collection.samples["sample_id"]) == ["cats/0.avif", "cats/1.png"]
    image = open_image(tmp_path / "cats" / "0.avif")
    assert image.mode == "RGB" and image.size == (16, 16)


def test_heic_is_accepted_exactly_when_a_plugin_opens_it():
    from embedviz.data.decode import accepted_formats, image_suffixes

    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        assert ".heic" not in image_suffixes()
    else:
        assert ".heic" in image_suffixes() and "HEIF" in accepted_formats()
    assert {".png", ".jpg", ".tif", ".webp"} <= image_suffixes()
    assert not {".eps", ".pdf", ".ps", ".h5"} & image_suffixes()  # Ghostscript and data containers: never


def _corruptions(data: bytes, seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), rng.integers(1, 6)):
            b[pos] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            b = b[: int(rng.integers(8, len(b)))]
        yield bytes(b)


@pytest.mark.parametrize("fmt", ["AVIF", "PNG", "GIF", "TIFF", "BMP", "WEBP", "DDS"])
def test_every_damaged_image_is_a_skip_never_an_exception(tmp_path, fmt):
    if fmt == "AVIF" and not _avif_supported():
        pytest.skip("this Pillow has no AVIF codec")
    pixels = np.random.default_rng(4).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    data, reasons = buf.getvalue(), set()
    cases = list(_corruptions(data, 5, 300))
    if fmt == "AVIF":  # every single-byte flip too: some raise RuntimeError from inside the codec
        cases += [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:] for i in range(len(data))]
    path = tmp_path / f"x.{fmt.lower()}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow warns about odd TIFF tags: not the point here
        for case in cases:
            path.write_bytes(case)
            try:
                open_image(path)
            except ImageRejected as exc:
                reasons.add(str(exc))
    assert reasons and all("\n" not in r and len(r) < 200 for r in reasons)


@pytest.mark.parametrize("content, name", [('{"999999999999": "x"}', "c.json"), ("0 cat\n999999999999 x\n", "c.txt"),
                                           ('{"-1": "x", "0": "y"}', "c.json")])
def test_a_class_index_with_a_huge_or_negative_id_is_one_line_at_once(tmp_path, content, name):
    import time

    from embedviz.data.classes import load_class_index

    path = tmp_path / name
    path.write_text(content)
    started = time.monotonic()
    with pytest.raises(DataError) as said:
        load_class_index(path)
    assert time.monotonic() - started < 1  # no range up to the id was built
    assert "0..N-1" in str(said.value) and "\n" not in str(said.value)
