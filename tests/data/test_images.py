from __future__ import annotations

import io
import tarfile
import zipfile

import pandas as pd
import pytest

from embedviz.data.images import collection_hash, load_archive, load_collection, load_folder, load_manifest
from embedviz.errors import DataError


def test_class_folders_become_labels_and_junk_is_ignored(image_folder):
    collection = load_folder(image_folder)
    table = collection.samples
    assert len(collection) == 17  # 8 discs, 8 squares, 1 unreadable file (skipped later, at decode time)
    assert set(table["label"]) == {"discs", "squares"}
    assert "discs/00.png" in set(table["sample_id"])
    assert not table["path"].str.contains("DS_Store|/\\._").any()
    assert table["sample_id"].is_unique


def test_sample_ids_are_stable_across_loads(image_folder):
    first = load_folder(image_folder).samples["sample_id"].tolist()
    assert load_folder(image_folder).samples["sample_id"].tolist() == first


def test_nested_folders_keep_their_path(tmp_path, image_folder):
    (image_folder / "discs" / "outdoor").mkdir()
    (image_folder / "discs" / "00.png").rename(image_folder / "discs" / "outdoor" / "00.png")
    table = load_folder(image_folder).samples.set_index("sample_id")
    assert table.loc["discs/outdoor/00.png", "label"] == "discs"
    assert table.loc["discs/outdoor/00.png", "folder"] == "discs/outdoor"


def test_zip_gives_the_same_images_as_the_folder(tmp_path, image_folder):
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(image_folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"shapes/{path.relative_to(image_folder).as_posix()}")
        zf.writestr("__MACOSX/shapes/._01.png", b"junk")
    from_zip = load_archive(archive, workspace=tmp_path / "ws")
    from_folder = load_folder(image_folder)
    assert from_zip.samples["sample_id"].tolist() == from_folder.samples["sample_id"].tolist()
    assert collection_hash(from_zip) == collection_hash(from_folder)


@pytest.mark.parametrize("name", ["../evil.png", "/etc/evil.png", "a/../../evil.png"])
def test_zip_paths_that_leave_the_folder_are_refused(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name, b"x")
    with pytest.raises(DataError, match="refusing"):
        load_archive(archive, workspace=tmp_path / "ws")
    assert not (tmp_path / "evil.png").exists()


def test_tar_links_are_refused(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("cats/link.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="link"):
        load_archive(archive, workspace=tmp_path / "ws")


def test_tar_gz_is_read(tmp_path, image_folder):
    archive = tmp_path / "shapes.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(image_folder, arcname="shapes")
    assert len(load_collection(archive, workspace=tmp_path / "ws")) == 17


def test_manifest_with_chinese_columns_and_path_prefix(tmp_path, image_folder):
    manifest = tmp_path / "meta.csv"
    rows = [{"图像路径": f"discs/{i:02d}.png", "标注类别名称": "圆", "score": i} for i in range(4)]
    manifest.write_bytes(pd.DataFrame(rows).to_csv(index=False, sep=";").encode("utf-8-sig"))
    collection = load_manifest(manifest, path_prefix=image_folder)
    assert collection.samples["sample_id"].tolist() == [f"discs/{i:02d}.png" for i in range(4)]
    assert collection.samples["标注类别名称"].tolist() == ["圆"] * 4
    assert all(p.exists() for p in collection.paths())


@pytest.mark.parametrize("bad", ["../outside.png", "/abs/path.png", "https://example.com/a.png"])
def test_manifest_paths_must_stay_under_the_prefix(tmp_path, bad):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\nok.png,a\n{bad},b\n")
    with pytest.raises(DataError):
        load_manifest(manifest, path_prefix=tmp_path)


def test_missing_or_unknown_sources_say_what_to_give(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_collection(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images found"):
        load_collection(tmp_path / "empty")
    odd = tmp_path / "notes.docx"
    odd.write_bytes(io.BytesIO(b"x").getvalue())
    with pytest.raises(DataError, match="not a folder"):
        load_collection(odd)


def test_zip_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cats/huge.png", b"\0" * (40 * 2**20))  # 40 MiB of zeros packs into ~40 KiB
    assert archive.stat().st_size < 200_000
    with pytest.raises(DataError, match="zip bomb"):
        load_archive(archive, workspace=tmp_path / "ws")


def test_tar_gz_that_expands_too_far_is_stopped_while_copying(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    payload = tmp_path / "huge.png"
    payload.write_bytes(b"\0" * (40 * 2**20))
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(payload, arcname="cats/huge.png")
    with pytest.raises(DataError, match="expands far beyond its size"):
        load_archive(archive, workspace=tmp_path / "ws")


def test_nested_archives_and_other_files_are_not_unpacked(tmp_path, image_folder):
    archive = tmp_path / "outer.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(image_folder / "discs" / "00.png", "discs/00.png")
        zf.writestr("discs/inner.zip", b"PK\x03\x04 nested")
        zf.writestr("run.sh", b"rm -rf /")
    collection = load_archive(archive, workspace=tmp_path / "ws")
    assert collection.samples["sample_id"].tolist() == ["discs/00.png"]
    assert not list((tmp_path / "ws").rglob("*.sh")) and not list((tmp_path / "ws").rglob("inner.zip"))


def test_exact_duplicates_are_found(image_folder):
    import shutil

    from embedviz.data.images import find_duplicates

    shutil.copy(image_folder / "discs" / "03.png", image_folder / "squares" / "copy_of_disc.png")
    collection = load_folder(image_folder)
    duplicates = find_duplicates(collection).set_axis(collection.samples["sample_id"])
    assert duplicates["squares/copy_of_disc.png"] == "discs/03.png"
    assert duplicates.notna().sum() == 1


def test_one_column_manifest_is_not_split_on_a_letter(tmp_path, image_folder):
    manifest = tmp_path / "only_paths.csv"
    manifest.write_text("path\n" + "\n".join(f"discs/{i:02d}.png" for i in range(3)) + "\n")
    collection = load_manifest(manifest, path_prefix=image_folder)
    assert collection.samples.columns.tolist() == ["sample_id", "path"]
    assert len(collection) == 3
