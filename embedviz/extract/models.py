"""Models: a torchvision architecture plus a weights file, a timm one (``timm:NAME``), an open_clip
image tower (``clip:NAME``), the built-in demo CNN, or raw pixels.

Weights are read safely: ``.safetensors`` with safetensors, ``.pt``/``.pth`` with
``torch.load(..., weights_only=True)``. Nothing is ever unpickled beyond that.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedviz.errors import ModelError
from embedviz.extract.clip import is_clip
from embedviz.extract.preprocessing import Preprocessing, pixels_preprocessing, weights_preprocessing
from embedviz.extract.spec import DEMO, PIXELS, PRETRAINED, PROGRAM, RANDOM
from embedviz.extract.timm_models import (
    build_timm,
    check_timm,
    checked_classes,
    is_timm,
    prefix_tokens,
    timm_from_state,
    timm_preprocessing,
    timm_pretrained,
)
from embedviz.extract.trusted import ENV_VAR, FORMATS, inspect_program, trusted_enabled
from embedviz.extract.weights import SEEDED, CodeCarryingFile, _load_into, read_state_dict
from embedviz.hashing import sha256_file

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # torch is imported where a model is built or read, so naming one costs nothing
    import torch
    from torch import nn

    from embedviz.extract.digits import DigitsCNN

__all__ = [
    "Preprocessing",
    "LoadedModel",
    "DigitsCNN",
    "PIXELS",
    "DEMO",
    "PROGRAM",
    "CodeCarryingFile",
    "list_architectures",
    "typed_examples",
    "check_architecture",
    "load_model",
    "fit_to_images",
    "needs_weights",
    "read_state_dict",
    "describe",
]



def __getattr__(name: str) -> Any:
    """``DigitsCNN`` lives in :mod:`embedviz.extract.digits` (it needs torch); imported on first use."""
    if name == "DigitsCNN":
        from embedviz.extract.digits import DigitsCNN

        return DigitsCNN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DIGITS_PREPROCESSING = Preprocessing(size=8, channels=1, mean=(0.3,), std=(0.4,), resize="squash")
#: Raw pixels when nothing is known of the images: 32x32 RGB (see :func:`fit_to_images`).
PIXELS_PREPROCESSING = pixels_preprocessing(())


@dataclass(frozen=True)
class LoadedModel:
    """A ready model and what identifies it in a cache key."""

    architecture: str
    module: nn.Module | None
    preprocessing: Preprocessing
    weights_sha256: str | None = None
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    weights_name: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: ``classification`` (predictions are reported); ``segmentation``, ``detection`` or ``embedding`` (a
    #: CLIP image tower, a timm backbone without its classifier): features only.
    task: str = "classification"
    #: A code-carrying file run in a separate process (see :mod:`embedviz.extract.trusted`), its format and layers.
    program: str | None = None
    program_format: str = ""
    program_layers: tuple[str, ...] = ()
    #: Tokens ahead of the patch tokens in a ViT's token maps (CLS, registers), left out when one is pooled.
    prefix_tokens: int = 0

    @property
    def is_pixels(self) -> bool:
        return self.architecture == PIXELS

    def identity(self) -> dict[str, Any]:
        """What makes two models give the same features."""
        return {
            "architecture": self.architecture,
            "weights_sha256": self.weights_sha256,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names) if self.class_names else None,
            "preprocessing": self.preprocessing.to_dict(),
        }

    def with_class_names(self, names: list[str]) -> "LoadedModel":
        """The same model reporting predictions by these names (from a class index)."""
        if self.num_classes is not None and len(names) != self.num_classes:
            raise ModelError(f"The class index names {len(names)} classes but the model has {self.num_classes}.")
        return replace(self, class_names=tuple(names))

    def with_preprocessing(self, preprocessing: Preprocessing) -> "LoadedModel":
        """The same model fed differently; the store key follows, since it hashes the preprocessing."""
        return replace(self, preprocessing=preprocessing)


#: torchvision's sub-packages of models whose features embedviz takes, and the task of each.
_FAMILY_FOLDERS = {"": "classification", "segmentation": "segmentation", "detection": "detection"}
#: A builder in torchvision's source: ``@register_model()`` (or ``(name="...")``), other decorators, ``def name(``.
_REGISTERED = re.compile(r"^@register_model\((?:name=[\"'](\w+)[\"'])?\)\n(?:(?!def ).*\n)*?def (\w+)\(", re.M)


@functools.lru_cache(maxsize=1)
def _registered() -> dict[str, str]:
    """torchvision's model names and their task, read from its source files, importing none of it.

    Importing any torchvision family runs ``torchvision/__init__``, which imports all of them (3.5 s on
    the 2-core machine, ``torch._dynamo`` included): too much to check a name. Empty when the sources
    cannot be read (a zipped install); :func:`_families` asks torchvision itself then."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    names: dict[str, str] = {}
    for folder, task in _FAMILY_FOLDERS.items():
        for source in sorted((root / folder).glob("*.py")):
            try:
                text = source.read_text(encoding="utf-8")
            except OSError:
                return {}
            names.update({match[1] or match[2]: task for match in _REGISTERED.finditer(text)})
    return names


def _families() -> dict[str, str]:
    """torchvision model names and their task (classification, segmentation, detection), from
    torchvision's registry: the authority, when :func:`_registered` has not found a name."""
    import torchvision

    names = {name: "classification" for name in torchvision.models.list_models(module=torchvision.models)}
    names.update({name: "segmentation"
                  for name in torchvision.models.list_models(module=torchvision.models.segmentation)})
    names.update({name: "detection" for name in torchvision.models.list_models(module=torchvision.models.detection)})
    return names


def list_architectures() -> list[str]:
    """The names :func:`load_model` offers in a list: ``demo``, ``pixels``, torchvision's classifiers,
    segmenters and detectors (of which only the backbone is used: features, no predictions), and
    ``program`` where the operator allows code-carrying files. It also takes any ``timm:NAME`` and
    ``clip:NAME`` (too many to list: typed)."""
    return [DEMO, PIXELS, *([PROGRAM] if trusted_enabled() else []), *sorted(_registered() or _families())]


#: Names offered in the list as examples of what can be typed (when timm / open_clip are installed).
TYPED_EXAMPLES = {"timm": ("timm:resnet50.a1_in1k", "timm:convnext_tiny", "timm:vit_small_patch14_dinov2.lvd142m"),
                  "open_clip": ("clip:ViT-B-32", "clip:ViT-B-16-SigLIP")}


def typed_examples() -> list[str]:
    """A few ``timm:`` and ``clip:`` names for pickers, for the packages installed (none is imported)."""
    return [name for package, names in TYPED_EXAMPLES.items() if importlib.util.find_spec(package) for name in names]


def check_architecture(architecture: str) -> str:
    """The architecture's task (``classification``, ``segmentation``, ``detection``, ``embedding``); one
    clear line for a name no family has, or a family whose package is not installed."""
    return _check_architecture(architecture)


def _program(path: Path, kind: str) -> LoadedModel:
    """A code-carrying file, opened only by a child process (trusted installs only)."""
    found = inspect_program(path, kind)
    return LoadedModel(architecture=PROGRAM, module=None, preprocessing=Preprocessing(),
                       weights_sha256=sha256_file(path), weights_name=path.name, program=str(path),
                       program_format=kind, program_layers=tuple(found["layers"]),
                       notes=(f"{path.name} is {FORMATS[kind]}; it runs in a separate process.",))


def _last_linear(module: nn.Module) -> str | None:
    from torch import nn

    name = None
    for qualified, child in module.named_modules():
        if isinstance(child, nn.Linear):
            name = qualified
    return name


def _head(module: nn.Module, task: str) -> str | None:
    """The layer whose output size is the number of classes."""
    from torch import nn

    if task == "segmentation":
        convs = [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d) and n.startswith("classifier")]
        return convs[-1] if convs else None
    return _last_linear(module)


def build_check_clip(architecture: str) -> None:
    """open_clip is importable and has the model (nothing is built)."""
    from embedviz.extract.clip import clip_name, require_open_clip

    open_clip = require_open_clip()
    name = clip_name(architecture)
    if name not in open_clip.list_models():
        known = ", ".join([m for m in open_clip.list_models() if m.startswith(("ViT-B-32", "ViT-B-16", "RN50"))][:8])
        raise ModelError(f"open_clip has no model {name!r}; some it has: {known}.")


def _check_architecture(architecture: str) -> str:
    """The architecture's task; a clear error for names torchvision (or timm, open_clip) does not have.

    Read from torchvision's sources (:func:`_registered`), importing nothing; a name not found there is
    looked up in torchvision's registry before it is refused."""
    if is_timm(architecture):
        check_timm(architecture)
        return "classification"  # or "embedding": the weights tell
    if is_clip(architecture):
        build_check_clip(architecture)
        return "embedding"
    task = _registered().get(architecture) or _families().get(architecture)
    if task is None:
        raise ModelError(
            f"Unknown architecture {architecture!r}: use 'demo', 'pixels', a torchvision model such as "
            "resnet18, vgg16, efficientnet_b0, deeplabv3_resnet50 or fasterrcnn_resnet50_fpn (its backbone), "
            "timm:NAME (timm:convnext_tiny) or clip:NAME (clip:ViT-B-32)."
        )
    return task


def _build(architecture: str, **kwargs: Any) -> nn.Module:
    import torchvision

    if _check_architecture(architecture) in ("segmentation", "detection"):
        kwargs.setdefault("weights_backbone", None)  # never download a backbone behind the user's back
    try:
        return torchvision.models.get_model(architecture, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"Could not build {architecture} ({exc}).") from None


def default_preprocessing(architecture: str) -> Preprocessing:
    """How torchvision's own weights for ``architecture`` are fed at evaluation (Inception 299 px from
    342, EfficientNet-B3 300 px from 320, bicubic...): the right start for weights trained the same way."""
    import torchvision

    try:
        default = torchvision.models.get_model_weights(architecture).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return Preprocessing()
    return weights_preprocessing(default.transforms()) or Preprocessing()


def _pretrained(architecture: str) -> LoadedModel:
    import http.client
    import pickle

    import torchvision

    task = _check_architecture(architecture)
    weights_enum = torchvision.models.get_model_weights(architecture).DEFAULT
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.hub always prints "Downloading: ..."
            state = weights_enum.get_state_dict(progress=False, check_hash=True)
    except (OSError, http.client.HTTPException, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        # urllib and socket errors, a wrong hash (RuntimeError), a truncated file: all mean "could not fetch"
        raise ModelError(
            f"Could not download torchvision's pretrained {architecture} weights ({type(exc).__name__}); "
            "this machine may be offline. Fetch them where there is internet, or pass a weights file."
        ) from None
    module, _ = _from_state(architecture, task, state, str(weights_enum))
    if task == "detection":
        return _detection_model(architecture, module, f"torchvision:{weights_enum}", str(weights_enum))
    categories = tuple(weights_enum.meta.get("categories") or ()) or None
    return LoadedModel(
        architecture=architecture,
        module=module.eval(),
        preprocessing=weights_preprocessing(weights_enum.transforms()) or Preprocessing(),
        weights_sha256=f"torchvision:{weights_enum}",
        num_classes=len(categories) if categories else None,
        class_names=categories,
        weights_name=str(weights_enum),
        task=task,
    )


def load_model(architecture: str, weights: str | Path | None = None) -> LoadedModel:
    """A model ready for extraction.

    ``architecture`` is ``demo``, ``pixels`` or a torchvision classifier name. ``weights`` is a
    ``.safetensors``/``.pt``/``.pth`` file; for torchvision it may also be ``pretrained``
    (downloads torchvision's weights) or ``random`` (an untrained baseline). ``num_classes``
    is read from the weights, so a VGG16 trained for 100 classes loads as such.

    >>> load_model("demo").num_classes
    10
    """
    if architecture == PIXELS:
        return LoadedModel(architecture=PIXELS, module=None, preprocessing=PIXELS_PREPROCESSING)
    if architecture == DEMO:
        from embedviz.data.demo import FINAL_WEIGHTS

        path = Path(weights) if weights else FINAL_WEIGHTS
        state = read_state_dict(path)
        num_classes = int(state["classifier.2.weight"].shape[0]) if "classifier.2.weight" in state else 10
        from embedviz.extract.digits import DigitsCNN

        module = DigitsCNN(num_classes)
        _load_into(module, state, path.name)
        return LoadedModel(
            architecture=DEMO, module=module.eval(), preprocessing=DIGITS_PREPROCESSING,
            weights_sha256=sha256_file(path), num_classes=num_classes,
            class_names=tuple(str(i) for i in range(num_classes)), weights_name=path.name,
        )
    if is_timm(architecture) or is_clip(architecture):
        _check_architecture(architecture)  # the package and the name, before anything is read
        if weights is None:
            raise ModelError(f"{architecture} needs weights: upload a .safetensors/.pt/.pth state_dict as "
                             f"{'timm' if is_timm(architecture) else 'open_clip'} saves it, or choose '{RANDOM}' "
                             "(an untrained baseline).")
    if weights is None:
        if architecture == PROGRAM:
            raise ModelError("'program' needs a file: a TorchScript archive, a pickled module, a torch.export "
                             "program or an ONNX graph.")
        _check_architecture(architecture)
        raise ModelError(
            f"{architecture} needs weights: upload a .safetensors/.pt/.pth state_dict, or choose "
            f"'{PRETRAINED}' (downloads torchvision's) or '{RANDOM}' (an untrained baseline)."
        )
    if architecture == PROGRAM or str(weights) not in (PRETRAINED, RANDOM):
        path = Path(weights).expanduser()
        try:
            state = read_state_dict(path)
        except CodeCarryingFile as exc:
            if not trusted_enabled():
                raise ModelError(f"{exc} (An operator can allow such files on a trusted install by setting "
                                 f"{ENV_VAR}=1; they then run in a separate process.)") from None
            return _program(path, exc.kind)
        if architecture == PROGRAM:
            raise ModelError(f"{path.name} holds plain weights; choose its architecture (e.g. resnet18) instead of "
                             f"'{PROGRAM}'.")
    if is_timm(architecture):
        return _timm(architecture, str(weights), None if str(weights) in (PRETRAINED, RANDOM) else (state, path))
    if is_clip(architecture):
        return _clip(architecture, str(weights), None if str(weights) in (PRETRAINED, RANDOM) else (state, path))
    if str(weights) == PRETRAINED:
        return _pretrained(architecture)
    if str(weights) == RANDOM:
        import torch

        task = _check_architecture(architecture)
        with SEEDED, torch.random.fork_rng(devices=[]):  # seed 0 for this build only, one build at a time
            torch.manual_seed(0)
            # googlenet/inception warn that their init will change unless told which one to use.
            module = _build(architecture,
                            **({"init_weights": True} if architecture in ("googlenet", "inception_v3") else {}))
        if task == "detection":
            return _detection_model(architecture, module, "random:seed0", RANDOM)
        return LoadedModel(architecture=architecture, module=module.eval(),
                           preprocessing=default_preprocessing(architecture), weights_sha256="random:seed0",
                           num_classes=_num_outputs(module, task), weights_name=RANDOM, task=task)
    task = _check_architecture(architecture)
    module, num_classes = _from_state(architecture, task, state, path.name)
    if task == "detection":
        return _detection_model(architecture, module, sha256_file(path), path.name)
    return LoadedModel(
        architecture=architecture, module=module.eval(), preprocessing=default_preprocessing(architecture),
        weights_sha256=sha256_file(path), num_classes=num_classes, weights_name=path.name, task=task,
    )


def _timm(architecture: str, weights: str, file: tuple[dict[str, torch.Tensor], Path] | None) -> LoadedModel:
    """A timm model: ``weights`` a state dict read from ``file``, ``random`` (seed 0) or ``pretrained``."""
    name = check_timm(architecture)
    notes: list[str] = []
    if file is not None:
        state, path = file
        module, notes = timm_from_state(name, state, path.name)
        sha, weights_name = sha256_file(path), path.name
    elif weights == PRETRAINED:
        module = timm_pretrained(name)
        cfg = getattr(module, "pretrained_cfg", {}) or {}
        sha = weights_name = f"timm:{cfg.get('architecture', name)}.{cfg.get('tag', '')}".rstrip(".")
    else:
        import torch

        with SEEDED, torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module, sha, weights_name = build_timm(name), "random:seed0", RANDOM
    preprocessing, more = timm_preprocessing(module)
    num_classes = int(getattr(module, "num_classes", 0) or 0)
    if not num_classes:
        more.append("The weights have no classifier: features only, no predictions.")
    return LoadedModel(architecture=architecture, module=module.eval(), preprocessing=preprocessing,
                       weights_sha256=sha, num_classes=num_classes or None, weights_name=weights_name,
                       notes=tuple(notes + more), task="classification" if num_classes else "embedding",
                       prefix_tokens=prefix_tokens(module))


def _clip(architecture: str, weights: str, file: tuple[dict[str, torch.Tensor], Path] | None) -> LoadedModel:
    """An open_clip model's image tower: ``weights`` a whole CLIP state dict read from ``file`` (both
    towers, as open_clip saves it) or ``random`` (seed 0, as :func:`~embedviz.extract.clip.text_tower`
    builds it, so the text queries match); ``pretrained`` is refused (it would download)."""
    from embedviz.extract.clip import (
        PRETRAINED_CLIP,
        build_clip,
        clip_model,
        clip_preprocessing_values,
        load_clip_state,
    )

    if weights == PRETRAINED:
        raise ModelError(PRETRAINED_CLIP)
    if file is not None:
        state, path = file
        model = build_clip(architecture)
        load_clip_state(model, state, path.name)
        sha, weights_name = sha256_file(path), path.name
    else:
        model, sha, weights_name = clip_model(architecture, RANDOM), "random:seed0", RANDOM
    values = clip_preprocessing_values(architecture, model)
    values.update(mean=tuple(values["mean"]), std=tuple(values["std"]))
    visual = model.visual.eval()
    tokens = 1 if getattr(visual, "class_embedding", None) is not None else 0
    return LoadedModel(architecture=architecture, module=visual, preprocessing=Preprocessing(**values),
                       weights_sha256=sha, weights_name=weights_name, task="embedding", prefix_tokens=tokens,
                       notes=("The image tower of a vision-language model: its output is the image embedding that "
                              "text queries are compared with; no predictions.",))


def fit_to_images(model: LoadedModel, collection: "ImageCollection") -> LoadedModel:  # noqa: F821
    """The raw-pixels model fed as ``collection``'s images are, judged from the headers of a few of them
    spread through it (:func:`embedviz.data.images.image_shapes`): a folder of 28x28 grey digits gives 784
    values, not 3,072 of three identical channels upscaled (see :func:`pixels_preprocessing`). Any other
    model comes back as it is. The feature key hashes the preprocessing, so features made either way
    are never mixed."""
    if not model.is_pixels:
        return model
    from embedviz.data.images import image_shapes

    return model.with_preprocessing(pixels_preprocessing(image_shapes(collection)))


def needs_weights(architecture: str, weights: str | Path | None) -> bool:
    """Whether ``architecture`` is still waiting for its weights (every model but demo and pixels needs them)."""
    return weights is None and architecture not in (DEMO, PIXELS)


def _detection_model(architecture: str, detector: nn.Module, sha: str, name: str) -> LoadedModel:
    """A detector's backbone as a feature extractor, fed as the detector's own transform normalises."""
    transform = detector.transform
    mean, std = tuple(float(m) for m in transform.image_mean), tuple(float(s) for s in transform.image_std)
    size = min(int(transform.min_size[0]), 320)  # detectors run at 300-800 px; 320 keeps extraction quick
    return LoadedModel(architecture=architecture, module=detector.backbone.eval(),
                       preprocessing=Preprocessing(size=size, mean=mean, std=std, resize="squash"),
                       weights_sha256=sha, weights_name=name, task="detection",
                       notes=("Only the detector's backbone is used: features, no predictions.",))


def _backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detector checkpoint's backbone tensors (``backbone.`` keys); a saved backbone alone as is."""
    inner = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return inner or state


def _from_state(architecture: str, task: str, state: dict[str, torch.Tensor],
                source: str) -> tuple[nn.Module, int | None]:
    """Build ``architecture`` shaped as ``state`` says (class count, auxiliary heads), then load it.

    For a detector only the backbone is loaded from the file; its heads are never run."""
    if task == "detection":
        detector = _build(architecture)
        _load_into(detector.backbone, _backbone_state(state), source)
        return detector, None
    import torch

    with torch.device("meta"):  # a free probe for the head's name: no memory, no initialisation
        probe = _build(architecture)
    head = _head(probe, task)
    kwargs: dict[str, Any] = {}
    if head and f"{head}.weight" in state:
        kwargs["num_classes"] = checked_classes(state[f"{head}.weight"], f"{head}.weight")
    if architecture in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = any(k.startswith("aux") for k in state)
        kwargs["init_weights"] = False
    if task == "segmentation" and architecture.startswith(("deeplabv3", "fcn")):  # lraspp has no aux head
        kwargs["aux_loss"] = any(k.startswith("aux_classifier.") for k in state)
    module = _build(architecture, **kwargs)
    _load_into(module, state, source)
    return module, kwargs.get("num_classes") or _num_outputs(module, task)


def _num_outputs(module: nn.Module, task: str = "classification") -> int | None:
    head = _head(module, task)
    if head is None:
        return None
    from torch import nn

    layer = dict(module.named_modules())[head]
    return int(layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features)


def describe(model: LoadedModel) -> str:
    """A one-line summary for pages and logs."""
    if model.is_pixels:
        s = model.preprocessing.size
        return f"raw pixels ({s}x{s}x{model.preprocessing.channels})"
    if model.program:
        return f"{model.weights_name} ({model.program_format}, in a separate process)"
    classes = f", {model.num_classes} classes" if model.num_classes else ""
    part = " backbone" if model.task == "detection" else ""
    return f"{model.architecture}{part} ({model.weights_name or 'weights'}{classes})"


