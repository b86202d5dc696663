"""The Ray engine on a local Ray cluster started here (2 CPUs): the same features as the local
engine, bit for bit; a killed model worker and a stopped run both end with the same features; the
command line and the dashboard use it, and the dashboard opens what it made."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedviz.data.demo import demo_collection
from embedviz.data.images import ImageCollection, load_collection
from embedviz.data.precomputed import load_feature_set
from embedviz.extract.features import RayOptions, compute_features, extract_features, extract_layers
from embedviz.extract.models import load_model
from embedviz.extract.store import FeatureStore
from tests.conftest import make_image_folder

ROOT = Path(__file__).resolve().parents[2]


def _demo(n: int) -> ImageCollection:
    full = demo_collection()
    return ImageCollection(full.root, full.samples.head(n).reset_index(drop=True), f"demo-{n}")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for this module; its address for other processes."""
    import ray

    from embedviz.extract.ray_engine import connect

    connect(None, num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _fresh_app():
    """An AppTest with nothing remembered from earlier tests in this process (Streamlit's caches
    outlive a test: the demo's features stored by another test's home would be found first)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)


def _assert_same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a.features), np.asarray(b.features))  # bit for bit
    assert a.samples.equals(b.samples)
    assert a.skipped.equals(b.skipped)


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, capsys):
    from embedviz.cli import main
    from embedviz.extract import ray_engine

    monkeypatch.setattr(ray_engine, "ray_available", lambda: False)
    assert main(["extract", "--data", "demo", "--model", "demo", "--engine", "ray", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install -r requirements-ray.txt" in err, err


def test_placing_on_the_cluster_needs_a_sample_fit_and_says_so(tmp_path, capsys):
    from embedviz.cli import main

    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    assert main(["reduce", "--features", str(tmp_path / "f.npy"), "--method", "pca", "--engine", "ray",
                 "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "give --sample N" in err, err
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.slow
def test_the_ray_engine_gives_the_local_engines_features_bit_for_bit(cluster, tmp_path):
    # a real architecture, two layers in one pass, an unreadable file, batches that end mid-class
    collection = load_collection(make_image_folder(tmp_path / "images", per_class=9))
    model = load_model("shufflenet_v2_x0_5", "random")
    layers = ["stage3.3.view_1", "mean"]
    local = extract_layers(collection, model, layers, batch_size=4, num_workers=0, device="cpu")
    remote = extract_layers(collection, model, layers, batch_size=4, ray=RayOptions())
    for layer in layers:
        _assert_same(local[layer], remote[layer])
        assert remote[layer].manifest["device"] == "ray (cpu)"
    assert remote["mean"].skipped["path"].str.endswith("broken.png").tolist() == [True]
    # and a classifier's predictions, on the demo
    demo = _demo(200)
    _assert_same(extract_features(demo, load_model("demo"), batch_size=32, num_workers=0),
                 extract_features(demo, load_model("demo"), batch_size=32, ray=RayOptions()))


def _model_workers() -> list[int]:
    """Process ids of Ray's model actors (Ray names the process after the actor's class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"_Embedder" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.mark.slow
def test_a_killed_model_worker_is_restarted_and_the_run_ends_with_the_same_features(cluster):
    collection, model = _demo(480), load_model("demo")
    local = extract_features(collection, model, batch_size=16, num_workers=0)
    killed: list[int] = []

    def kill_once(done: int, total: int, message: str) -> None:
        if done >= 96 and not killed:
            killed.extend(_model_workers())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    remote = extract_features(collection, model, batch_size=16, ray=RayOptions(), progress=kill_once)
    assert killed, "no model worker was found to kill"
    _assert_same(local, remote)


class _Killed(BaseException):
    """Stands for the driver dying: nothing in embedviz catches it."""


@pytest.mark.slow
def test_a_stopped_ray_run_resumes_from_its_parquet_shards(cluster, tmp_path):
    collection, model = _demo(400), load_model("demo")
    whole = extract_features(collection, model, batch_size=16, num_workers=0)
    store = FeatureStore(tmp_path / "store")
    shards = tmp_path / "shards"

    def die(done: int, total: int, message: str) -> None:
        if done >= 200:
            raise _Killed

    with pytest.raises(_Killed):
        compute_features(collection, model, store=store, batch_size=16, ray=RayOptions(), progress=die,
                         shards=shards)
    [work] = list(shards.iterdir())
    assert len(list(work.glob("shard-*.parquet"))) >= 4

    resumed = compute_features(collection, model, store=store, batch_size=16, ray=RayOptions(), shards=shards)
    assert resumed.manifest["resumed_images"] >= 128
    _assert_same(whole, resumed)
    assert sorted(work.glob("shard-*.parquet"))  # shards given a place of their own stay there


@pytest.mark.slow
def test_the_command_line_extracts_on_the_cluster_and_the_dashboard_opens_the_result(cluster, tmp_path,
                                                                                     monkeypatch):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "embedviz", "extract", "--data", "demo", "--model", "demo", "--engine", "ray",
         "--address", cluster, "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1,797 images -> 64-dim features" in done.stdout
    written = load_feature_set(out)
    assert written.manifest["device"] == "ray (cpu)" and len(written) == 1797

    # The dashboard, on the same store, finds the demo's features already made on the cluster.
    monkeypatch.chdir(ROOT)
    at = _fresh_app().run()
    at.switch_page("pages/2_Extract.py").run()
    assert not at.exception and not at.error
    assert any("Cache hit" in s.value and "ray (cpu)" in s.value for s in at.success), [s.value for s in at.success]
    at.switch_page("pages/4_Explore.py").run()
    assert not at.exception and not at.error


@pytest.mark.slow
def test_the_dashboard_sends_an_extraction_to_the_configured_cluster(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_RAY_ADDRESS", cluster)
    monkeypatch.chdir(ROOT)
    at = _fresh_app()
    at.switch_page("pages/2_Extract.py").run()
    at.radio(key="ev_engine").set_value("The Ray cluster").run()
    next(b for b in at.button if b.label == "Extract features").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Extracted 1,797 feature vectors" in s.value and "ray (cpu)" in s.value for s in at.success), \
        [s.value for s in at.success]


@pytest.mark.slow
def test_points_left_out_of_a_sample_fit_are_placed_on_the_cluster_exactly_as_here(cluster):
    from embedviz.maps.ray_placer import place_on_cluster
    from embedviz.maps.reducers import Sample, reduce

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 12_000)
    x = (rng.normal(size=(4, 32))[labels] * 3 + rng.normal(size=(12_000, 32))).astype(np.float32)
    seen: list[int] = []
    options = dict(sample=Sample(3_000, "label"), strata=labels, random_state=0)
    here = reduce(x, "tsne", {"n_iter": 200}, **options)
    there = reduce(x, "tsne", {"n_iter": 200}, placer=place_on_cluster(cluster), **options,
                   progress=lambda done, total, message: seen.append(done) if "placing" in message else None)
    np.testing.assert_array_equal(here.coords, there.coords)
    assert seen[-1] == 12_000 and len(set(seen)) >= 3  # progress as the cluster's batches come back
