"""One vector per image from whatever a layer puts out: spatial maps, token sequences, several levels."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["POOLINGS", "pool"]

#: ``avg``/``max`` over the spatial (or token) positions; ``flatten`` keeps them, averaged down to a
#: coarser grid when the vector would be longer than ``flatten_limit``.
POOLINGS = ("avg", "max", "flatten")


def pool(tensor, how: str = "avg", flatten_limit: int = 8192, prefix_tokens: int = 0) -> "torch.Tensor":
    """One vector per image. Spatial maps (N, C, H, W) and token maps (N, L, D) are averaged or
    maxed over positions, or flattened (at most ``flatten_limit`` values); several outputs at once (a
    feature pyramid's levels) are each pooled, then concatenated.

    A token map's first ``prefix_tokens`` (a ViT's CLS and register tokens) are left out, so ``avg``
    of a ViT's final norm is the mean of its patch tokens (the CLS token is a layer of its own); only
    where the map holds them: a square grid of patches after them, not before the tokens are added
    (a patch embedding's output) and not a (N, C, L) map."""
    import torch  # here, so the names above are importable without torch (the command line)

    if isinstance(tensor, dict):
        tensor = list(tensor.values())
    if isinstance(tensor, (list, tuple)):
        return torch.cat([pool(t, how, flatten_limit, prefix_tokens) for t in tensor], dim=1)
    if tensor.ndim == 3:  # tokens: (N, L, D) -> (N, D, L, 1) so the same code applies
        if 0 < prefix_tokens < tensor.shape[1] and _after_prefix(tensor.shape[1], prefix_tokens):
            tensor = tensor[:, prefix_tokens:]
        tensor = tensor.transpose(1, 2).unsqueeze(-1)
    if tensor.ndim == 4:
        if how == "avg":
            return tensor.mean(dim=(2, 3))
        if how == "max":
            return tensor.amax(dim=(2, 3))
        n, c, h, w = tensor.shape
        if c * h * w > flatten_limit:
            side = max(1, int((flatten_limit / c) ** 0.5))
            tensor = torch.nn.functional.adaptive_avg_pool2d(tensor.float(), (min(h, side), min(w, side)))
        return tensor.reshape(n, -1)
    return tensor.reshape(tensor.shape[0], -1)



def _after_prefix(length: int, prefix: int) -> bool:
    """Whether a token map of ``length`` starts with ``prefix`` CLS/register tokens: what follows them is
    a square grid of patches and the whole is not one (a patch embedding's output, before they are added)."""
    import math

    def square(n: int) -> bool:
        return n > 0 and math.isqrt(n) ** 2 == n

    return square(length - prefix) and not square(length)
