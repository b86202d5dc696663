"""open_clip's vision-language models (``clip:NAME``, e.g. ``clip:ViT-B-32``, ``clip:ViT-B-16-SigLIP``):
the image tower for features, the text tower for queries.

Built with ``open_clip.create_model(NAME, pretrained=None)`` (no download), the weights read safely by
:func:`embedviz.extract.weights.read_state_dict` from a state dict as open_clip (or a hub) saves it. The
image features are the tower's output: the embedding the text tower's queries are compared with. A
tokenizer that would have to be downloaded (SigLIP's comes from Hugging Face) fails with one line offline.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedviz.errors import ModelError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CLIP", "is_clip", "clip_name", "require_open_clip", "build_clip", "clip_model", "load_clip_state",
           "clip_preprocessing_values", "TextTower", "text_tower", "shared_clip", "OPEN_CLIP_MISSING",
           "PRETRAINED_CLIP"]

CLIP = "clip:"
OPEN_CLIP_MISSING = ("clip: models need the open_clip package: pip install -e '.[models]' (or pip install "
                     "open-clip-torch).")
PRETRAINED_CLIP = ("Published CLIP weights are downloaded from a model hub, which this server does not do; save "
                   "them as a .safetensors state dict (open_clip's keys) where there is internet and give that file.")
_lock = threading.Lock()


def is_clip(architecture: str) -> bool:
    return architecture.startswith(CLIP)


def clip_name(architecture: str) -> str:
    name = architecture[len(CLIP):].strip()
    if not name:
        raise ModelError("Name the open_clip model after clip:, e.g. clip:ViT-B-32 or clip:ViT-B-16-SigLIP.")
    return name


def require_open_clip():
    try:
        import open_clip
    except ImportError:
        raise ModelError(OPEN_CLIP_MISSING) from None
    return open_clip


def build_clip(architecture: str) -> nn.Module:
    """The whole model (both towers), randomly initialised: nothing is downloaded; refused when it is
    larger than this server builds."""
    open_clip = require_open_clip()
    name = clip_name(architecture)
    if name not in open_clip.list_models():
        known = ", ".join([m for m in open_clip.list_models() if m.startswith(("ViT-B-32", "ViT-B-16", "RN50"))][:8])
        raise ModelError(f"open_clip has no model {name!r}; some it has: {known}.")
    _quiet()
    import torch

    from embedviz.extract.weights import check_size

    try:
        with torch.device("meta"):
            check_size(open_clip.create_model(name, pretrained=None, device="meta", **_NO_TEXT_DOWNLOAD),
                       architecture)
        return open_clip.create_model(name, pretrained=None, device="cpu", **_NO_TEXT_DOWNLOAD).eval()
    except (RuntimeError, ValueError, KeyError, TypeError, ImportError, OSError) as exc:
        raise ModelError(f"open_clip could not build {name} ({first_line(exc)}).") from None


#: A text tower from Hugging Face (roberta-, xlm-roberta-, mt5-, nllb-clip- models) is built from its
#: config without fetching the text model's weights (they come with the user's state dict).
_NO_TEXT_DOWNLOAD = {"pretrained_text": False}


class _NoRandomWeightsNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def _quiet() -> None:
    """open_clip says at the root logger that no pretrained weights were loaded, which is the point here:
    a filter drops that line (never ``sys.stdout`` swapped or the root level changed: those are every
    thread's, and two sessions building at once left them so)."""
    root = logging.getLogger()
    if not any(isinstance(f, _NoRandomWeightsNotice) for f in root.filters):
        root.addFilter(_NoRandomWeightsNotice())
    for handler in root.handlers:
        if not any(isinstance(f, _NoRandomWeightsNotice) for f in handler.filters):
            handler.addFilter(_NoRandomWeightsNotice())


def clip_preprocessing_values(architecture: str, model: nn.Module) -> dict[str, Any]:
    """How the image tower is fed: open_clip's evaluation transform (shorter side to the input size,
    centre crop, bicubic) with the mean and std of the model's published weights when it has some
    (SigLIP's 0.5, not CLIP's)."""
    open_clip = require_open_clip()
    cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    tags = open_clip.list_pretrained_tags_by_model(clip_name(architecture))
    if tags:
        published = open_clip.get_pretrained_cfg(clip_name(architecture), tags[0]) or {}
        cfg.update({k: published[k] for k in ("mean", "std", "interpolation", "resize_mode") if published.get(k)})
    size = cfg.get("size", 224)
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    squash = cfg.get("resize_mode") == "squash"
    return {"size": size, "channels": 3, "mean": [float(m) for m in cfg.get("mean", (0.48145466, 0.4578275,
                                                                                       0.40821073))],
            "std": [float(s) for s in cfg.get("std", (0.26862954, 0.26130258, 0.27577711))],
            "resize": "squash" if squash else "crop", "resize_to": 0 if squash else size,
            "interpolation": "bicubic" if cfg.get("interpolation", "bicubic") == "bicubic" else "bilinear"}


class TextTower:
    """Text queries in the image tower's space: ``encode(["a dog on grass"])`` gives unit vectors."""

    def __init__(self, architecture: str, model: nn.Module) -> None:
        self.architecture = architecture
        self._model = model
        self._tokenizer = _tokenizer(clip_name(architecture))

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with _lock, torch.inference_mode():
            tokens = self._tokenizer([str(t)[:1000] for t in texts])
            vectors = _encode_text(self._model, tokens).float()
        return _unit(vectors.numpy())


def _encode_text(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)``, over only as many positions as the longest text fills when that
    gives the same vectors: CLIP's text transformer is causal and pools at the end-of-text token, so
    the padding after it changes nothing (a query of a few words: 5-10x less work than all 77).
    Other text towers (SigLIP's, which pools the last position) get open_clip's own call."""
    from open_clip.model import CLIP as OpenClip
    from open_clip.transformer import text_global_pool
    from torch import nn as torch_nn

    mask = getattr(model, "attn_mask", None)
    if type(model) is not OpenClip or getattr(model, "text_pool_type", "") != "argmax" or mask is None:
        return model.encode_text(tokens)
    n = int(tokens.argmax(dim=-1).max()) + 1  # the end-of-text token has the highest id
    tokens = tokens[:, :n]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=mask[:n, :n]))
    x = text_global_pool(x, tokens, "argmax")
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch_nn.Module) else x @ projection


@functools.lru_cache(maxsize=4)
def _tokenizer(name: str):
    open_clip = require_open_clip()
    try:
        return open_clip.get_tokenizer(name)
    except ImportError as exc:
        raise ModelError(f"{name}'s tokenizer needs a package this server lacks ({first_line(exc)}): pip install "
                         "transformers, and it downloads the tokenizer from Hugging Face once.") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{name}'s tokenizer could not be loaded ({first_line(exc)}); it is downloaded from "
                         "Hugging Face once, and this machine may be offline.") from None


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


_building = threading.Lock()


def shared_clip(architecture: str, weights: str) -> nn.Module:
    """:func:`clip_model`, kept for the next query: two models at most in the process (about 600 MB each
    for ViT-B), built one at a time (two sessions' first queries do not build two copies)."""
    with _building:
        return _kept_clip(architecture, weights)


@functools.lru_cache(maxsize=2)
def _kept_clip(architecture: str, weights: str) -> nn.Module:
    return clip_model(architecture, weights)


def text_tower(architecture: str, weights: str | None) -> TextTower:
    """The text tower of ``architecture`` with ``weights`` (a state dict file, or ``random``): the model
    and its tokenizer are kept (:func:`shared_clip`), so the first query builds and loads them and later
    ones only encode."""
    from embedviz.extract.spec import PRETRAINED

    if weights == PRETRAINED:
        raise ModelError(PRETRAINED_CLIP)
    if not weights:
        raise ModelError(f"{architecture} needs weights: a .safetensors or .pt state dict as open_clip saves it.")
    return TextTower(architecture, shared_clip(architecture, weights))


def clip_model(architecture: str, weights: str) -> nn.Module:
    """The whole model with ``weights`` (a state dict file) or ``random`` (seed 0, the same towers each
    time, so the image tower's features and the text tower's queries match)."""
    from embedviz.extract.spec import RANDOM
    from embedviz.extract.weights import read_state_dict

    if weights == RANDOM:
        import torch

        from embedviz.extract.weights import SEEDED

        with SEEDED, torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_clip(architecture)
    model = build_clip(architecture)
    load_clip_state(model, read_state_dict(Path(weights)), Path(weights).name)
    return model


def load_clip_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a whole CLIP state dict (both towers); a mismatch names the keys, as for any model."""
    from embedviz.extract.weights import _load_into

    _load_into(model, state, source)
