"""Reducer parameters as frozen dataclasses whose fields carry their slider bounds.

Field names are the upstream libraries' own (``perplexity``, ``n_neighbors``, ``min_dist``),
so values pass straight through. :func:`param_specs` turns a class into the list the UI
draws sliders from; :func:`make_params` checks values against those bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from embedviz.errors import ReducerError

__all__ = ["ParamSpec", "PCAParams", "TSNEParams", "UMAPParams", "param_specs", "make_params", "SCALINGS", "METRICS",
           "perplexity_limit"]

#: How features are scaled before a reducer sees them (:func:`embedviz.maps.reducers.neighbours.prepare`).
SCALINGS = ("none", "standardise", "l2")
#: Distances between feature vectors the reducers offer.
METRICS = ("euclidean", "cosine", "manhattan")


def perplexity_limit(n_points: int) -> int:
    """The largest whole perplexity t-SNE accepts for ``n_points`` (it must stay below (n - 1) / 3), at least 1."""
    return max(1, math.ceil((n_points - 1) / 3) - 1)


@dataclass(frozen=True)
class ParamSpec:
    """What a slider or select box needs to know about one parameter."""

    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def is_int(self) -> bool:
        return isinstance(self.default, int) and not isinstance(self.default, bool)

    @property
    def is_flag(self) -> bool:
        return isinstance(self.default, bool)


def _num(default: float, low: float, high: float, step: float, help: str) -> Any:
    return field(default=default, metadata={"low": low, "high": high, "step": step, "help": help})


def _choice(default: str, choices: tuple[str, ...], help: str) -> Any:
    return field(default=default, metadata={"choices": choices, "help": help})


def _flag(default: bool, help: str) -> Any:
    return field(default=default, metadata={"help": help})


_SCALING = ("How features are scaled first: none; standardise (each column to mean 0, variance 1); "
            "l2 (each row to unit length, so distances rank like cosine).")


@dataclass(frozen=True)
class GivenParams:
    """The "precomputed" method has nothing to tune: it shows the coordinates it was given."""


@dataclass(frozen=True)
class PCAParams:
    """PCA: exact below a few thousand points, randomized (scikit-learn's choice) above."""

    scaling: str = _choice("none", SCALINGS, _SCALING)


@dataclass(frozen=True)
class TSNEParams:
    perplexity: float = _num(30.0, 2.0, 100.0, 1.0, "Effective number of neighbours; 5–50 is typical. Larger keeps "
                             "more global structure.")
    early_exaggeration: float = _num(12.0, 1.0, 32.0, 1.0, "How tightly clusters form early on; 12 is standard. Not "
                                     "used when starting from the previous map.")
    learning_rate: float = _num(0.0, 0.0, 10000.0, 50.0, "Step size; 0 = automatic (points / exaggeration, as "
                                "openTSNE and scikit-learn choose).")
    n_iter: int = _num(500, 50, 2000, 50, "Most optimisation iterations after early exaggeration (a fresh start "
                       "first runs 250 of those; a start from the previous map skips them and runs at most 300); it "
                       "stops sooner once the map has converged.")
    metric: str = _choice("euclidean", METRICS, "Distance between feature vectors.")
    scaling: str = _choice("none", SCALINGS, _SCALING)
    pca_components: int = _num(50, 0, 200, 5, "Reduce features to this many PCA dimensions first (0 = off).")


@dataclass(frozen=True)
class UMAPParams:
    n_neighbors: int = _num(15, 2, 200, 1, "Size of the local neighbourhood; 5–50 is typical. Larger gives a more "
                            "global view.")
    min_dist: float = _num(0.1, 0.0, 0.99, 0.01, "How tightly points may pack; small values give tight clusters.")
    spread: float = _num(1.0, 0.5, 3.0, 0.1, "The scale of the embedded points; min_dist is relative to it.")
    densmap: bool = _flag(False, "densMAP: keep how dense each region is in feature space (slower).")
    metric: str = _choice("euclidean", METRICS, "Distance between feature vectors.")
    scaling: str = _choice("none", SCALINGS, _SCALING)
    pca_components: int = _num(50, 0, 200, 5, "Reduce features to this many PCA dimensions first (0 = off).")


def param_specs(params_class: type) -> list[ParamSpec]:
    """One :class:`ParamSpec` per field, in declaration order."""
    specs = []
    for f in fields(params_class):
        meta = dict(f.metadata)
        specs.append(ParamSpec(name=f.name, default=f.default, help=meta.get("help", ""), low=meta.get("low"),
                               high=meta.get("high"), step=meta.get("step"), choices=meta.get("choices")))
    return specs


def make_params(params_class: type, values: dict[str, Any] | None = None) -> Any:
    """An instance from loose values (strings from a command line are fine), bounds checked."""
    values = dict(values or {})
    specs = {s.name: s for s in param_specs(params_class)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        known = ", ".join(specs) or "none"
        raise ReducerError(f"Unknown parameter {', '.join(unknown)} for {params_class.__name__}; it takes: {known}.")
    clean: dict[str, Any] = {}
    for name, value in values.items():
        spec = specs[name]
        if isinstance(spec.default, bool):
            flag = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}.get(
                str(value).lower())
            if flag is None:
                raise ReducerError(f"{name} must be true or false, not {value!r}.")
            clean[name] = flag
            continue
        if spec.choices:
            if str(value) not in spec.choices:
                raise ReducerError(f"{name} must be one of {', '.join(spec.choices)}, not {value!r}.")
            clean[name] = str(value)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ReducerError(f"{name} must be a number, not {value!r}.") from None
        if spec.is_int:
            if number != int(number):
                raise ReducerError(f"{name} must be a whole number, not {value!r}.")
            number = int(number)
        if not spec.low <= number <= spec.high:
            raise ReducerError(f"{name}={value} is outside {spec.low:g}–{spec.high:g}.")
        clean[name] = number
    return params_class(**clean)
