"""timm's architectures (``timm:NAME``, e.g. ``timm:convnext_tiny``, ``timm:resnet50.a1_in1k``,
``timm:vit_small_patch14_dinov2.lvd142m``) with weights as timm or a model hub publishes them.

Built with ``timm.create_model(NAME, pretrained=False, num_classes=N)``, ``N`` read from the classifier
in the weights (0, features only, when they have none); the weights are read safely by
:func:`embedviz.extract.models.read_state_dict` and loaded strictly. The preprocessing is the model's
pretrained configuration (input size, interpolation, crop, mean and std), editable as any other.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any

from embedviz.errors import ModelError, first_line
from embedviz.extract.preprocessing import INTERPOLATIONS, Preprocessing

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["TIMM", "TIMM_MISSING", "is_timm", "timm_name", "require_timm", "check_timm", "build_timm",
           "timm_from_state", "timm_pretrained", "timm_preprocessing", "prefix_tokens"]

TIMM = "timm:"
TIMM_MISSING = "timm: models need the timm package: pip install -e '.[models]' (or pip install timm)."
#: timm's interpolations embedviz does not offer, and the nearest it does.
_NEAREST_INTERPOLATION = {"nearest": "bilinear", "box": "bilinear", "hamming": "bilinear", "lanczos": "bicubic",
                          "random": "bicubic"}


def is_timm(architecture: str) -> bool:
    return architecture.startswith(TIMM)


def timm_name(architecture: str) -> str:
    name = architecture[len(TIMM):].strip()
    if not name:
        raise ModelError("Name the timm model after timm:, e.g. timm:resnet50, timm:convnext_tiny or "
                         "timm:vit_small_patch14_dinov2.lvd142m.")
    return name


def require_timm():
    try:
        import timm
    except ImportError:
        raise ModelError(TIMM_MISSING) from None
    return timm


def check_timm(architecture: str) -> str:
    """The timm model name of ``architecture``; a clear error when timm lacks it (or the tag after the dot)."""
    timm = require_timm()
    name = timm_name(architecture)
    if not timm.is_model(name):
        base = name.split(".")[0]
        near = timm.list_models(f"*{base}*")[:6] or timm.list_models("resnet*")[:3]
        raise ModelError(f"timm has no model {name!r}; some it has: {', '.join(near)}.")
    try:
        timm.models.get_pretrained_cfg(name)
    except RuntimeError as exc:  # "Invalid pretrained tag (x) for resnet50."
        raise ModelError(f"timm: {first_line(exc)}") from None
    return name


@contextlib.contextmanager
def _quiet():
    """timm and huggingface_hub log while building; the user sees embedviz's messages. Their loggers are
    turned down once (never ``sys.stdout``/``sys.stderr`` swapped: that is every thread's, and two sessions
    building at once left the server's log writing into a buffer)."""
    for name in ("timm", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    yield


def build_timm(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)`` in eval mode: nothing is downloaded."""
    import torch

    from embedviz.extract.weights import check_size

    timm = require_timm()
    try:
        with _quiet():
            with torch.device("meta"):
                check_size(timm.create_model(name, pretrained=False, **kwargs), f"timm:{name}")
            return timm.create_model(name, pretrained=False, **kwargs).eval()
    except (RuntimeError, ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ModelError(f"timm could not build {name} ({first_line(exc)}).") from None


#: More classes than any classifier has: a head of this many is refused before anything is built.
MAX_CLASSES = 100_000


def checked_classes(tensor: torch.Tensor, key: str) -> int:
    """The class count a classifier's weight or bias gives, refused when it is empty or absurdly large
    (its shape, not its bytes, would size the model built for it: an 80-byte file asked for 2 GB)."""
    count = int(tensor.shape[0]) if tensor.ndim else 0
    if tensor.numel() == 0 or not 0 < count <= MAX_CLASSES:
        raise ModelError(f"The weights' {key} has shape {tuple(tensor.shape)}: not a classifier of 1 to "
                         f"{MAX_CLASSES:,} classes; is it the right file?")
    return count


def _classifier(name: str) -> str | None:
    """The classifier's module name (``fc``, ``head.fc``, ``head``...), from timm's pretrained configuration."""
    timm = require_timm()
    cfg = timm.models.get_pretrained_cfg(name)
    classifier = getattr(cfg, "classifier", None) if cfg is not None else None
    if isinstance(classifier, (tuple, list)):  # distilled models: two heads, the first is the classifier
        classifier = classifier[0] if classifier else None
    return classifier or None


def _num_classes(name: str, state: dict[str, torch.Tensor]) -> int:
    """Classes of the classifier in ``state``; 0 (timm's "no head") when the weights have none."""
    classifier = _classifier(name)
    if classifier is None:
        model = build_timm(name)
        head = model.get_classifier() if hasattr(model, "get_classifier") else None
        classifier = next((n for n, m in model.named_modules() if head is not None and m is head and n), None)
    if classifier is not None:
        for suffix in (".weight", ".bias"):
            if f"{classifier}{suffix}" in state:
                return checked_classes(state[f"{classifier}{suffix}"], f"{classifier}{suffix}")
    return 0


def timm_from_state(name: str, state: dict[str, torch.Tensor], source: str) -> tuple[nn.Module, list[str]]:
    """``name`` built with the weights' number of classes and loaded strictly; a mismatch names the keys.
    The weights must be in timm's own layout, as timm and the hub (``timm/...``) publish them: a model's
    ``checkpoint_filter_fn`` is not run on a guest's tensors (a 90 KB file made the ViT filter allocate
    gigabytes)."""
    from embedviz.extract.weights import _load_into

    module = build_timm(name, num_classes=_num_classes(name, state))
    _load_into(module, state, source)
    return module, []


def timm_pretrained(name: str) -> nn.Module:
    """timm's published weights, downloaded from the Hugging Face hub (or its local cache); one line when
    that fails (offline, ``HF_HUB_OFFLINE=1``, a gated or missing file)."""
    timm = require_timm()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # its retry warnings, one per attempt
    try:
        with _quiet():
            return timm.create_model(name, pretrained=True).eval()
    except Exception as exc:  # noqa: BLE001 - OSError, HTTP errors, LocalEntryNotFoundError, a bad file...
        raise ModelError(f"Could not download timm's pretrained {name} weights ({type(exc).__name__}); this machine "
                         "may be offline. Save them as a .safetensors file where there is internet, and give that "
                         "file.") from None


def timm_preprocessing(module: nn.Module) -> tuple[Preprocessing, list[str]]:
    """How ``module``'s pretrained weights are fed at evaluation (``timm.data.resolve_data_config``): input
    size, interpolation, crop (``crop_pct``: the shorter side to ``floor(size / crop_pct)``, as timm's eval
    transform), mean and std; notes for what embedviz feeds differently."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=module)
    channels, height, width = (int(v) for v in cfg.get("input_size", (3, 224, 224)))
    notes = []
    size = height
    if height != width:
        notes.append(f"The model's input is {height}x{width}; embedviz feeds squares of {size}.")
    interpolation = str(cfg.get("interpolation", "bilinear"))
    if interpolation not in INTERPOLATIONS:
        nearest = _NEAREST_INTERPOLATION.get(interpolation, "bilinear")
        notes.append(f"The model was evaluated with {interpolation} resizing; embedviz uses {nearest}.")
        interpolation = nearest
    mean = tuple(float(m) for m in cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(float(s) for s in cfg.get("std", (0.229, 0.224, 0.225)))
    if channels not in (1, 3) or len(mean) != channels or len(std) != channels:
        raise ModelError(f"The timm model takes {channels} channels (mean {list(mean)}); embedviz feeds 1 or 3.")
    if cfg.get("crop_mode") == "squash":
        return Preprocessing(size=size, channels=channels, mean=mean, std=std, resize="squash",
                             interpolation=interpolation), notes
    if cfg.get("crop_mode", "center") != "center":
        notes.append(f"The model was evaluated with timm's {cfg['crop_mode']!r} crop; embedviz crops the centre.")
    crop_pct = float(cfg.get("crop_pct") or 0.875)
    resize_to = max(size, math.floor(size / crop_pct))
    return Preprocessing(size=size, channels=channels, mean=mean, std=std, resize="crop", resize_to=resize_to,
                         interpolation=interpolation), notes


def prefix_tokens(module: nn.Module) -> int:
    """Tokens ahead of the patch tokens in a ViT's token maps (the CLS token, registers): left out of
    their average so that ``avg`` pooling of ``norm`` is the mean of the patch tokens."""
    count = getattr(module, "num_prefix_tokens", 0)
    return int(count) if isinstance(count, int) and count >= 0 else 0
