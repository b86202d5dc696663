"""Runs, who may see them, the operator's allow-list, and keeping a shared store in bounds."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from embedviz.layout import mark_used
from embedviz.serve.access import allowed, browser_viewer, parse_allow_list, signed_in_viewer
from embedviz.serve.catalog import Catalog, RunNotFound, RunNotVisible, runs_table
from embedviz.serve.housekeeping import enforce_cap, housekeep, sweep_workspaces


def _run(catalog: Catalog, owner: str, kind: str = "map", **kw):
    return catalog.record(kind, owner=owner, owner_name=owner, title=f"{kind} by {owner}",
                          inputs={"features": kw.pop("features", "f1"), "map": kw.pop("map", "m1")},
                          params={"dataset": {"kind": "demo"}}, seconds=1.5, n_points=10, **kw)


def test_a_private_run_opens_for_its_owner_only_until_published(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    extraction = _run(catalog, "alice", "extraction", dedupe="f1")
    run = _run(catalog, "alice", parent=extraction.id, dedupe="m1")
    assert catalog.open(run.id, "alice").id == run.id
    with pytest.raises(RunNotVisible, match="private"):
        catalog.open(run.id, "bob")
    assert [r.id for r in catalog.runs("bob")] == []
    with pytest.raises(RunNotVisible):
        catalog.publish(run.id, "bob")  # only the owner publishes
    catalog.publish(run.id, "alice")
    assert catalog.open(run.id, "bob").published
    # publishing a map publishes the extraction it was made from, so the link opens whole
    assert {r.id for r in catalog.runs("bob")} == {run.id, extraction.id}
    assert [r.id for r in catalog.runs("bob", mine_only=True)] == []
    with pytest.raises(RunNotFound, match="deleted"):
        catalog.open("000000000000", "alice")


def test_the_same_map_is_one_run_per_owner(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    first = _run(catalog, "alice", dedupe="m1")
    again = _run(catalog, "alice", dedupe="m1")
    other = _run(catalog, "bob", dedupe="m1")
    assert again.id == first.id and other.id != first.id
    assert len(catalog.runs("alice", mine_only=True)) == 1


def test_deleting_an_extraction_deletes_the_owners_maps_made_from_it(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    extraction = _run(catalog, "alice", "extraction", dedupe="f1")
    maps = [_run(catalog, "alice", parent=extraction.id, map=f"m{i}", dedupe=f"m{i}") for i in range(2)]
    bobs = _run(catalog, "bob", parent=extraction.id, map="m9", dedupe="m9")
    with pytest.raises(RunNotVisible):
        catalog.delete(extraction.id, "bob")
    gone = catalog.delete(extraction.id, "alice")
    assert {r.id for r in gone} == {extraction.id, *(m.id for m in maps)}
    assert catalog.get(bobs.id) is not None  # someone else's map is theirs to delete
    features, maps_left = catalog.referenced()
    assert maps_left == {"m9"} and features == {"f1"}


def test_the_catalog_takes_writes_from_several_threads(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")

    def write(i: int) -> None:
        for j in range(20):
            _run(catalog, f"user{i}", dedupe=f"m{i}-{j}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        writers = [pool.submit(write, i) for i in range(6)]
    for writer in writers:
        writer.result()  # a write that failed in its thread (e.g. "database is locked") raises here
    assert len(catalog.all_runs()) == 120


def test_runs_table_says_whose_and_whether_shared(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    mine = _run(catalog, "alice", dedupe="a")
    theirs = _run(catalog, "bob", dedupe="b")
    catalog.publish(theirs.id, "bob")
    table = runs_table(catalog.runs("alice"), "alice")
    assert set(table["run"]) == {mine.id, theirs.id}
    by = dict(zip(table["run"], table["by"]))
    shared = dict(zip(table["run"], table["shared"]))
    assert by == {mine.id: "you", theirs.id: "bob"}
    assert shared == {mine.id: "private", theirs.id: "published"}


def test_a_browser_is_one_viewer_across_xsrf_masks_and_two_browsers_are_two():
    token, other = os.urandom(16), os.urandom(16)

    def cookie(tok: bytes) -> str:  # as Streamlit writes it: a fresh 4-byte mask on every response
        mask = os.urandom(4)
        return f"2|{mask.hex()}|{bytes(b ^ mask[i % 4] for i, b in enumerate(tok)).hex()}|{int(time.time())}"

    one, again = browser_viewer(cookie(token), "s1"), browser_viewer(cookie(token), "s2")
    two = browser_viewer(cookie(other), "s1")
    assert one.id == again.id and one.id != two.id
    assert not one.signed_in and token.hex() not in one.id
    # no usable cookie (XSRF off): the session alone
    assert browser_viewer(None, "s1").id != browser_viewer(None, "s2").id
    assert browser_viewer("garbage", "s1").id == browser_viewer(None, "s1").id
    # a cookie seen in a real browser, before and after a reload: one viewer
    seen = ["2|9517e4e8|8fdebc6967f27462c14506d69d81adb1|1795511315",
            "2|4b7343c1|51ba1b40b996d34b1f21a1ff43e50a98|1795511315"]
    assert browser_viewer(seen[0], "s1").id == browser_viewer(seen[1], "s2").id
    assert signed_in_viewer(" Alice@Example.org ").id == "user:alice@example.org"


def test_the_allow_list_takes_addresses_and_domains():
    entries = parse_allow_list("alice@lab.org, example.com ,@Uni.edu")
    assert entries == ("alice@lab.org", "@example.com", "@uni.edu")
    assert allowed("alice@lab.org", entries) and allowed("Bob@Example.com", entries) and allowed("c@uni.edu", entries)
    assert not allowed("bob@lab.org", entries) and not allowed("eve@example.com.evil.io", entries)
    assert not allowed(None, entries) and not allowed("not-an-address", entries)
    assert allowed("anyone@anywhere.io", ())  # no list: anyone the sign-in lets in


def test_idle_workspaces_go_unless_a_shared_run_reads_them(tmp_path):
    sessions = tmp_path / "sessions"
    for name in ("old", "kept", "fresh"):
        (sessions / name).mkdir(parents=True)
        (sessions / name / "upload.zip").write_bytes(b"x" * 100)
        mark_used(sessions / name)
    past = time.time() - 3 * 3600
    for name in ("old", "kept"):
        os.utime(sessions / name / ".last_used", (past, past))
    removed = sweep_workspaces(tmp_path, 2 * 3600, keep={"kept"})
    assert removed == ["old"]
    assert sorted(p.name for p in sessions.iterdir()) == ["fresh", "kept"]


def _cached(tmp_path, name: str, size: int, age: float) -> None:
    folder = tmp_path / "features" / name
    folder.mkdir(parents=True)
    (folder / "features.npy").write_bytes(b"x" * size)
    mark_used(folder)
    os.utime(folder / ".last_used", (time.time() - age, time.time() - age))


def test_over_the_cap_the_least_recently_used_unprotected_caches_go_first(tmp_path):
    _cached(tmp_path, "oldest", 4000, 300)
    _cached(tmp_path, "pinned", 4000, 400)
    _cached(tmp_path, "older", 4000, 200)
    _cached(tmp_path, "newest", 4000, 10)
    (tmp_path / "embeddings").mkdir()
    np.savez(tmp_path / "embeddings" / "m1.npz", coords=np.zeros((10, 2)))
    os.utime(tmp_path / "embeddings" / "m1.npz", (time.time() - 100, time.time() - 100))
    (tmp_path / "catalog.sqlite").write_bytes(b"c" * 100)
    evicted, freed, total = enforce_cap(tmp_path, 9000, keep_features={"pinned"}, keep_maps={"m1"})
    assert evicted == ["features/oldest", "features/older"]
    assert freed >= 8000 and total <= 9000
    assert (tmp_path / "features" / "pinned").exists() and (tmp_path / "features" / "newest").exists()
    assert (tmp_path / "embeddings" / "m1.npz").exists() and (tmp_path / "catalog.sqlite").exists()


def test_housekeeping_reads_its_limits_from_the_environment(tmp_path, monkeypatch):
    _cached(tmp_path, "a", 2 * 2**20, 100)
    _cached(tmp_path, "b", 2 * 2**20, 10)
    monkeypatch.setenv("EMBEDVIZ_STORE_LIMIT_GB", str(3 / 1024))  # 3 MiB
    report = housekeep(set(), set(), set(), home=tmp_path)
    assert report.evicted == ["features/a"] and report.total_bytes <= 3 * 2**20
    assert "1 cached items removed" in report.describe()
    monkeypatch.delenv("EMBEDVIZ_STORE_LIMIT_GB")
    assert housekeep(set(), set(), set(), home=tmp_path).evicted == []


def test_housekeeping_keeps_what_published_runs_need(tmp_path, monkeypatch):
    from embedviz.cli import main

    monkeypatch.setenv("EMBEDVIZ_HOME", str(tmp_path))
    monkeypatch.setenv("EMBEDVIZ_STORE_LIMIT_GB", "0")
    monkeypatch.setenv("EMBEDVIZ_SESSION_IDLE_HOURS", "0")
    for name in ("shared", "private"):
        (tmp_path / "sessions" / name).mkdir(parents=True)
        (tmp_path / "sessions" / name / "images.zip").write_bytes(b"x" * 1000)
    _cached(tmp_path, "f-shared", 1000, 50)
    _cached(tmp_path, "f-private", 1000, 50)
    catalog = Catalog(tmp_path / "catalog.sqlite")
    for name in ("shared", "private"):
        run = catalog.record("extraction", owner="alice", owner_name="alice", title=name,
                             inputs={"features": f"f-{name}"}, dedupe=name,
                             params={"dataset": {"kind": "path", "via": "upload",
                                                 "path": str(tmp_path / "sessions" / name / "images.zip")}})
        if name == "shared":
            catalog.publish(run.id, "alice")
    time.sleep(0.01)
    assert main(["housekeep"]) == 0
    assert (tmp_path / "sessions" / "shared").exists() and not (tmp_path / "sessions" / "private").exists()
    assert (tmp_path / "features" / "f-shared").exists() and not (tmp_path / "features" / "f-private").exists()


def _map_params(**reducer_params) -> dict:
    return {"dataset": {"kind": "path", "path": "/srv/data/pets"},
            "model": {"architecture": "resnet18", "weights": None},
            "layer": "flatten", "classes": None, "map_filters": [], "warm": True,
            "reducer": {"method": "tsne", "params": {"perplexity": 30.0, "metric": "euclidean", **reducer_params},
                        "n_components": 2, "random_state": 0}, "sample": None}


def test_runs_with_the_same_title_say_what_sets_them_apart(tmp_path):
    """Issue 17, item 10: two maps of the same data differed on the Runs page only by their times."""
    from embedviz.serve.catalog import describe_run

    catalog = Catalog(tmp_path / "catalog.sqlite")
    title = "t-SNE 2-D: pets through resnet18, layer flatten"
    default = catalog.record("map", owner="a", owner_name="a", title=title, inputs={}, params=_map_params(), dedupe="1")
    tighter = catalog.record("map", owner="a", owner_name="a", title=title, inputs={}, dedupe="2",
                             params={**_map_params(perplexity=5.0, metric="cosine"),
                                     "sample": {"size": 500, "stratify_by": "label"}})
    assert describe_run(default) == ("t-SNE (default settings) · 2-D, seed 0 · layer flatten of resnet18 · pets")
    assert describe_run(tighter) == ("t-SNE, metric cosine, perplexity 5 · 2-D, seed 0 · fitted on 500 points "
                                     "stratified by label · layer flatten of resnet18 · pets")
    extraction = catalog.record("extraction", owner="a", owner_name="a", title="x", inputs={}, dedupe="3",
                                params={"dataset": {"kind": "demo"}, "model": {"architecture": "demo", "weights": None},
                                        "layer": "classifier.1"})
    assert describe_run(extraction) == "layer classifier.1 of demo CNN (final) · the demo digits"


def test_a_run_opened_from_the_runs_page_is_coloured_by_label_and_says_how_it_was_made(monkeypatch):
    """Issue 17, item 10: a colour the last view left ("(none)" after data without labels, a clusters
    column) stayed when a run was opened, and Explore showed it uncoloured."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    at = AppTest.from_file(str(root / "app.py"), default_timeout=240)
    at.session_state["ev_method"] = "pca"
    at.run()
    run = Catalog().get(at.query_params["run"])
    assert run.params["color"] == "label"
    same = Catalog().record("map", owner=run.owner, owner_name=run.owner_name, title=run.title, inputs=run.inputs,
                            params={**run.params, "reducer": {**run.params["reducer"], "random_state": 7}}, dedupe="x")
    at.session_state["ev_color"] = "(none)"  # what Explore leaves after data without labels
    at.switch_page("pages/6_Runs.py").run()
    lines = [m.value for m in at.markdown if m.value.startswith(f"**{run.title}**")]
    assert len(lines) == 2 and any("seed 7" in line for line in lines) and any("seed 0" in line for line in lines)
    [opening] = [b for b in at.button if b.key == f"run_{run.id}_open"]
    opening.click().run()
    at.switch_page("pages/4_Explore.py").run()
    assert not at.exception and not at.error
    assert at.query_params["run"] == run.id and same.id != run.id
    assert at.selectbox(key="ev_color").value == "label"
