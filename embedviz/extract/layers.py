"""Which layers a model offers, and which one to use when the user does not say."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

from embedviz.errors import ModelError
from embedviz.extract.models import PIXELS, LoadedModel

if TYPE_CHECKING:
    from torch import nn

__all__ = ["list_layers", "default_layer", "output_layer", "check_layer", "has_layer"]

log = logging.getLogger(__name__)


#: torch.fx tracing is not thread-safe: a tracer patches ``nn.Module.__call__`` for the whole
#: process, so two sessions tracing at once recorded each other's calls (a model listed with one
#: layer, or none) or failed ("CURRENT_PATCHER is None"). Every trace in embedviz holds this lock.
TRACING = threading.RLock()


_traced: "weakref.WeakKeyDictionary[nn.Module, tuple[str, ...]]" = weakref.WeakKeyDictionary()


def _node_names(module: nn.Module) -> tuple[str, ...]:
    """Tracing costs tens of milliseconds and pages ask several times a rerun: once per module, kept only
    while the module lives (a cache of the modules themselves kept 16 whole models alive)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    with TRACING:
        found = _traced.get(module)
        if found is not None:
            return found
        _, eval_nodes = get_graph_node_names(module)
        names = tuple(n for n in eval_nodes if n != "x")
        if not names:  # never kept: the next call traces again
            raise RuntimeError("tracing found no layers")
        _traced[module] = names
    return names


def list_layers(model: LoadedModel) -> list[str]:
    """The graph nodes features can be taken from, in execution order (torchvision names)."""
    if model.program:
        return list(model.program_layers)
    if model.module is None:
        return [PIXELS]
    try:
        return list(_node_names(model.module))
    except Exception as exc:  # fx tracing runs the model's own code, so any error can come out of it
        log.warning("fx tracing of %s failed", model.architecture, exc_info=True)
        raise ModelError(f"Could not trace {model.architecture} to list its layers ({exc}).") from None


def output_layer(model: LoadedModel) -> str | None:
    """The node whose output is the model's output (the logits, for a classifier)."""
    layers = list_layers(model)
    return layers[-1] if model.module is not None and layers else None  # programs report logits themselves


def default_layer(model: LoadedModel) -> str:
    """The input of the final classifier: the node just before the last ``nn.Linear``.

    For ResNets that is ``flatten``, for VGG ``classifier.5``, for the demo CNN ``classifier.1``;
    for segmentation models, the last node of the encoder (``backbone.``). Falls back to the node
    before the output.

    A timm model with its classifier gives its pooled pre-logits the same way (``global_pool.flatten``,
    ``head.drop``; for a ViT ``head_drop``: the CLS token after the final norm). An ``embedding`` model
    (a CLIP image tower, a timm backbone whose weights have no classifier) gives its output: the image
    embedding text queries are compared with (``matmul``, after the projection), or timm's pooled
    pre-logits (a ViT's CLS token). A ViT's mean of patch tokens is its final norm's token map (timm's
    ``norm``, open_clip's ``ln_post``) with ``avg`` pooling: the CLS and register tokens are left out of that average
    (:attr:`LoadedModel.prefix_tokens`), as timm's own ``global_pool="avg"`` does.
    """
    layers = list_layers(model)
    if not layers:
        raise ModelError(f"{model.architecture} has no layers to take features from; choose another model file.")
    if model.program:
        return layers[0]  # "output": what the file's forward returns
    if model.module is None:
        return PIXELS
    if model.task == "segmentation":  # the last encoder layer
        backbone = [n for n in layers if n.startswith("backbone.")]
        if backbone:
            return backbone[-1]
    if model.task == "embedding":  # the model's output is the embedding
        return layers[-1]
    if model.task == "detection":  # the deepest map of the body, before a feature pyramid
        body = [n for n in layers if n.startswith("body.")]
        return body[-1] if body else layers[-1]
    from torch import nn

    last_linear = None
    for name, module in model.module.named_modules():
        if isinstance(module, nn.Linear) and name in layers:
            last_linear = name
    anchor = last_linear if last_linear is not None else layers[-1]
    index = layers.index(anchor)
    return layers[index - 1] if index > 0 else layers[index]


def check_layer(model: LoadedModel, layer: str | None) -> str:
    """``layer`` if the model has it, the default if ``None``; otherwise a clear error."""
    if layer is None:
        return default_layer(model)
    layers = list_layers(model)
    if not has_layer(layers, layer):
        near = [n for n in layers if layer.split(".")[0] in n][:5] or layers[-5:]
        raise ModelError(
            f"{model.architecture} has no layer {layer!r}; try one of {', '.join(near)} "
            "(python -m embedviz layers --model ... lists all)."
        )
    return layer


def has_layer(layers: "list[str] | tuple[str, ...]", layer: str) -> bool:
    """Whether features can be taken at ``layer``: one of ``layers`` (graph nodes), or a module's name
    (``layer4``), which torchvision takes for the output of its last node."""
    return layer in layers or any(n.startswith(layer + ".") for n in layers)
