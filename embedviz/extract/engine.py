"""The extraction loop: a ``DataLoader`` that decodes in worker processes, the model on the best
device, several layers in one pass, and shards written as work proceeds so a killed run resumes.

Work is cut into fixed shards of ``shard_size`` images (a multiple of the batch size, so a batch
never straddles two). Each finished shard is written atomically into a work folder; a rerun with
the same inputs skips the shards already there and, batch for batch, computes exactly what the
first run would have, so the features come out bit for bit the same.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from embedviz.data.decode import ImageRejected, open_image
from embedviz.data.featureset import disk_full_error, is_disk_full
from embedviz.data.images import ImageCollection
from embedviz.errors import DataError, ModelError
from embedviz.extract.layers import TRACING
from embedviz.extract.models import LoadedModel
from embedviz.extract.pooling import POOLINGS, pool
from embedviz.progress import ProgressCallback, report

__all__ = ["EngineResult", "Forward", "Shards", "run_engine", "auto_workers", "auto_batch_size",
           "decode_chunk", "plan_shards", "decode_batch", "assemble", "ShardPlan"]

log = logging.getLogger(__name__)

def auto_workers(count: int, batch_size: int, device: torch.device | None = None) -> int:
    """Decoding processes. On a GPU the model needs no core, so every core but one decodes (on an
    H200 with 16 cores, 8 workers fed resnet50 1,075 images/s against a ceiling of 12,950); on a CPU
    one core stays with the model and at most 8 decode. Tiny jobs are not worth the start-up."""
    cores = os.cpu_count() or 2
    if device is not None and device.type == "cuda":
        return 0 if count <= 64 else max(1, min(32, cores - 1))
    if count <= 2 * batch_size:
        return 0
    return max(1, min(8, cores - 1))


def decode_chunk(count: int, batch_size: int, workers: int) -> int:
    """Images per decode task and model call: the batch size, halved while the job would give fewer
    than two tasks per worker (a short job then keeps every worker busy from the start instead of
    waiting for whole batches), never below 16, and always a divisor of the batch size, so a chunk
    never straddles two shards."""
    chunk = batch_size
    while workers and chunk % 2 == 0 and chunk // 2 >= 16 and -(-count // chunk) < 2 * workers:
        chunk //= 2
    return chunk


def auto_batch_size(device: torch.device) -> int:
    """A first guess; on CUDA out-of-memory it is halved and the batch retried."""
    return 256 if device.type == "cuda" else 32


#: Devices whose convolutions run faster channels-last: cuDNN, and oneDNN on the CPU (resnet18 at
#: 224 px on this project's 2-core CPU: 40 images/s against 30-32 contiguous).
_CHANNELS_LAST = ("cuda", "cpu")


def _move(net: torch.nn.Module | None, device: torch.device) -> torch.device:
    """The model onto ``device``, channels-last where convolutions prefer it."""
    if net is not None:
        net.to(device)
        if device.type in _CHANNELS_LAST:
            net.to(memory_format=torch.channels_last)
    return device


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it, else fp16 on CUDA; full precision elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _call(net: torch.nn.Module, x: torch.Tensor, device: torch.device, autocast_dtype) -> dict[str, torch.Tensor]:
    """One forward pass: a non-blocking copy from pinned memory, channels-last, autocast on GPUs."""
    x = x.to(device, non_blocking=True)
    if x.ndim == 4 and device.type in _CHANNELS_LAST:
        x = x.contiguous(memory_format=torch.channels_last)
    if autocast_dtype is not None:
        with torch.autocast(device.type, dtype=autocast_dtype):
            return net(x)
    return net(x)


@dataclass(frozen=True)
class _Item:
    index: int
    tensor: torch.Tensor | None
    reason: str


class _Images(torch.utils.data.Dataset):
    """Decodes and preprocesses one image (in a worker process); an unreadable file is a reason."""

    def __init__(self, paths: Sequence[Path], preprocessing) -> None:
        self.paths = list(paths)
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> _Item:
        try:
            return _Item(index, self.preprocessing(open_image(self.paths[index])), "")
        except ImageRejected as exc:
            return _Item(index, None, str(exc))


def _collate(items: list[_Item]):
    """One tensor per batch, made in the worker, so only it crosses to the main process."""
    good = [item for item in items if item.tensor is not None]
    x = torch.stack([item.tensor for item in good]) if good else None
    return [item.index for item in good], x, [(item.index, item.reason) for item in items if item.tensor is None]


@dataclass
class EngineResult:
    """Features per layer (rows = ``kept``), logits if asked, skipped (index, reason), and notes."""

    kept: list[int]
    features: dict[str, np.ndarray]
    logits: np.ndarray | None
    skipped: list[tuple[int, str]]
    device: str
    notes: list[str] = field(default_factory=list)
    resumed_images: int = 0


class Shards:
    """The work folder of one extraction: a Parquet file per shard (``shard-<start>.parquet``: the
    image ``index``, a fixed-size list column per layer ``f0``, ``f1``, ..., ``logits``; the skipped
    files as JSON in the schema's metadata), each written aside then moved into place.

    ``folder`` is a local path or a URI pyarrow opens (``s3://``, ``gs://``, ``hdfs://``) for a store
    every node of a cluster sees. ``plan.json`` holds the shard size and image count; shards of
    another plan (another batch size) are not reused.
    """

    def __init__(self, folder: Path | str | None, layers: list[str], *, shard_size: int = 0, total: int = 0) -> None:
        self.layers = layers
        self.fs = self.root = None
        if folder is None:
            return
        from pyarrow import fs as pafs

        if isinstance(folder, str) and "://" in folder:
            self.fs, self.root = pafs.FileSystem.from_uri(folder)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(Path(folder).expanduser().absolute())
        self.fs.create_dir(self.root, recursive=True)
        plan = json.dumps({"shard_size": shard_size, "total": total, "layers": layers})
        if self._read_text("plan.json") != plan:
            for info in self.fs.get_file_info(_selector(self.root)):
                if info.base_name.startswith("shard-"):
                    self.fs.delete_file(info.path)
            self._write_text("plan.json", plan)

    def _read_text(self, name: str) -> str | None:
        try:
            with self.fs.open_input_stream(f"{self.root}/{name}") as fh:
                return fh.read().decode()
        except (FileNotFoundError, OSError):
            return None

    def _write_text(self, name: str, text: str) -> None:
        try:
            with self.fs.open_output_stream(f"{self.root}/{name}") as fh:
                fh.write(text.encode())
        except BaseException as exc:
            self._discard(f"{self.root}/{name}")  # half a plan would not match the next run's: no harm, but no use
            if is_disk_full(exc):
                log.warning("Disk full writing %s/%s: %s", self.root, name, exc)
                raise disk_full_error("the extraction's plan", "nothing was extracted yet") from None
            raise

    def _discard(self, path: str) -> None:
        """Delete a file that may be half-written, if it is there."""
        try:
            self.fs.delete_file(path)
        except (FileNotFoundError, OSError):
            pass

    def finished(self) -> int:
        """How many finished shards the folder holds."""
        return sum(info.base_name.startswith("shard-") for info in self.fs.get_file_info(_selector(self.root)))

    def path(self, start: int) -> str:
        return f"{self.root}/shard-{start:010d}.parquet"

    def done(self, start: int) -> bool:
        if self.fs is None:
            return False
        from pyarrow import fs as pafs

        return self.fs.get_file_info(self.path(start)).type == pafs.FileType.File

    def write(self, start: int, kept, feats, logits, skipped) -> tuple:
        """Write one finished shard (per layer a list of batch arrays); returns it as :meth:`read` would."""
        shard = (kept, {layer: np.concatenate(feats[layer]) if feats[layer] else None for layer in self.layers},
                 np.concatenate(logits) if logits else None, skipped)
        if self.fs is None:
            return shard
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"index": pa.array(np.asarray(kept, np.int64))}
        for i, layer in enumerate(self.layers):
            columns[f"f{i}"] = _vectors(shard[1][layer], len(kept))
        if logits:
            columns["logits"] = _vectors(shard[2], len(kept))
        table = pa.table(columns).replace_schema_metadata({"embedviz_skipped": json.dumps(skipped)})
        tmp = f"{self.root}/.{start}.{uuid.uuid4().hex[:8]}.parquet"
        try:
            pq.write_table(table, tmp, filesystem=self.fs, compression="none")
            self.fs.move(tmp, self.path(start))
        except BaseException as exc:  # a shard lands whole or not at all
            self._discard(tmp)
            if is_disk_full(exc):
                log.warning("Disk full writing shard %d into %s: %s", start, self.root, exc)
                finished = self.finished()
                kept = ("no shard had finished yet" if not finished else
                        f"the {finished:,} finished shard{' is' if finished == 1 else 's are'} kept, so running "
                        "it again resumes from there")
                raise disk_full_error("a shard of the extraction", kept) from None
            raise
        return shard

    @property
    def on_disk(self) -> bool:
        """Whether finished shards are kept in a folder (else only in memory)."""
        return self.fs is not None

    def count(self, start: int) -> int:
        """Images kept in a finished shard (from its footer, without reading it)."""
        import pyarrow.parquet as pq

        return pq.read_metadata(self.path(start), filesystem=self.fs).num_rows

    def read(self, start: int):
        import pyarrow.parquet as pq

        table = pq.read_table(self.path(start), filesystem=self.fs)
        skipped = json.loads(table.schema.metadata[b"embedviz_skipped"])
        feats = {layer: _matrix(table.column(f"f{i}")) for i, layer in enumerate(self.layers)}
        logits = _matrix(table.column("logits")) if "logits" in table.column_names else None
        return table.column("index").to_numpy().tolist(), feats, logits, [tuple(s) for s in skipped]

    def remove(self) -> None:
        if self.fs is not None:
            self.fs.delete_dir(self.root)


def _selector(root: str):
    from pyarrow import fs as pafs

    return pafs.FileSelector(root, allow_not_found=True)


def _vectors(matrix: np.ndarray | None, rows: int):
    """A float32 matrix as a fixed-size list column (no rows: an empty column)."""
    import pyarrow as pa

    if matrix is None or rows == 0:
        return pa.FixedSizeListArray.from_arrays(pa.array([], pa.float32()), 1)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def _matrix(column) -> np.ndarray:
    array = column.combine_chunks()
    if len(array) == 0:
        return np.zeros((0, 0), np.float32)
    return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), array.type.list_size)


class Forward:
    """The model cut at ``layers`` on a device: a batch of images in, a float32 matrix per layer
    (pooled) and the logits out. Both engines call it, so a feature is computed one way only.

    Out of memory halves the chunk a batch is cut into, and below one image moves to the CPU
    (``notes`` says so). Outputs that are not one vector per image, or not finite, are refused.
    """

    def __init__(self, model: LoadedModel, layers: list[str], device: torch.device, *, pooling: str = "avg",
                 flatten_limit: int = 8192, logits_node: str | None = None, batch_size: int = 32) -> None:
        if pooling not in POOLINGS:
            raise DataError(f"Pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}.")
        self.model, self.layers, self.pooling, self.flatten_limit = model, layers, pooling, flatten_limit
        self.names = {layer: f"f{i}" for i, layer in enumerate(layers)}  # graph node -> output key
        self.logits_name = self.names.get(logits_node, "logits") if logits_node is not None else None
        self.net = None
        if model.module is not None:
            from torchvision.models.feature_extraction import create_feature_extractor

            nodes = self.names if self.logits_name in (None, *self.names.values()) else \
                {**self.names, logits_node: "logits"}
            # The extractor shares its submodules with ``model.module``, which the dashboard shares between
            # sessions; moving or converting them in place would change everyone's model. A private copy
            # costs 30-60 ms for resnet50 on this 2-core CPU (tracing it: 290 ms).
            with TRACING:  # torch.fx tracing is not thread-safe (see extract/layers.py)
                self.net = create_feature_extractor(copy.deepcopy(model.module), return_nodes=nodes).eval()
        self.device = _move(self.net, device)
        self.autocast_dtype = _autocast_dtype(self.device)
        self.chunk = batch_size
        self.notes: list[str] = []

    def _forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.net is None:
            return {"f0": x.reshape(len(x), -1)}
        try:
            return _call(self.net, x, self.device, self.autocast_dtype)
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, AssertionError) as exc:  # shape or dtype mismatches inside the model (timm asserts)
            if "out of memory" in str(exc).lower():
                raise torch.cuda.OutOfMemoryError(str(exc)) from None
            first = re.sub(r"Proxy\(\w+\)", "?", (str(exc).strip() or type(exc).__name__).splitlines()[0])[:140]
            raise ModelError(f"{self.model.architecture} cannot take inputs of shape {tuple(x.shape[1:])} "
                             f"({first}); check the size and channels under Preprocessing.") from None

    def _run(self, x: torch.Tensor, on_note) -> dict[str, torch.Tensor]:
        """The batch in chunks; out of memory halves the chunk, and below 1 moves to the CPU."""
        while True:
            try:
                parts = [self._forward(x[i:i + self.chunk]) for i in range(0, len(x), self.chunk)]
                return {k: torch.cat([p[k].float().reshape(len(p[k]), -1) if k in ("logits", self.logits_name)
                                      else pool(p[k], self.pooling, self.flatten_limit,
                                               self.model.prefix_tokens).float() for p in parts])
                        for k in parts[0]}
            except torch.cuda.OutOfMemoryError:
                if self.device.type == "cuda" and torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if self.chunk > 1:
                    self.chunk //= 2
                    self.notes.append(f"Out of memory on {self.device.type}; batches of {self.chunk} from now on.")
                elif self.device.type == "cpu":
                    raise ModelError("Out of memory even one image at a time on the CPU; use a smaller input "
                                     "size or a smaller model.") from None
                else:
                    self.notes.append(f"Out of {self.device.type} memory even one image at a time; continued on "
                                      "the CPU.")
                    self.device, self.autocast_dtype = _move(self.net, torch.device("cpu")), None
                if on_note is not None:
                    on_note(self.notes[-1])

    def __call__(self, x: torch.Tensor, on_note=None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Features per layer and the logits (``None`` unless asked for) of one batch."""
        out = self._run(x, on_note)
        feats = {}
        for layer in self.layers:
            f = out[self.names[layer]]
            if f.ndim != 2 or f.shape[0] != len(x):
                raise ModelError(f"Layer {layer} gave an output of shape {tuple(f.shape)} for a batch of "
                                 f"{len(x)} images; choose a layer with one output per image.")
            if not torch.isfinite(f).all():
                raise ModelError(f"Layer {layer} produced NaN or infinite values; check the weights.")
            feats[layer] = f.cpu().numpy()
        return feats, out[self.logits_name].cpu().numpy() if self.logits_name is not None else None


def plan_shards(total: int, batch_size: int, shard_size: int | None = None) -> int:
    """Images per shard: a multiple of the batch size (a batch never straddles two shards); by
    default about 16 shards a job and at most ~2,048 images each, so a kill loses little."""
    if shard_size is None:
        shard_size = batch_size * min(max(1, -(-total // (16 * batch_size))), max(1, 2048 // batch_size))
    return max(batch_size, shard_size - shard_size % batch_size)


@dataclass
class ShardPlan:
    """An extraction's plan: its shards, which of them are still to do, and how far it is already."""

    total: int
    batch_size: int
    shard_size: int
    shards: Shards
    starts: list[int]
    todo: list[int]
    resumed: int

    @classmethod
    def begin(cls, total: int, layers: list[str], batch_size: int, shard_size: int | None,
              work_dir: Path | str | None, progress: ProgressCallback | None) -> "ShardPlan":
        """Plan the shards, find those an earlier run finished, and report where the job starts."""
        if batch_size < 1:
            raise DataError("Batch size must be at least 1.")
        shard_size = plan_shards(total, batch_size, shard_size)
        shards = Shards(work_dir, layers, shard_size=shard_size, total=total)
        starts = list(range(0, total, shard_size))
        todo = [s for s in starts if not shards.done(s)]
        resumed = sum(min(s + shard_size, total) - s for s in starts if s not in todo)
        report(progress, resumed, total, "images" + (f" ({resumed:,} from an earlier run)" if resumed else ""))
        return cls(total, batch_size, shard_size, shards, starts, todo, resumed)

    def end(self, start: int) -> int:
        """One past the last image of the shard at ``start``."""
        return min(start + self.shard_size, self.total)


def decode_batch(paths: Sequence[Path], preprocessing, start: int):
    """Images ``start``, ``start + 1``, ... decoded and preprocessed, as one batch: the kept indices,
    their tensor (``None`` when none could be read) and (index, reason) for the rest."""
    images = _Images(paths, preprocessing)
    good, x, bad = _collate([images[i] for i in range(len(paths))])
    return [start + i for i in good], x, [(start + i, reason) for i, reason in bad]


def assemble(shards: Shards, results: dict[int, tuple], starts: list[int], layers: list[str]):
    """Shards in order: kept indices, features per layer, logits and skipped, for the whole job.

    Shards not in ``results`` are read from the work folder, one at a time, into arrays made once
    at their final size (a million images' features are held once, not twice)."""
    counts = [len(results[s][0]) if s in results else shards.count(s) for s in starts]
    total = sum(counts)
    if not total:
        raise DataError("None of the images could be read; see the skipped list for reasons.")
    kept: list[int] = []
    skipped: list[tuple[int, str]] = []
    features: dict[str, np.ndarray] = {}
    logits: np.ndarray | None = None
    position = 0
    for s, count in zip(starts, counts):
        k, f, lg, sk = results.pop(s) if s in results else shards.read(s)
        kept += k
        skipped += sk
        if count:
            for layer in layers:
                if layer not in features:
                    features[layer] = np.empty((total, f[layer].shape[1]), dtype=np.float32)
                features[layer][position:position + count] = f[layer]
            if lg is not None and len(lg):
                if logits is None:
                    logits = np.empty((total, lg.shape[1]), dtype=np.float32)
                logits[position:position + count] = lg
        position += count
    return kept, features, logits, skipped


def run_engine(
    collection: ImageCollection,
    model: LoadedModel,
    layers: list[str],
    *,
    device: torch.device,
    batch_size: int | None = None,
    num_workers: int | None = None,
    pooling: str = "avg",
    flatten_limit: int = 8192,
    logits_node: str | None = None,
    work_dir: Path | str | None = None,
    shard_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> EngineResult:
    """Every image through ``model``, features from each of ``layers`` (and the logits node)."""
    batch_size = batch_size or auto_batch_size(device)
    job = ShardPlan.begin(len(collection), layers, batch_size, shard_size, work_dir, progress)
    total, shard_size, shards = job.total, job.shard_size, job.shards
    forward = Forward(model, layers, device, pooling=pooling, flatten_limit=flatten_limit, logits_node=logits_node,
                      batch_size=batch_size)

    indices = [i for s in job.todo for i in range(s, job.end(s))]
    workers = auto_workers(len(indices), batch_size, forward.device) if num_workers is None else num_workers
    # From the whole job and the machine, not from what is left of it or the workers asked for: a
    # resumed job runs the same chunks, so its features are the same to the bit (cuDNN and oneDNN
    # may pick another algorithm for another batch size).
    chunk = decode_chunk(total, batch_size, auto_workers(total, batch_size, forward.device))
    dataset = torch.utils.data.Subset(_Images(collection.paths(), model.preprocessing), indices)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=chunk, num_workers=workers, collate_fn=_collate,
        pin_memory=forward.device.type == "cuda", prefetch_factor=4 if workers else None, persistent_workers=False)
    done = job.resumed
    log.info("extracting %d of %d images (%d resumed) on %s: batches of %d, %d decode workers, layers %s",
             len(indices), total, job.resumed, forward.device, chunk, workers, ", ".join(layers))

    def note(message: str) -> None:
        report(progress, done, total, message)

    results: dict[int, tuple] = {}
    shard_feats: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    shard_logits: list[np.ndarray] = []
    shard_kept: list[int] = []
    shard_skipped: list[tuple[int, str]] = []
    position = 0  # into ``indices``
    with torch.inference_mode():
        for good, x, bad in loader:
            shard_skipped += bad
            if x is not None:
                feats, logits = forward(x, note)
                for layer in layers:
                    shard_feats[layer].append(feats[layer])
                if logits is not None:
                    shard_logits.append(logits)
                shard_kept += good
            n = len(good) + len(bad)
            position += n
            done += n
            last = indices[position - 1]
            if position == len(indices) or (last + 1) % shard_size == 0:  # the shard is complete
                start = last - last % shard_size
                results[start] = shards.write(start, shard_kept, shard_feats, shard_logits, shard_skipped)
                shard_feats = {layer: [] for layer in layers}
                shard_logits, shard_kept, shard_skipped = [], [], []
            report(progress, done, total, "images")

    kept, features, logits, skipped = assemble(shards, results, job.starts, layers)
    log.info("extracted %d images (%d skipped) on %s", len(kept), len(skipped), forward.device)
    return EngineResult(kept, features, logits if forward.logits_name is not None else None,
                        skipped, str(forward.device), forward.notes, job.resumed)
