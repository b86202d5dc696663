"""A shared server reads only the folders its operator shares, never embedviz's own storage, shows
nothing of a file that is not a manifest, caps each user's uploads, and writes uploads atomically."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from embedviz.data.images import load_collection
from embedviz.data.roots import check_server_path, data_roots
from embedviz.errors import DataError
from tests.conftest import make_image_folder

ROOT = Path(__file__).resolve().parents[2]
SERVER = "Path on this server"


@pytest.fixture
def data_page(monkeypatch):
    """The Data & model page of a fresh session, as a user opens it."""
    monkeypatch.chdir(ROOT)

    def open_page() -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.switch_page("pages/1_Data_and_model.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def _texts(at: AppTest) -> str:
    """Everything the page shows as text, data tables included."""
    parts = [e.value for kind in ("error", "warning", "success", "info", "caption", "markdown") for e in at.get(kind)]
    parts += [frame.value.to_string() for frame in at.dataframe]
    return "\n".join(map(str, parts))


def _use_path(at: AppTest, path, prefix: str = "") -> None:
    at.radio[0].set_value(SERVER).run()
    at.text_input[0].input(str(path))
    at.text_input[1].input(prefix)
    at.button[0].click().run()


def test_with_no_shared_folders_the_page_offers_no_server_paths_and_the_core_refuses(data_page, tmp_path, monkeypatch):
    monkeypatch.delenv("EMBEDVIZ_DATA_ROOTS", raising=False)
    folder = make_image_folder(tmp_path / "images", per_class=2)
    at = data_page()
    assert at.radio[0].options == ["Built-in demo (digits)", "Upload"]
    assert any("EMBEDVIZ_DATA_ROOTS" in c.value for c in at.caption)
    with pytest.raises(DataError, match="shares no folders.*EMBEDVIZ_DATA_ROOTS"):
        check_server_path(folder)
    with pytest.raises(DataError, match="shares no folders"):
        load_collection(folder, roots=data_roots())
    assert len(load_collection(folder)) == 5  # the command line (a user on their own machine): any path

    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(tmp_path))
    at = data_page()
    assert SERVER in at.radio[0].options
    _use_path(at, folder)
    assert not at.error and any("images**: 5 images" in s.value for s in at.success)


@pytest.mark.parametrize("which", ["/", "parent", "home", "sessions", "link to parent"])
def test_the_file_system_root_the_home_and_what_holds_it_are_never_roots(data_page, which, tmp_path, monkeypatch,
                                                                        embedviz_home):
    theirs = make_image_folder(embedviz_home / "sessions" / "someone" / "images", per_class=2)
    root = {"/": Path("/"), "parent": embedviz_home.parent, "home": embedviz_home,
            "sessions": embedviz_home / "sessions", "link to parent": tmp_path / "data"}[which]
    if which == "link to parent":
        root.symlink_to(embedviz_home.parent)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(root))
    roots = data_roots()
    assert not roots and roots.refused == (str(root),)
    with pytest.raises(DataError, match="shares no folders"):
        check_server_path(theirs, roots)
    with pytest.raises(DataError):
        load_collection(theirs.parent.parent, roots=roots)
    at = data_page()
    assert SERVER not in at.radio[0].options


def test_links_in_a_shared_folder_never_lead_into_the_home_or_out_of_the_shared_folders(data_page, tmp_path,
                                                                                       monkeypatch, embedviz_home):
    theirs = make_image_folder(embedviz_home / "sessions" / "someone" / "images", per_class=2)
    private = make_image_folder(tmp_path / "private", per_class=2)
    shared = make_image_folder(tmp_path / "shared", per_class=2)
    links = {"theirs": theirs, "home": embedviz_home, "private": private}
    for name, target in links.items():
        (shared / name).symlink_to(target)
    (shared / "discs" / "09.png").symlink_to(theirs / "discs" / "00.png")
    roots = data_roots(str(shared))  # as [embedviz] data_roots in secrets.toml
    for name in links:
        with pytest.raises(DataError, match="embedviz's own storage|outside the folders this server shares"):
            load_collection(shared / name, roots=roots)
    walked = load_collection(shared, roots=roots)  # the walk does not follow the links either
    assert sorted(walked.samples["sample_id"]) == ["discs/00.png", "discs/01.png", "squares/00.png",
                                                   "squares/01.png", "squares/broken.png"]

    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = data_page()
    for name, words in (("theirs", "outside the folders"), ("private", "outside the folders")):  # one message
        _use_path(at, shared / name)
        assert not at.exception and len(at.error) == 1 and words in at.error[0].value
        assert any("1,797 images" in s.value for s in at.success)  # the demo stays
    _use_path(at, shared)
    assert not at.error and any("shared**: 5 images" in s.value for s in at.success)


def test_a_manifest_whose_images_lie_outside_the_shared_folders_is_refused(data_page, tmp_path, monkeypatch):
    private = make_image_folder(tmp_path / "private", per_class=2)
    shared = make_image_folder(tmp_path / "shared", per_class=2)
    (shared / "out").symlink_to(private)
    pd.DataFrame({"path": ["discs/00.png", "out/discs/01.png"]}).to_csv(shared / "through_link.csv", index=False)
    pd.DataFrame({"path": ["discs/00.png", "discs/01.png"]}).to_csv(shared / "plain.csv", index=False)
    roots = data_roots(str(shared))
    with pytest.raises(DataError, match="Row 2 of through_link.csv names an image outside the folders"):
        load_collection(shared / "through_link.csv", roots=roots)
    with pytest.raises(DataError, match="outside the folders this server shares"):
        load_collection(shared / "plain.csv", path_prefix=private, roots=roots)
    assert len(load_collection(shared / "plain.csv", roots=roots)) == 2
    assert len(load_collection(shared / "through_link.csv")) == 2  # the command line follows the user's links

    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = data_page()
    _use_path(at, shared / "through_link.csv")
    assert not at.exception and len(at.error) == 1 and "outside the folders" in at.error[0].value
    _use_path(at, shared / "plain.csv", prefix=str(private))
    assert len(at.error) == 1 and "outside the folders this server shares" in at.error[0].value
    assert any("1,797 images" in s.value for s in at.success)


SECRETS = ("alice", "hunter2", "bob", "s3cret", "user", "password", "notes.txt", "evil.example")


def test_a_table_that_is_not_a_manifest_shows_nothing_of_itself(data_page, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "creds.txt").write_text("user,password\nalice,hunter2\nbob,s3cret\n")
    (shared / "named.csv").write_text("file,password\nnotes.txt,hunter2\n")  # a path column, but not of images
    (shared / "url.csv").write_text("path,password\nhttp://evil.example/a.png,hunter2\n")
    (shared / "outside.csv").write_text("path,password\n../../etc/alice.png,hunter2\n")
    roots = data_roots(str(shared))
    for name in ("creds.txt", "named.csv", "url.csv", "outside.csv"):
        with pytest.raises(DataError) as info:
            load_collection(shared / name, roots=roots)
        message = str(info.value)
        assert "\n" not in message and not any(word in message.lower() for word in SECRETS), message
    with pytest.raises(DataError, match="looked for a column named path.*name the column 'path'"):
        load_collection(shared / "creds.txt", roots=roots)

    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = data_page()
    for name in ("creds.txt", "named.csv"):
        _use_path(at, shared / name)
        assert not at.exception and len(at.error) == 1
        shown = _texts(at).lower()
        assert not any(word in shown for word in SECRETS if word != "user"), shown
        assert "hunter2" not in shown and "alice" not in shown
        assert any("1,797 images" in s.value for s in at.success)  # the data table is still the demo's


def test_the_whole_file_system_or_an_unreadable_folder_is_one_line(tmp_path, monkeypatch):
    with pytest.raises(DataError) as info:
        load_collection("/")
    assert "\n" not in str(info.value) and "whole file system" in str(info.value)

    folder = make_image_folder(tmp_path / "images", per_class=2)
    (folder / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError) as info:
        load_collection(folder)
    assert str(info.value) == (f"Cannot read {folder}: locked in it is not readable (Permission denied); "
                               "give a folder whose images you can read.")


def _png(seed: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40 % 255, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload_images(at: AppTest, files: list[tuple[str, bytes]]) -> None:
    at.radio[0].set_value("Upload").run()
    at.file_uploader[0].set_value([(name, data, "image/png") for name, data in files]).run()
    next(b for b in at.button if b.label == "Use these images").click().run()


def _uploaded_files(home: Path) -> list[Path]:
    sessions = home / "sessions"
    return [p for p in sessions.rglob("*") if p.is_file() and p.name != ".last_used"] if sessions.exists() else []


def test_uploads_over_the_workspace_caps_are_refused_before_anything_is_written(data_page, monkeypatch,
                                                                                embedviz_home):
    from embedviz.serve.access import signed_in_viewer

    # one person in two sessions (two tabs, or two browsers signed in as them): one workspace, one cap
    monkeypatch.setattr("embedviz.ui.auth.viewer", lambda: signed_in_viewer("ann@lab.org"))
    images = [(f"{i}.png", _png(i)) for i in range(4)]
    monkeypatch.setenv("EMBEDVIZ_WORKSPACE_MB", str(100 / 2**20))  # 100 bytes
    at = data_page()
    _upload_images(at, images[:2])
    assert not at.exception and len(at.error) == 1
    assert "EMBEDVIZ_WORKSPACE_MB raises it" in at.error[0].value and "would bring your uploads to" in at.error[0].value
    assert _uploaded_files(embedviz_home) == []

    monkeypatch.setenv("EMBEDVIZ_WORKSPACE_MB", "10")
    monkeypatch.setenv("EMBEDVIZ_WORKSPACE_FILES", "3")
    _upload_images(at, images[:4])
    assert len(at.error) == 1 and "EMBEDVIZ_WORKSPACE_FILES raises it" in at.error[0].value
    assert _uploaded_files(embedviz_home) == []
    _upload_images(at, images[:2])
    assert not at.error and any("2 images" in s.value for s in at.success)
    assert len(_uploaded_files(embedviz_home)) == 2

    other_tab = data_page()
    _upload_images(other_tab, images[2:4])  # 2 + 2 files: over the 3 of this person's workspace
    assert len(other_tab.error) == 1 and "EMBEDVIZ_WORKSPACE_FILES raises it" in other_tab.error[0].value
    assert "to 4 files" in other_tab.error[0].value
    _upload_images(other_tab, images[2:3])
    assert not other_tab.error and len(_uploaded_files(embedviz_home)) == 3
    assert len({p.relative_to(embedviz_home / "sessions").parts[0] for p in _uploaded_files(embedviz_home)}) == 1


def test_a_truncated_weights_file_is_written_again_on_the_next_upload_and_then_loads(data_page, tmp_path,
                                                                                    embedviz_home):
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    save_file(torchvision.models.resnet18(num_classes=3).state_dict(), str(tmp_path / "r.safetensors"))
    data = (tmp_path / "r.safetensors").read_bytes()
    # an earlier upload of the same file was cut short where the content hash says the file is
    target = embedviz_home / "weights" / hashlib.sha256(data).hexdigest()[:16] / "r.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) // 3])

    at = data_page()
    next(s for s in at.selectbox if s.label == "Architecture").set_value("resnet18").run()
    next(u for u in at.file_uploader if u.label.startswith("State dict")).set_value(
        ("r.safetensors", data, "application/octet-stream")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert target.read_bytes() == data
    assert any("resnet18" in s.value and "3 classes" in s.value for s in at.success), [s.value for s in at.success]
    assert [p.name for p in target.parent.iterdir()] == ["r.safetensors"]  # no temporary file left behind


def test_an_archive_that_unpacks_past_the_room_left_in_the_workspace_is_refused(tmp_path, image_folder):
    from embedviz.data.images import load_archive
    from embedviz.errors import DataError
    from tests.conftest import zip_folder

    archive = zip_folder(image_folder, tmp_path / "shapes.zip")
    with pytest.raises(DataError) as files:
        load_archive(archive, tmp_path / "ws", room=(10**9, 5))
    assert "EMBEDVIZ_WORKSPACE_FILES" in str(files.value) and "\n" not in str(files.value)
    with pytest.raises(DataError) as size:
        load_archive(archive, tmp_path / "ws", room=(2_000, 1_000))
    assert "EMBEDVIZ_WORKSPACE_MB" in str(size.value)
    assert not any((tmp_path / "ws").rglob("*.png"))  # nothing half-unpacked stays
    assert len(load_archive(archive, tmp_path / "ws", room=(10**9, 1_000))) == 17  # 16 shapes and one broken .png


def test_a_projector_folder_whose_tsv_links_into_the_home_is_refused(data_page, tmp_path, monkeypatch):
    victim = Path(os.environ["EMBEDVIZ_HOME"]) / "sessions" / "victim"
    victim.mkdir(parents=True)
    (victim / "tensors.tsv").write_text("1\t2\n3\t4\n")
    (victim / "metadata.tsv").write_text("secret-label\nother-label\n")
    shared = tmp_path / "shared"
    (shared / "tb").mkdir(parents=True)
    for name in ("tensors.tsv", "metadata.tsv"):
        (shared / "tb" / name).symlink_to(victim / name)
    monkeypatch.setenv("EMBEDVIZ_DATA_ROOTS", str(shared))
    at = data_page()
    at.radio[0].set_value(SERVER).run()
    at.radio[1].set_value("Features or a map made elsewhere").run()
    at.text_input[0].input(str(shared / "tb"))
    at.button[0].click().run()
    assert not at.exception and len(at.error) == 1 and "outside the folders" in at.error[0].value
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.success, *at.error, *at.caption])
    assert "secret" not in shown and any("1,797 images" in s.value for s in at.success)  # the demo stays


def test_weights_and_class_indexes_count_against_their_uploaders_workspace(data_page, monkeypatch, embedviz_home):
    monkeypatch.setenv("EMBEDVIZ_WORKSPACE_MB", str(30_000 / 2**20))  # 30,000 bytes
    at = data_page()
    next(s for s in at.selectbox if s.label == "Architecture").set_value("resnet18").run()
    weights = next(u for u in at.file_uploader if u.label.startswith("State dict"))
    weights.set_value(("big.safetensors", b"\0" * 40_000, "application/octet-stream")).run()
    assert len(at.error) == 1 and "EMBEDVIZ_WORKSPACE_MB raises it" in at.error[0].value
    assert not (embedviz_home / "weights").exists() or not any((embedviz_home / "weights").rglob("*.safetensors"))

    next(r for r in at.radio if r.label == "Weights").set_value("Random (untrained baseline)").run()
    index = next(u for u in at.file_uploader if u.label.startswith("Class index"))
    index.set_value(("names.txt", b"cat\n" * 300_000, "text/plain")).run()  # 1.2 MB of names
    assert any("a class index (one name per class) is at most 1 MiB" in e.value for e in at.error)
