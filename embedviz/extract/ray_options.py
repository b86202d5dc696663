"""How to run an extraction on a Ray cluster (importable without Ray installed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from embedviz import settings

__all__ = ["RayOptions", "ADDRESS_VAR", "configured_address"]

#: The Ray cluster the dashboard may send extractions to (also ``[embedviz] ray_address`` in secrets.toml).
ADDRESS_VAR = "EMBEDVIZ_RAY_ADDRESS"


def configured_address(secrets: Mapping[str, Any] | None = None) -> str | None:
    """The cluster the operator named (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``, or ``local`` for one
    the server starts on its own machine), or ``None``: ``EMBEDVIZ_RAY_ADDRESS``, then ``[embedviz]
    ray_address`` in the dashboard's secrets, then ``RAY_ADDRESS`` (:func:`embedviz.settings.ray_address`)."""
    return settings.ray_address(secrets)


@dataclass(frozen=True)
class RayOptions:
    """The cluster (``address``: ``auto``, ``HOST:PORT``, ``ray://HOST:PORT``; ``None`` starts a local
    one), the number of model actors, GPUs per actor and CPU threads per actor (``None``: decided
    from the cluster's resources, see :func:`embedviz.extract.ray_engine.run_ray_engine`)."""

    address: str | None = None
    workers: int | None = None
    num_gpus_per_worker: float | None = None
    threads_per_worker: int | None = None
