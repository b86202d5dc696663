"""Extraction on a Ray cluster: the same work as :func:`embedviz.extract.engine.run_engine`, as a Ray Data
pipeline.

Each row of the dataset is one batch of images (the same batches the local engine makes, so
batch for batch the model sees the same inputs and the features come out bit for bit the same).
Ray tasks decode and preprocess a batch on any node's CPUs (:func:`embedviz.extract.engine.decode_batch`);
an actor pool holds the model (:class:`embedviz.extract.engine.Forward`, one per GPU, or one per CPU node)
and streams features back. Ray Data bounds what is in flight (backpressure), restarts an actor
that dies and retries its batch. The driver writes each finished shard as Parquet into the work
folder (a local path, or a URI such as ``s3://`` that every node sees), so a run that is stopped
or killed resumes from the shards already there.

``ray`` is optional: ``pip install -r requirements-ray.txt``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from embedviz import settings
from embedviz.data.images import ImageCollection
from embedviz.errors import DataError, EmbedVizError, ModelError
from embedviz.extract.engine import EngineResult, Forward, ShardPlan, assemble, auto_batch_size, decode_batch
from embedviz.extract.models import LoadedModel
from embedviz.extract.ray_options import RayOptions
from embedviz.progress import ProgressCallback, report

__all__ = ["RAY_MISSING", "RayOptions", "ray_available", "connect", "run_ray_engine", "cluster_summary"]

RAY_MISSING = ("The Ray engine needs Ray, which is not installed: pip install -r requirements-ray.txt "
               "(or pip install 'embedviz[ray]').")
#: Blocks the list of batches is cut into: small enough to stream, few enough to schedule.
MAX_BLOCKS = 4_096


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _ray():
    if not ray_available():
        raise EmbedVizError(RAY_MISSING)
    import ray

    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``), or start a
    local one on this machine when no address is given and none is configured
    (:func:`embedviz.settings.ray_address`: ``EMBEDVIZ_RAY_ADDRESS``, the dashboard's secrets, ``RAY_ADDRESS``).
    Already connected: nothing to do."""
    ray = _ray()
    if ray.is_initialized():
        return
    import ray.data

    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    address = address or settings.ray_address()
    if address == "local":
        address = None
    # Ray Data's notices (progress bars off, execution plans) are for Ray's own users; ours get one
    # progress line and the errors.
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        if address:
            ray.init(address=address, **options)
        else:  # a cluster of this machine alone: no metrics agents, no usage report (they take cores)
            for name in ("RAY_enable_metrics_collection", "RAY_USAGE_STATS_ENABLED"):
                os.environ.setdefault(name, "0")
            ray.init(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise EmbedVizError(f"Cannot reach a Ray cluster at {address}: {first}. Check the address "
                            "(ray status on the head node prints it) and that this machine can reach it.") from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # progress goes to our callback
    context.print_on_execution_start = False
    # Ray Data's own bookkeeping costs a few percent of a core per job; nothing here reads it.
    context.enable_auto_log_stats = False
    context.enable_get_object_locations_for_metrics = False
    context.enable_per_node_metrics = False


def cluster_summary() -> dict[str, float]:
    """CPUs, GPUs and nodes of the connected cluster."""
    ray = _ray()
    resources = ray.cluster_resources()
    return {"cpus": float(resources.get("CPU", 0)), "gpus": float(resources.get("GPU", 0)),
            "nodes": float(len([n for n in ray.nodes() if n.get("Alive")]))}


def _decode(row: dict, preprocessing) -> dict:
    """A Ray task: one batch of files decoded and preprocessed."""
    good, x, bad = decode_batch([Path(p) for p in row["paths"]], preprocessing, int(row["start"]))
    return {"start": int(row["start"]), "index": np.asarray(good, np.int64),
            "x": x.numpy() if x is not None else np.zeros((0, 1), np.float32), "bad": json.dumps(bad)}


class _Embedder:
    """A Ray actor: the model, loaded once, through :class:`Forward` (the local engine's code)."""

    def __init__(self, model: LoadedModel, layers: list[str], pooling: str, flatten_limit: int,
                 logits_node: str | None, batch_size: int, threads: int | None) -> None:
        torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.layers = layers
        self.forward = Forward(model, layers, device, pooling=pooling, flatten_limit=flatten_limit,
                               logits_node=logits_node, batch_size=batch_size)

    def __call__(self, row: dict) -> dict:
        index = np.asarray(row["index"], np.int64)
        out = {"start": row["start"], "index": index, "bad": row["bad"], "device": str(self.forward.device)}
        if len(index):
            with torch.inference_mode():
                feats, logits = self.forward(torch.from_numpy(np.ascontiguousarray(row["x"])))
        else:
            feats, logits = {layer: np.zeros((0, 1), np.float32) for layer in self.layers}, None
        for i, layer in enumerate(self.layers):
            out[f"f{i}"] = feats[layer]
        out["logits"] = logits if logits is not None else np.zeros((0, 1), np.float32)
        out["notes"] = json.dumps(self.forward.notes)
        return out


def run_ray_engine(
    collection: ImageCollection,
    model: LoadedModel,
    layers: list[str],
    options: RayOptions | None = None,
    *,
    batch_size: int | None = None,
    pooling: str = "avg",
    flatten_limit: int = 8192,
    logits_node: str | None = None,
    work_dir: Path | str | None = None,
    shard_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> EngineResult:
    """Every image through ``model`` on the Ray cluster at ``options.address`` (see :func:`connect`).

    ``options.workers`` model actors (default: one per ``num_gpus_per_worker`` GPUs of the cluster,
    or one on a cluster without GPUs), each using ``threads_per_worker`` CPU threads on a CPU node
    (default: all of its node's cores). The work folder and the result are the local engine's.
    """
    options = options if options is not None else RayOptions()
    if model.program:
        raise ModelError("A model file that carries its own code runs on the local engine only (it is run in "
                         "an isolated process on this machine); use --engine local.")
    connect(options.address)
    import ray.data

    workers, num_gpus_per_worker = options.workers, options.num_gpus_per_worker
    cluster = cluster_summary()
    gpus = cluster["gpus"]
    if num_gpus_per_worker is None:
        num_gpus_per_worker = 1.0 if gpus else 0.0
    if num_gpus_per_worker > 0 and gpus < num_gpus_per_worker:
        raise EmbedVizError(f"The cluster has {gpus:g} GPUs, fewer than the {num_gpus_per_worker:g} asked for per "
                            "worker; use --num-gpus-per-worker 0 to run on CPUs.")
    if workers is None:
        workers = max(1, int(gpus // num_gpus_per_worker)) if num_gpus_per_worker > 0 else 1
    device = torch.device("cuda") if num_gpus_per_worker > 0 else torch.device("cpu")
    batch_size = batch_size or auto_batch_size(device)
    job = ShardPlan.begin(len(collection), layers, batch_size, shard_size, work_dir, progress)
    total, shard_size, shards = job.total, job.shard_size, job.shards
    done = job.resumed

    paths = [str(p) for p in collection.paths()]
    batches = [{"start": b, "paths": paths[b:min(b + batch_size, job.end(s))]}
               for s in job.todo for b in range(s, job.end(s), batch_size)]
    results: dict[int, tuple] = {}
    notes: list[str] = []
    used = str(device)
    if batches:
        ds = ray.data.from_items(batches, override_num_blocks=min(len(batches), MAX_BLOCKS))
        # Decoding runs beside the model (not fused into its actor), on the CPUs the actors leave;
        # more decode tasks than that only take cores from the model (measured: 0.66x against 0.9x).
        decoders = max(1, int(cluster["cpus"]) - workers)
        ds = ds.map(_decode, fn_kwargs={"preprocessing": model.preprocessing}, num_cpus=0.5,
                    compute=ray.data.TaskPoolStrategy(size=decoders))
        ds = ds.map(_Embedder, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                    num_gpus=num_gpus_per_worker or None,
                    fn_constructor_kwargs=dict(model=model, layers=layers, pooling=pooling,
                                               flatten_limit=flatten_limit, logits_node=logits_node,
                                               batch_size=batch_size, threads=options.threads_per_worker))
        pending: dict[int, dict[int, dict]] = {}
        expected = {s: len(range(s, job.end(s), batch_size)) for s in job.todo}
        with_logits = logits_node is not None
        for row in ds.iter_rows():
            start = int(row["start"])
            shard = start - start % shard_size
            pending.setdefault(shard, {})[start] = row
            used = row["device"]
            for note in json.loads(row["notes"]):
                if note not in notes:
                    notes.append(note)
            if len(pending[shard]) == expected[shard]:  # every batch of the shard is back: write it
                parts = [batch for _, batch in sorted(pending.pop(shard).items())]
                kept = [int(i) for part in parts for i in part["index"]]
                feats = {layer: [np.asarray(p[f"f{i}"], np.float32) for p in parts if len(p["index"])]
                         for i, layer in enumerate(layers)}
                logits = [np.asarray(p["logits"], np.float32) for p in parts if with_logits and len(p["index"])]
                skipped = [tuple(s) for p in parts for s in json.loads(p["bad"])]
                written = shards.write(shard, kept, feats, logits, skipped)
                if not shards.on_disk:  # else they are read back at the end, not held twice
                    results[shard] = written
            done += len(row["index"]) + len(json.loads(row["bad"]))
            report(progress, done, total, "images on the Ray cluster")

    try:
        kept, features, logits, skipped = assemble(shards, results, job.starts, layers)
    except DataError:
        raise DataError(f"The cluster's workers could read none of the images (first: {paths[0]}); on a cluster "
                        "the images must be on storage every node sees, under the same path.") from None
    return EngineResult(kept, features, logits if logits_node is not None else None, skipped,
                        f"ray ({used})", notes, job.resumed)
