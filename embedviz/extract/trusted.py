"""Models that carry code (TorchScript, whole pickled modules, ``torch.export`` programs, ONNX),
for a trusted local install only, and always in a separate process.

They are refused unless an operator sets ``EMBEDVIZ_TRUSTED_MODELS=1``: loading them runs
code from the file. When allowed, the file is opened only by a child process
(``python -m embedviz.extract.trusted``), which lists its layers or extracts features and writes plain
arrays back; the server never imports the file, and a crash in it ends that job, not the server.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from embedviz import settings
from embedviz.errors import Cancelled, ModelError
from embedviz.progress import ProgressCallback, report

__all__ = ["ENV_VAR", "trusted_enabled", "FORMATS", "ProgramResult", "inspect_program", "run_program"]

ENV_VAR = "EMBEDVIZ_TRUSTED_MODELS"
#: What each format is called in messages.
FORMATS = {"torchscript": "a TorchScript archive", "export": "a torch.export program",
           "pickle": "a whole pickled module", "onnx": "an ONNX graph"}
OUTPUT = "output"
log = logging.getLogger(__name__)
_INSPECT_SECONDS = 300


def trusted_enabled() -> bool:
    """Whether the operator allowed code-carrying model files on this install."""
    return settings.trusted_models()


def _child(args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedviz.extract.trusted", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _failure(stderr: str, returncode: int) -> ModelError:
    """The child's own one-line message, or what killed it. Everything it wrote (a traceback of the
    program's own error) goes to the server's log."""
    if stderr.strip():
        log.warning("The model process ended with exit status %d:\n%s", returncode, stderr.strip())
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    said = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    if said:
        return ModelError(said[-1])
    last = lines[-1][:200] if lines else f"exit status {returncode}"
    return ModelError(f"The model process failed ({last}).")


def inspect_program(path: str | Path, fmt: str) -> dict[str, Any]:
    """The program's layers (``output`` first) and default layer, found by a child process."""
    try:
        done = _child(["inspect", str(path), fmt], timeout=_INSPECT_SECONDS)
    except subprocess.TimeoutExpired:
        raise ModelError(f"Opening {Path(path).name} took over {_INSPECT_SECONDS} s; gave up.") from None
    if done.returncode != 0:
        raise _failure(done.stderr, done.returncode)
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class ProgramResult:
    features: np.ndarray
    logits: np.ndarray | None
    kept: list[int]
    skipped: list[tuple[int, str]]


def run_program(path: str | Path, fmt: str, images: Sequence[Path], preprocessing: dict[str, Any], layer: str,
                *, batch_size: int = 64, progress: ProgressCallback | None = None) -> ProgramResult:
    """Extract features in a child process; its progress lines drive ``progress`` (which may cancel)."""
    with tempfile.TemporaryDirectory(prefix="embedviz-program-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"path": str(path), "format": fmt, "images": [str(p) for p in images],
                                   "preprocessing": preprocessing, "layer": layer, "batch_size": batch_size,
                                   "out": str(Path(tmp) / "out.npz")}))
        child = subprocess.Popen([sys.executable, "-m", "embedviz.extract.trusted", "extract", str(job)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONWARNINGS": "ignore"})
        try:
            for line in child.stdout:
                if line.startswith("progress "):
                    done, total = map(int, line.split()[1:3])
                    report(progress, done, total, "images (in the model process)")
        except Cancelled:
            child.kill()
            child.wait()
            raise
        stderr = child.stderr.read()
        if child.wait() != 0:
            raise _failure(stderr, child.returncode)
        with np.load(Path(tmp) / "out.npz", allow_pickle=False) as out:
            logits = out["logits"] if out["logits"].size else None
            skipped = json.loads(str(out["skipped"]))
            return ProgramResult(out["features"].astype(np.float32), logits, out["kept"].tolist(),
                                 [(int(i), str(r)) for i, r in skipped])


# --- the child process ------------------------------------------------------------------------


def _load(path: str, fmt: str):
    import torch

    if fmt == "torchscript":
        return torch.jit.load(path, map_location="cpu").eval()
    if fmt == "export":
        return torch.export.load(path).module()
    if fmt == "pickle":
        return torch.load(path, map_location="cpu", weights_only=False).eval()
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("ONNX models need onnxruntime: pip install onnxruntime.") from None
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    raise ModelError(f"Unknown program format {fmt!r}.")


def _layers(model, fmt: str) -> list[str]:
    """``output``, plus every named sub-module of a pickled ``nn.Module`` (hooks work there only)."""
    if fmt != "pickle":
        return [OUTPUT]
    return [OUTPUT, *(name for name, _ in model.named_modules() if name)]


def _main_output(out):
    if isinstance(out, dict):
        return out["out"] if "out" in out else next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


def _extract(job: dict[str, Any]) -> None:
    import torch

    from embedviz.data.decode import ImageRejected, open_image
    from embedviz.extract.pooling import pool
    from embedviz.extract.preprocessing import Preprocessing

    model = _load(job["path"], job["format"])
    layer = job["layer"]
    captured: dict[str, Any] = {}
    if layer != OUTPUT:
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ModelError(f"The model has no layer {layer!r}.")
        modules[layer].register_forward_hook(lambda _m, _i, out: captured.__setitem__("features", out))
    pre = Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["preprocessing"].items()})
    feats, logits, kept, skipped = [], [], [], []
    paths = job["images"]
    with torch.inference_mode():
        for start in range(0, len(paths), job["batch_size"]):
            batch, index = [], []
            for i in range(start, min(start + job["batch_size"], len(paths))):
                try:
                    batch.append(pre(open_image(paths[i])))
                    index.append(i)
                except ImageRejected as exc:
                    skipped.append((i, str(exc)))
            if batch:
                try:
                    out = _main_output(model(torch.stack(batch)))
                except Exception as exc:  # the program's own error, whatever its type: its traceback to the log
                    log.exception("The model program failed on a batch")
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                    raise ModelError(f"The model failed on inputs of shape {tuple(batch[0].shape)} ({first}); "
                                     "check the size and channels under Preprocessing.") from exc
                f = pool(captured.pop("features") if layer != OUTPUT else out).float()
                if not torch.isfinite(f).all():
                    raise ModelError(f"Layer {layer} produced NaN or infinite values.")
                feats.append(f.numpy())
                if out.ndim == 2 and out.shape[1] > 1:
                    logits.append(out.float().numpy())
                kept += index
            print(f"progress {min(start + job['batch_size'], len(paths))} {len(paths)}", flush=True)
    if not kept:
        raise ModelError("None of the images could be read.")
    np.savez(job["out"], features=np.concatenate(feats), kept=np.asarray(kept, dtype=np.int64),
             logits=np.concatenate(logits) if len(logits) == len(feats) else np.zeros(0),
             skipped=np.array(json.dumps(skipped)))


def main(argv: Sequence[str]) -> int:
    try:
        if argv[0] == "inspect":
            model = _load(argv[1], argv[2])
            print(json.dumps({"layers": _layers(model, argv[2]), "default": OUTPUT}))
        elif argv[0] == "extract":
            _extract(json.loads(Path(argv[1]).read_text()))
        else:
            raise ModelError(f"Unknown command {argv[0]!r}.")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # anything the file's own code raises: its traceback to the log
        log.exception("The model file could not be run")
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(f"error: The model file could not be run ({type(exc).__name__}: {first}).", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
