"""Train the demo CNN on the train split of scikit-learn's digits; seeded and CPU-only.

Writes embedviz/demo/digits_cnn_epoch1.safetensors (after the first epoch) and
embedviz/demo/digits_cnn.safetensors (final). Run: python scripts/train_demo.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedviz.data.demo import EARLY_WEIGHTS, FINAL_WEIGHTS, demo_split, digits_arrays
from embedviz.extract.models import DIGITS_PREPROCESSING, DigitsCNN

EPOCHS = 12
BATCH = 32


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Exactly what extraction feeds the model: /255, then the demo's mean and std."""
    pre = DIGITS_PREPROCESSING
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    return (x - pre.mean[0]) / pre.std[0]


def main() -> None:
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    images, labels = digits_arrays()
    split = demo_split(labels)
    train, test = split == "train", split == "test"
    x_train, y_train = to_tensor(images[train]), torch.from_numpy(labels[train])
    x_test, y_test = to_tensor(images[test]), torch.from_numpy(labels[test])

    model = DigitsCNN(10)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            optimiser.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.inference_mode():
            accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch:2d}  loss {loss.item():.3f}  test accuracy {accuracy:.3f}")
        if epoch == 1:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(EARLY_WEIGHTS))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(FINAL_WEIGHTS))
    wrong = int((1 - accuracy) * len(x_test) + 0.5)
    print(f"trained in {time.perf_counter() - start:.1f} s; {wrong} of {len(x_test)} test images wrong")


if __name__ == "__main__":
    main()
