"""The extraction engine: resume after a kill, out-of-memory fallback, several layers and pooling
in one pass, cancel, and the cache key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedviz.data.demo import demo_collection
from embedviz.data.images import ImageCollection
from embedviz.errors import Cancelled
from embedviz.extract import engine
from embedviz.extract.features import compute_features, compute_layers, extract_features, extract_layers
from embedviz.extract.models import load_model
from embedviz.extract.preprocessing import make_preprocessing
from embedviz.extract.store import FeatureStore


def _demo(n: int) -> ImageCollection:
    full = demo_collection()
    return ImageCollection(full.root, full.samples.head(n).reset_index(drop=True), f"demo-{n}")


class _Killed(BaseException):
    """Stands for the process dying: nothing in embedviz catches it."""


def test_a_killed_run_resumes_from_its_shards_and_gives_the_same_bits(tmp_path):
    collection, model = _demo(300), load_model("demo")
    whole = extract_features(collection, model, batch_size=16, num_workers=0)
    store = FeatureStore(tmp_path / "store")

    def die_half_way(done, total, message):
        if done >= 150:
            raise _Killed

    with pytest.raises(_Killed):
        compute_features(collection, model, store=store, batch_size=16, num_workers=0, progress=die_half_way)
    [work] = list((store.root / ".work").iterdir())
    shards = sorted(p.name for p in work.iterdir())
    assert shards[0] == "plan.json" and all(n.startswith("shard-") and n.endswith(".parquet") for n in shards[1:])

    seen = []
    resumed = compute_features(collection, model, store=store, batch_size=16, num_workers=0,
                               progress=lambda d, t, m: seen.append(d))
    assert resumed.manifest["resumed_images"] >= 128 and seen[0] == resumed.manifest["resumed_images"]
    np.testing.assert_array_equal(np.asarray(resumed.features), whole.features)  # bit for bit
    assert resumed.samples["prediction"].tolist() == whole.samples["prediction"].tolist()
    assert not work.exists()  # finished work leaves no shards behind


def test_a_cancel_keeps_finished_shards_for_the_next_run(tmp_path):
    store = FeatureStore(tmp_path / "store")
    collection, model = _demo(200), load_model("demo")
    with pytest.raises(Cancelled):
        compute_features(collection, model, store=store, batch_size=16, num_workers=0,
                         progress=lambda done, total, msg: done >= 100)
    assert [p for p in store.root.iterdir() if not p.name.startswith(".")] == []  # nothing stored as done
    again = compute_features(collection, model, store=store, batch_size=16, num_workers=0)
    assert again.manifest["resumed_images"] > 0 and len(again) == 200


def test_out_of_memory_halves_the_batch_then_moves_to_the_cpu(monkeypatch):
    collection, model = _demo(40), load_model("demo")
    reference = extract_features(collection, model, batch_size=8, num_workers=0)
    real_call = engine._call

    def small_memory(net, x, device, dtype):
        if len(x) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(net, x, torch.device("cpu"), None)

    monkeypatch.setattr(engine, "_call", small_memory)
    halved = extract_features(collection, model, batch_size=8, num_workers=0)
    assert "batches of 2 from now on" in " ".join(halved.manifest["engine_notes"])
    np.testing.assert_allclose(halved.features, reference.features, rtol=1e-5, atol=1e-6)

    # A GPU that cannot take even one image: the work goes on on the CPU, and says so.
    # (the "GPU" net is laid out as on the CPU, channels-last, so both runs compute alike)
    real_move = engine._move
    monkeypatch.setattr(engine, "_move", lambda net, device: (real_move(net, torch.device("cpu")), device)[1])
    monkeypatch.setattr(engine, "_autocast_dtype", lambda device: None)

    def no_gpu_memory(net, x, device, dtype):
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_call(net, x, device, None)

    monkeypatch.setattr(engine, "_call", no_gpu_memory)
    result = engine.run_engine(collection, model, ["classifier.1"], device=torch.device("cuda"), batch_size=4,
                               num_workers=0)
    assert result.device == "cpu" and "continued on the CPU" in result.notes[-1]
    np.testing.assert_allclose(result.features["classifier.1"], reference.features, rtol=1e-5, atol=1e-6)


def test_several_layers_in_one_pass_and_pooling_choices(tmp_path):
    collection, model = _demo(50), load_model("demo")
    calls = []
    sets = extract_layers(collection, model, ["features.4", "classifier.1", "features.1"], num_workers=0,
                          progress=lambda d, t, m: calls.append(d))
    assert calls[-1] == 50 and len([c for c in calls if c == 50]) == 1  # one pass over the images
    assert {k: v.features.shape[1] for k, v in sets.items()} == {"features.4": 32, "classifier.1": 64, "features.1": 16}
    np.testing.assert_array_equal(sets["classifier.1"].features,
                                  extract_features(collection, model, "classifier.1", num_workers=0).features)
    avg = sets["features.4"].features
    peak = extract_features(collection, model, "features.4", pooling="max", num_workers=0).features
    flat = extract_features(collection, model, "features.4", pooling="flatten", num_workers=0).features
    assert (peak >= avg - 1e-6).all() and flat.shape == (50, 32 * 4 * 4)
    assert np.allclose(flat.reshape(50, 32, 16).mean(axis=2), avg, atol=1e-5)

    store = FeatureStore(tmp_path / "store")
    first = compute_layers(collection, model, ["features.4", "classifier.1"], store=store, num_workers=0)
    again = compute_layers(collection, model, ["classifier.1", "features.4"], store=store, num_workers=0)
    assert all(fs.from_cache for fs in again.values()) and not any(fs.from_cache for fs in first.values())


def test_predictions_carry_entropy_margin_and_the_full_softmax():
    table = extract_features(_demo(40), load_model("demo"), num_workers=0).samples
    probs = table[[f"p_{i}" for i in range(10)]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(table["confidence"], probs.max(axis=1))
    assert ((table["margin"] >= 0) & (table["margin"] <= table["confidence"])).all()
    assert ((table["entropy"] >= 0) & (table["entropy"] <= np.log(10) + 1e-9)).all()


def test_every_input_of_the_key_misses_the_cache(tmp_path):
    store = FeatureStore(tmp_path / "store")
    collection, model = _demo(30), load_model("demo")
    base = compute_features(collection, model, store=store, num_workers=0)
    from embedviz.data.demo import EARLY_WEIGHTS

    variants = {
        "another layer": compute_features(collection, model, "features.4", store=store, num_workers=0),
        "other weights": compute_features(collection, load_model("demo", EARLY_WEIGHTS), store=store, num_workers=0),
        "other preprocessing": compute_features(collection, model.with_preprocessing(
            make_preprocessing(8, 1, (0.5,), (0.5,), "squash")), store=store, num_workers=0),
        "other pooling": compute_features(collection, model, "features.4", pooling="max", store=store, num_workers=0),
        "other images": compute_features(_demo(31), model, store=store, num_workers=0),
    }
    for what, fs in variants.items():
        assert not fs.from_cache and fs.key != base.key, what
    assert variants["other pooling"].key != variants["another layer"].key
    assert compute_features(collection, model, store=store).from_cache  # and the same inputs hit


def test_worker_processes_give_the_same_features():
    collection, model = _demo(200), load_model("demo")
    inline = extract_features(collection, model, batch_size=32, num_workers=0)
    workers = extract_features(collection, model, batch_size=32, num_workers=2)
    np.testing.assert_array_equal(workers.features, inline.features)


def test_workers_started_from_a_threaded_process_agree():
    from concurrent.futures import ThreadPoolExecutor

    collection, model = _demo(200), load_model("demo")
    inline = extract_features(collection, model, batch_size=32, num_workers=0)
    with ThreadPoolExecutor(1) as pool:  # as in the app: the job thread, beside the server's threads
        threaded = pool.submit(extract_features, collection, model, batch_size=32, num_workers=2).result(timeout=120)
    np.testing.assert_array_equal(threaded.features, inline.features)


def test_a_short_job_on_many_cores_reports_and_runs_in_chunks_that_keep_every_worker_busy(monkeypatch):
    collection, model = _demo(150), load_model("demo")
    whole = extract_features(collection, model, batch_size=16, num_workers=0)
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 16)  # 8 decode workers for 3 batches of 64: too few
    seen = []
    chunked = extract_features(collection, model, batch_size=64, num_workers=0,
                               progress=lambda done, total, message: seen.append(done))
    assert [d for d in seen if d][:3] == [16, 32, 48]  # the bar moves after 16 images, not after 64
    np.testing.assert_array_equal(chunked.features, whole.features)


def test_decode_chunks_divide_the_batch_and_only_shrink_for_short_jobs(monkeypatch):
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 16)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert engine.auto_workers(2048, 256, cuda) == 15  # the GPU needs no core of its own
    assert engine.auto_workers(2048, 32, cpu) == 8 and engine.auto_workers(40, 32, cpu) == 0
    assert engine.decode_chunk(2048, 256, 15) == 64  # 32 chunks: two for each worker
    assert engine.decode_chunk(1_000_000, 256, 15) == 256
    assert engine.decode_chunk(100, 24, 15) == 24  # 12 would be below 16
    assert engine.decode_chunk(10, 256, 0) == 256  # no workers to keep busy


def test_shards_of_another_batch_size_are_not_reused(tmp_path):
    collection, model = _demo(120), load_model("demo")
    store = FeatureStore(tmp_path / "store")
    with pytest.raises(Cancelled):
        compute_features(collection, model, store=store, batch_size=16, num_workers=0,
                         progress=lambda done, total, msg: done >= 64)
    again = compute_features(collection, model, store=store, batch_size=24, num_workers=0)
    assert again.manifest["resumed_images"] == 0  # other shard boundaries: started afresh, not misread
    np.testing.assert_array_equal(np.asarray(again.features),
                                  extract_features(collection, model, batch_size=24, num_workers=0).features)


def test_an_extraction_leaves_the_shared_model_untouched():
    """The dashboard shares one loaded model between sessions (``st.cache_resource``): moving the
    extractor to a device or to channels-last must not move or convert the model it was cut from."""
    model = load_model("demo")
    before = {name: (p.device, p.dtype, p.stride(), p.detach().clone()) for name, p in model.module.named_parameters()}
    assert "cpu" in engine._CHANNELS_LAST  # so the conversion happens on this machine too
    extract_features(_demo(20), model, "features.4", device="cpu", num_workers=0)
    after = dict(model.module.named_parameters())
    assert after.keys() == before.keys()
    for name, (device, dtype, stride, values) in before.items():
        p = after[name]
        assert (p.device, p.dtype, p.stride()) == (device, dtype, stride), name
        assert p.is_contiguous(), name
        torch.testing.assert_close(p.detach(), values, rtol=0, atol=0)
    assert not model.module.training
