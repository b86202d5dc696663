"""Which model: a typed, frozen description of the network, its weights and how images are fed to it.

Loading it is :func:`embedviz.extract.models.load_model`'s work; this module imports nothing heavy, so
the catalog, links and the command line can name and key a model without torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from embedviz.errors import ModelError
from embedviz.hashing import sha256_json

__all__ = ["ModelSpec", "DEMO", "PIXELS", "PRETRAINED", "RANDOM", "PROGRAM"]

#: The built-in digits CNN.
DEMO = "demo"
#: No model: the images' pixels are the features.
PIXELS = "pixels"
#: ``weights`` that ask for torchvision's pretrained weights (downloaded, so not offline).
PRETRAINED = "pretrained"
#: ``weights`` that ask for a randomly initialised network (a baseline).
RANDOM = "random"
#: The architecture of a model file that carries its own code (trusted installs only).
PROGRAM = "program"


@dataclass(frozen=True)
class ModelSpec:
    """The chosen model.

    Args:
        architecture: a torchvision name, ``timm:NAME``, ``clip:NAME`` (open_clip), :data:`DEMO`, :data:`PIXELS`
            or :data:`PROGRAM`.
        weights: a weights file, :data:`PRETRAINED`, :data:`RANDOM`, or ``None`` (the demo's own, or none yet).
        preprocessing: the user's preprocessing values as canonical JSON, ``None`` for the model's own.
        preprocessing_from: ``"images"`` when raw pixels are fed as the current images are (not the user's choice).
    """

    architecture: str = DEMO
    weights: str | None = None
    preprocessing: str | None = None
    preprocessing_from: str = ""

    def __post_init__(self) -> None:
        if not self.architecture:
            raise ModelError("A model needs an architecture.")

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> ModelSpec:
        """The spec a stored dict describes (``None``: the demo CNN); unknown keys are refused."""
        value = dict(value or {"architecture": DEMO})
        unknown = set(value) - {"architecture", "weights", "preprocessing", "preprocessing_from"}
        if unknown:
            raise ModelError(f"A model description has unknown fields: {', '.join(sorted(unknown))}.")
        preprocessing = value.get("preprocessing")
        if isinstance(preprocessing, str) and preprocessing:  # already JSON: made canonical, so equal specs are equal
            try:
                preprocessing = json.loads(preprocessing)
            except ValueError:
                preprocessing = None
            if not isinstance(preprocessing, Mapping):
                raise ModelError("A model description's preprocessing is not valid JSON (an object of values).")
        if isinstance(preprocessing, Mapping):
            preprocessing = json.dumps(preprocessing, sort_keys=True) if preprocessing else None
        return cls(str(value.get("architecture") or DEMO), str(value["weights"]) if value.get("weights") else None,
                   preprocessing or None, str(value.get("preprocessing_from") or ""))

    def to_dict(self) -> dict[str, Any]:
        """The serialised form: ``architecture``, ``weights`` and the preprocessing values when set."""
        out: dict[str, Any] = {"architecture": self.architecture, "weights": self.weights}
        if self.preprocessing:
            out["preprocessing"] = json.loads(self.preprocessing)
        if self.preprocessing_from:
            out["preprocessing_from"] = self.preprocessing_from
        return out

    def key(self) -> str:
        """A content key of the description (the weights file's bytes are keyed where features are)."""
        return sha256_json(self.to_dict())

    def name(self) -> str:
        """``demo CNN (early checkpoint)``, ``raw pixels``, ``resnet18 (weights.pth)``,
        ``timm convnext_tiny (model.safetensors)``, ``open_clip ViT-B-32 (random)``, ..."""
        if self.architecture == DEMO:
            from embedviz.data.demo import EARLY_WEIGHTS

            name = "demo CNN (early checkpoint)" if self.weights == str(EARLY_WEIGHTS) else "demo CNN (final)"
        elif self.architecture == PIXELS:
            name = "raw pixels"
        else:
            name = self.architecture
            for prefix, family in (("timm:", "timm"), ("clip:", "open_clip")):  # timm:resnet50 -> timm resnet50
                if name.startswith(prefix):
                    name = f"{family} {name[len(prefix):]}"
            name += f" ({os.path.basename(str(self.weights))})" if self.weights else ""
        return name + (" with its own preprocessing" if self.preprocessing else "")
