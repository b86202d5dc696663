"""Hosting, the smaller faults: formula headers and categorical columns in CSV exports, a full disk
during extraction, unfinished writes left behind, and the dependency floors."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embedviz import cli
from embedviz.data.featureset import FeatureSet, save_feature_set
from embedviz.errors import EmbedVizError
from embedviz.extract.store import FeatureStore
from tests.conftest import make_image_folder

ROOT = Path(__file__).resolve().parents[2]


# --- CSV export ---------------------------------------------------------------------------------

def _spreadsheet_cells(text: str) -> list[str]:
    import csv

    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_a_formula_in_a_column_header_is_exported_as_text():
    from embedviz.explore.export import to_csv

    table = pd.DataFrame({"sample_id": ["a", "b"], '=HYPERLINK("http://evil","x")': [1, 2], "@SUM(A1)": ["p", "q"],
                          "-note": [0.5, 0.25]})
    header = _spreadsheet_cells(to_csv(table).splitlines()[0])
    assert header == ["sample_id", "'=HYPERLINK(\"http://evil\",\"x\")", "'@SUM(A1)", "'-note"]
    assert list(table.columns)[1].startswith("=")  # the caller's table is left as it was


def test_a_categorical_column_with_a_formula_exports_escaped(tmp_path):
    from embedviz.explore.export import coordinates_table, to_csv, write_map, write_projector
    from embedviz.maps.reducers import Embedding

    samples = pd.DataFrame({"sample_id": ["s0", "s1", "s2"],
                            "label": pd.Categorical(["=cmd|' /C calc'!A0", "dog", None]),
                            "+group": pd.Categorical(["+1", "+1", "b"])})
    cells = _spreadsheet_cells(to_csv(samples))
    assert "'=cmd|' /C calc'!A0" in cells and "'+group" in cells and cells.count("'+1") == 2
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert isinstance(samples["label"].dtype, pd.CategoricalDtype)  # escaped on a copy
    assert samples["label"][0].startswith("=")

    embedding = Embedding(np.zeros((3, 2), np.float32), "pca", {}, 2, 0, 0.0)
    out = write_map(embedding, samples, tmp_path / "map.csv")  # raised TypeError before
    assert "'=cmd" in out.read_text() and "'+group" in out.read_text()
    assert to_csv(coordinates_table(embedding, samples)).count("'+1") == 2
    write_projector(np.ones((3, 2)), samples, tmp_path / "tb")
    rows = (tmp_path / "tb" / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "sample_id\tlabel\t'+group" and rows[1].startswith("s0\t'=cmd")


# --- a full disk during extraction ----------------------------------------------------------------

def _leftovers(root: Path) -> list[str]:
    """Half-written files or folders anywhere under ``root``."""
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.name.endswith(".partial") or re.match(r"^\..+\.[0-9a-f]{8}\.(tmp|parquet)$", p.name)]


def _full_after(monkeypatch, writes: int) -> list[int]:
    """``pyarrow.parquet.write_table`` writes ``writes`` shards, then half of one before the disk is full.
    (``monkeypatch`` is a context of its own: undoing it must not undo the private ``EMBEDVIZ_HOME``.)"""
    import pyarrow.parquet as pq

    real, calls = pq.write_table, []

    def write_table(table, where, *args, **kwargs):
        calls.append(1)
        if len(calls) > writes:
            with open(where, "wb") as fh:
                fh.write(b"PAR1 half a shard")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table)
    return calls


def _extract(tmp_path: Path, capsys) -> tuple[int, str]:
    """``extract`` of 41 images (one unreadable) in shards of 4; what it printed last on stderr."""
    data = tmp_path / "images"
    if not data.exists():
        make_image_folder(data, per_class=20)
    code = cli.main(["extract", "--data", str(data), "--model", "pixels", "--out", str(tmp_path / "out"),
                     "--batch-size", "4", "--workers", "0"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.splitlines()[-1] if err else ""


def test_a_full_disk_while_writing_shards_is_one_line_keeps_finished_shards_and_resumes(
        tmp_path, capsys, embedviz_home):
    with pytest.MonkeyPatch.context() as full:
        _full_after(full, writes=3)
        code, err = _extract(tmp_path, capsys)
    assert code == 2
    assert err.startswith("embedviz extract: The server's disk is full:") and "Free space or ask the operator" in err
    assert "3 finished shards are kept" in err and str(embedviz_home) not in err  # no server path in the line
    store = embedviz_home / "features"
    [work] = list((store / ".work").iterdir())
    assert sorted(p.name for p in work.iterdir()) == ["plan.json", *(f"shard-{s:010d}.parquet" for s in (0, 4, 8))]
    assert _leftovers(embedviz_home) == [] and not (tmp_path / "out").exists()

    code, err = _extract(tmp_path, capsys)  # space freed
    assert code == 0, err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["resumed_images"] == 3 * 4 and manifest["num_features"] == 40
    assert not work.exists() and _leftovers(embedviz_home) == []


def test_a_full_disk_while_storing_the_features_leaves_nothing_half_written(tmp_path, capsys, embedviz_home):
    real = pd.DataFrame.to_csv

    def to_csv(self, path=None, *args, **kwargs):  # skipped.csv, the third of the four files
        if isinstance(path, Path) and path.name.startswith(".skipped.csv."):
            path.write_text("path,rea")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as full:
        full.setattr(pd.DataFrame, "to_csv", to_csv)
        code, err = _extract(tmp_path, capsys)
    assert code == 2
    assert err.startswith("embedviz extract: The server's disk is full: the extracted features could not be written")
    store = embedviz_home / "features"
    assert [p.name for p in store.iterdir()] == [".work"]  # nothing stored, no .partial folder
    assert _leftovers(embedviz_home) == []

    code, err = _extract(tmp_path, capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["resumed_images"] == 41  # every shard was kept: nothing ran through the model again


def test_saving_a_feature_set_is_all_or_nothing(tmp_path, monkeypatch):
    def feature_set(value: float) -> FeatureSet:
        return FeatureSet(np.full((2, 3), value, np.float32), pd.DataFrame({"sample_id": ["a", "b"]}),
                          pd.DataFrame(columns=["path", "reason"]), {"value": value})

    folder = save_feature_set(feature_set(1.0), tmp_path / "out")
    (folder / "notes.txt").write_text("mine")
    real = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        if isinstance(path, Path) and path.name.startswith(".skipped.csv."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(EmbedVizError, match="^The server's disk is full: the feature set could not be written"):
        save_feature_set(feature_set(2.0), folder)
    # the old set is whole: features.npy was written before the failure, but never moved into place
    assert np.load(folder / "features.npy")[0, 0] == 1.0
    assert json.loads((folder / "manifest.json").read_text()) == {"value": 1.0}
    assert sorted(p.name for p in folder.iterdir()) == ["features.npy", "manifest.json", "notes.txt", "samples.parquet",
                                                        "skipped.csv"]
    with pytest.raises(EmbedVizError):
        save_feature_set(feature_set(2.0), tmp_path / "new")
    assert not (tmp_path / "new").exists()  # a folder this call made goes with the failure


# --- unfinished writes --------------------------------------------------------------------------

def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    for p in [*path.rglob("*"), path]:
        os.utime(p, (when, when))


def _partial(store: Path, key: str, hours: float) -> Path:
    folder = store / f".{key}.{os.urandom(4).hex()}.partial"
    folder.mkdir(parents=True)
    (folder / ".features.npy.0123abcd.tmp").write_bytes(b"\0" * 4096)
    _age(folder, hours * 3600)
    return folder


def test_housekeeping_removes_abandoned_partial_folders_but_not_a_running_jobs(embedviz_home, capsys):
    from embedviz.serve.housekeeping import housekeep_store

    store = FeatureStore(embedviz_home / "features").root
    stale = _partial(store, "a" * 64, hours=3)
    running = _partial(store, "b" * 64, hours=3)  # a running job's: however old, it stays
    fresh = _partial(store, "c" * 64, hours=0)  # being written right now
    unpacked = embedviz_home / "uploads" / "photos.zip-0123456789abcdef.partial"
    (unpacked / "cats").mkdir(parents=True)
    (unpacked / "cats" / "1.png").write_bytes(b"png")
    _age(unpacked, 2 * 3600)
    work = store / ".work" / "f"
    work.mkdir(parents=True)
    (work / "shard-0000000000.parquet").write_bytes(b"finished")
    (work / ".128.89abcdef.parquet").write_bytes(b"half")
    _age(work, 2 * 3600)

    report = housekeep_store({"b" * 64})
    assert sorted(report.partials) == sorted([f"features/{stale.name}", f"uploads/{unpacked.name}",
                                              "features/.work/f/.128.89abcdef.parquet"])
    assert not stale.exists() and not unpacked.exists() and running.exists() and fresh.exists()
    assert (work / "shard-0000000000.parquet").exists()  # finished shards stay to resume from
    assert report.freed_bytes >= 4096 and "3 unfinished writes" in report.describe()

    _age(fresh, 3 * 3600)  # the job that held "b" ended; the housekeeping command sees both as abandoned
    assert cli.main(["housekeep"]) == 0
    assert "2 unfinished writes" in capsys.readouterr().out
    assert [p for p in store.iterdir() if p.name.endswith(".partial")] == []


def test_a_running_jobs_work_folder_keeps_its_temporary_shard(embedviz_home):
    from embedviz.hashing import sha256_json
    from embedviz.serve.housekeeping import housekeep_store

    key = "d" * 64
    work = embedviz_home / "features" / ".work" / sha256_json([key])[:32]  # as compute_layers names it
    work.mkdir(parents=True)
    (work / ".256.0123abcd.parquet").write_bytes(b"being written")
    _age(work, 5 * 3600)
    assert housekeep_store({key}).partials == []
    assert housekeep_store(set()).partials == [f"features/.work/{work.name}/.256.0123abcd.parquet"]


def test_a_published_runs_key_does_not_keep_its_abandoned_partial_folder(embedviz_home):
    from embedviz.serve.housekeeping import housekeep

    key = "e" * 64
    stale = _partial(embedviz_home / "features", key, hours=2)
    # the stored set of a published run is kept; a failed write of the same key is not
    report = housekeep(set(), {key}, set(), home=embedviz_home, active=set())
    assert report.partials == [f"features/{stale.name}"] and not stale.exists()


# --- dependency floors ----------------------------------------------------------------------------

def test_dependency_floors_exclude_versions_with_known_advisories():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    requirements.update((Requirement(r).name.lower(), Requirement(r))
                        for extra in project["optional-dependencies"].values() for r in extra)
    floors = {  # the first release past the newest advisory we know of (pyproject.toml names them)
        "torch": "2.13.0",  # CVE-2025-32434 (weights_only bypass, 2.6.0), CVE-2026-24747, GHSA-rrmf-rvhw-rf47
        "torchvision": "0.28.0",  # built for torch 2.13
        "streamlit": "1.54.0",  # CVE-2026-33682
        "pillow": "12.3.0",  # CVE-2023-50447, CVE-2026-25990, CVE-2026-40192, CVE-2026-55379, ...
        "pyarrow": "23.0.1",  # CVE-2023-47248 (14.0.1), CVE-2026-25087
        "scikit-learn": "1.5.0",  # CVE-2024-5206
        "authlib": "1.6.12",  # CVE-2026-27962, CVE-2026-41425, CVE-2026-44681
        "ray": "2.54.0",  # CVE-2025-62593, CVE-2026-27482
    }
    for name, fixed in floors.items():
        spec = requirements[name].specifier
        assert not spec.contains(_before(fixed), prereleases=True), name
    for name in ("torch", "torchvision", "streamlit", "numpy", "pandas", "pyarrow", "pillow", "scikit-learn"):
        installed = version(name)
        assert requirements[name].specifier.contains(installed, prereleases=True), (name, installed)


def _before(release: str):
    """The release just before ``release`` (2.6.0 -> 2.5.999)."""
    from packaging.version import Version

    major, minor, micro = Version(release).release[:3]
    if micro:
        return Version(f"{major}.{minor}.{micro - 1}")
    return Version(f"{major}.{minor - 1}.999") if minor else Version(f"{major - 1}.999")


def test_a_regex_filter_cannot_hold_the_server_and_a_back_reference_is_one_line():
    import time

    import pandas as pd

    from embedviz.errors import DataError
    from embedviz.explore.filters import TextFilter, apply_filters

    table = pd.DataFrame({"t": ["a" * 40 + "!", "Cat", "dog", None] * 60})
    started = time.monotonic()
    assert apply_filters(table, [TextFilter("t", "(a+)+b", True)]).sum() == 0  # catastrophic in Python's re
    with pytest.raises(DataError) as said:
        apply_filters(table, [TextFilter("t", r"(a+)+b\1", True)])
    assert time.monotonic() - started < 2
    assert "back-references" in str(said.value) and "\n" not in str(said.value)
    assert apply_filters(table, [TextFilter("t", "^c", True)]).sum() == 60  # case is ignored, as before
    assert apply_filters(table, [TextFilter("t", "OG", False)]).sum() == 60
