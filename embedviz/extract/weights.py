"""Reading weights safely: a ``.safetensors`` file with safetensors, a ``.pt``/``.pth`` state dict with
``torch.load(..., weights_only=True)``; a file that carries code (TorchScript, torch.export, ONNX, a
pickled module) is refused by name. And loading them strictly, a mismatch naming the keys.

Below :mod:`embedviz.extract.models` and the model families (:mod:`~embedviz.extract.timm_models`,
:mod:`~embedviz.extract.clip`), which all read and load through here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedviz.errors import ModelError
from embedviz.extract.trusted import FORMATS

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CodeCarryingFile", "read_state_dict", "load_into", "MAX_PARAMETERS", "check_size", "SEEDED"]

#: The largest model a guest may build (about 6 GB of float32 weights): a typed name costs nothing, and
#: timm:vit_7b_patch16_dinov3 (6.7 billion) or clip:ViT-bigG-14 (2.5 billion) with random weights would
#: take the shared server's memory. The largest torchvision classifier has 0.63 billion.
MAX_PARAMETERS = 1_500_000_000
#: Held around every seeded build (random weights): the generator is the process's, and two sessions
#: building at once drew from each other's sequence, so "random:seed0" was not the same model twice.
import threading  # noqa: E402

SEEDED = threading.RLock()


def check_size(meta: "nn.Module", name: str) -> None:
    """Refuse a model, built on the meta device (no memory), with more than :data:`MAX_PARAMETERS`."""
    count = sum(p.numel() for p in meta.parameters())
    if count > MAX_PARAMETERS:
        raise ModelError(f"{name} has {count / 1e9:.1f} billion parameters; this server builds models of up to "
                         f"{MAX_PARAMETERS / 1e9:.1f} billion. Choose a smaller one.")

log = logging.getLogger("embedviz.extract.models")  # the messages' home before this module was split out

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights", "params",
                 "state_dict_ema", "model_ema", "ema_state_dict", "ema")
_PREFIXES = ("module.", "_orig_mod.")


class CodeCarryingFile(ModelError):
    """A model file that needs its own code to load; ``kind`` is a key of :data:`embedviz.extract.trusted.FORMATS`."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _strip_prefixes(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes every key shares: DataParallel's ``module.``, torch.compile's ``_orig_mod.``."""
    tensors = {k: v for k, v in tensors.items() if k != "n_averaged"}  # swa_utils.AveragedModel's counter
    changed = True
    while changed and tensors:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                changed = True
    return tensors


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The tensor dict inside common checkpoint layouts (trained weights first, EMA if alone)."""
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                return _unwrap(obj[key], source)
        import torch

        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors:
            return _strip_prefixes(tensors)
    raise ModelError(f"{source} holds no state_dict of tensors; save one with torch.save(model.state_dict(), path).")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a ``.pt``/``.pth`` state_dict, read safely."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"Weights file {path} does not exist.")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path.name} is not a valid .safetensors file ({exc}).") from None
    kind = _code_format(path)
    if kind:
        raise CodeCarryingFile(f"{path.name} is {FORMATS[kind]}, which needs code to load; embedviz loads only "
                               f"weights. {_SAVE_HINT}", kind)
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError and more for bad files
        # a guest's bad file, not the server's fault: one line in the log, the traceback only at debug level
        log.info("torch.load rejected %s: %s", path.name, " ".join(str(exc).split())[:200])
        log.debug("torch.load rejected %s", path.name, exc_info=True)
        text = str(exc)
        globals_ = re.findall(r"GLOBAL ([\w.]+)", text)
        if globals_:
            raise CodeCarryingFile(f"{path.name} holds a whole pickled object ({globals_[0]}), which would run "
                                   f"code to load; embedviz will not unpickle it. {_SAVE_HINT}", "pickle") from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise ModelError(f"{path.name} could not be read as a plain state_dict ({first[:120]}). {_SAVE_HINT}") from None
    return _unwrap(obj, path.name)


_SAVE_HINT = ("Save the weights with torch.save(model.state_dict(), 'model.pth') or "
              "safetensors.torch.save_file(model.state_dict(), 'model.safetensors').")


def _code_format(path: Path) -> str | None:
    """The formats that carry a program rather than weights: TorchScript, torch.export, ONNX."""
    import zipfile

    if path.suffix.lower() == ".onnx":
        return "onnx"
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith(("/archive_format", "/models/model.json")) for n in names):
        return "export"
    return None


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load strictly; a mismatch names the first missing, unexpected and wrongly shaped keys."""
    expected = module.state_dict()
    # Frozen batch norm (detection backbones) saves no step counter; the module's own serves.
    state = {**{k: v for k, v in expected.items() if k.endswith(".num_batches_tracked")}, **state}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shaped:
        parts = [f"{label} {names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "")
                 for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shaped))
                 if names]
        raise ModelError(f"{source} does not fit this architecture ({'; '.join(parts)}); is it the right one?")
    module.load_state_dict(state, strict=True)


load_into = _load_into
