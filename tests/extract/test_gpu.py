"""The CUDA path: chosen automatically, and giving the CPU's features and maps. Never runs in CI (no GPU).

On a GPU the engine runs under bf16 autocast, so features agree with the CPU's float32 ones in
direction (cosine) and in the top class, not bit for bit; ``python -m benchmarks gpu`` prints how close.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedviz.data.demo import demo_collection
from embedviz.data.images import ImageCollection
from embedviz.extract.features import extract_features, resolve_device
from embedviz.extract.models import load_model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_auto_picks_cuda_and_matches_cpu():
    assert resolve_device("auto").type == "cuda"
    demo = demo_collection()
    part = ImageCollection(demo.root, demo.samples.iloc[:256].reset_index(drop=True), "part")
    model = load_model("demo")
    on_gpu = extract_features(part, model, device="cuda")
    on_cpu = extract_features(part, model, device="cpu")
    assert on_gpu.manifest["device"].startswith("cuda")
    a, b = np.asarray(on_cpu.features, np.float64), np.asarray(on_gpu.features, np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.995, f"lowest cosine {cosine.min():.5f}"
    same = (on_gpu.samples["prediction"] == on_cpu.samples["prediction"]).mean()
    assert same >= 0.99, f"{same:.1%} same top class"


def test_pca_runs_on_the_gpu_and_draws_scikit_learns_map(tmp_path):
    from sklearn.decomposition import PCA

    from embedviz.maps.reducers import compute_embedding

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(5000, 64)) * np.linspace(3, 0.1, 64)).astype(np.float32)
    embedding = compute_embedding(x, "pca", cache_dir=tmp_path)
    assert embedding.backend == "torch on the GPU"
    theirs = PCA(n_components=2).fit_transform(x)
    np.testing.assert_allclose(embedding.raw, theirs, atol=1e-3 * np.abs(theirs).max())
