#!/usr/bin/env bash
# Every GPU check in one go, on a machine with a CUDA GPU: the gpu-marked tests, extraction with
# resnet50 (per-image loop, pipeline, ceiling), PCA and features against the CPU, and the Ray engine
# with four actors sharing the one GPU. Logs and JSON figures go to OUTDIR; docs/benchmarks.md
# records them. Each step has its own time limit, so one that hangs does not cost the others.
# Usage: bash benchmarks/gpu.sh OUTDIR   (SMALL=1 shrinks every size, to try the script on a CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benchmarks/gpu.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
small=${SMALL:-0}
pick() { if [ "$small" = 1 ]; then echo "$2"; else echo "$1"; fi; }
device=$(pick cuda cpu)

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "=== $name: $*"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$out/$name.log"
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tail -n 2
python3 -c "import platform, torch, torchvision; print(platform.python_version(), torch.__version__, \
torchvision.__version__, 'cuda' if torch.cuda.is_available() else 'no cuda')"
step tests 90 python3 -m pytest -p no:cacheprovider -m gpu -q tests/extract/test_gpu.py
step extract 150 python3 -m benchmarks extract --device "$device" --model "$(pick resnet50 resnet18)" \
    --images "$(pick 2048 64)" --json "$out/extract.json"
step gpu 150 python3 -m benchmarks gpu --sizes "$(pick 100000,1000000 20000)" --images "$(pick 512 32)" \
    --model "$(pick resnet50 resnet18)" --json "$out/gpu.json"
step ray 150 python3 -m benchmarks scale --part extract --device "$device" --model "$(pick resnet50 resnet18)" \
    --images "$(pick 8192 64)" --batch-size 64 --num-gpus-per-worker "$(pick 0.25 0)" --repeat 1 \
    --json "$out/ray.json"
