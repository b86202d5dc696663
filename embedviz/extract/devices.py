"""Where a model runs: the names a user may give (command line, dashboard) and the torch device
each one means. The names are importable without torch, so the command line starts fast."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedviz.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICES", "resolve_device"]

#: ``auto`` first (the default): CUDA, then Apple's MPS, then the CPU.
DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str = "auto") -> "torch.device":
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("No CUDA GPU is visible here; use --device auto or cpu.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("Apple's MPS is not available here; use --device auto or cpu.")
    if device not in DEVICES:
        raise ModelError(f"Unknown device {device!r}; use {', '.join(DEVICES)}.")
    return torch.device(device)
