"""The CUDA path: chosen automatically, and giving the CPU's features. Never runs in CI (no GPU)."""

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
    np.testing.assert_allclose(on_gpu.features, on_cpu.features, rtol=1e-3, atol=1e-4)
    assert (on_gpu.samples["prediction"] == on_cpu.samples["prediction"]).all()
