"""Placing the points a sample's fit left out on a Ray cluster, batch by batch (see
:func:`embedviz.maps.reducers.reduce`'s ``placer``)."""

from __future__ import annotations

import numpy as np

from embedviz.extract.ray_engine import connect
from embedviz.maps.reducers.methods import Context

__all__ = ["place_on_cluster"]


def _place_remote(place, model, batch: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """A Ray task: one batch of points placed on a map fitted elsewhere."""
    return np.asarray(place(model, batch, Context(n_components=n_components, seed=seed)))


def place_on_cluster(address: str | None = None):
    """A placer for :func:`embedviz.maps.reducers.reduce`: the batches of points left out of a sample's
    fit are placed by Ray tasks across the cluster at ``address`` (the fitted map is sent once), and
    come back in order; the same batches give the same coordinates as placing them here."""

    def placer(place, model, batches: list[np.ndarray], ctx, on_done) -> list[np.ndarray]:
        connect(address)
        import ray

        task = ray.remote(num_cpus=1)(_place_remote)
        model_ref = ray.put(model)
        futures = [task.remote(place, model_ref, ray.put(batch), ctx.n_components, ctx.seed) for batch in batches]
        sizes = {future: len(batch) for future, batch in zip(futures, batches)}
        waiting, done = list(futures), 0
        on_done(0)
        try:
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                done += sum(sizes[f] for f in ready)
                on_done(done)  # a stop request raises here
        except BaseException:
            for future in waiting:
                ray.cancel(future)
            raise
        return ray.get(futures)

    return placer
