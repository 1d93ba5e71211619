#!/usr/bin/env bash
# One short GPU session: the CUDA-only tests (CUDA graphs of training and inference against eager),
# then the gpu part (python -m benchmarks gpu).  Logs and the JSON go to $OUT (default benchmarks/results).
#
# On a bare GPU image without the project's dependencies, put wheels in .whl/ first (Python 3.12):
#   pip download --python-version 3.12 --only-binary=:all: --no-deps -d .whl \
#       anndata zarr numcodecs tifffile imagecodecs donfig scverse-misc session-info2 \
#       legacy-api-wrap natsort array-api-compat google-crc32c msgspec \
#       pydantic pydantic-core pydantic-settings python-dotenv annotated-types typing-inspection typing-extensions tzdata pytest pluggy iniconfig packaging
# They are installed into /tmp/site (nothing else on the machine changes).
#
# Usage: OUT=/some/dir [COMPILE=1] [PARTS=trunk,train,...] [BUDGET_S=320] bash benchmarks/gpu_check.sh [extra gpu.py arguments, e.g. --budget-s 200]
# COMPILE=1 adds a second gpu.py run (~3 min: compiling DenseNet-121 takes 1–2 of them) of the trainer with torch.compile (JSON tagged "compile").
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT/gpu-card.txt"

echo "== CUDA-only tests"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider -o addopts="--import-mode=importlib" \
    tests/train/test_graph_cuda.py tests/predict/test_embedder_cuda.py > "$OUT/gpu-tests.log" 2>&1
echo "pytest exit $?" | tee -a "$OUT/gpu-tests.log"
tail -15 "$OUT/gpu-tests.log"

echo "== python -m benchmarks gpu"
# vit (timm ViT-L/16 and ViT-g/14 feature extraction) runs before the eager-training comparison.
python3 -m benchmarks gpu --out "$OUT" --parts "${PARTS:-trunk,train,reference,infer,vit,train_eager}" \
    --budget-s "${BUDGET_S:-320}" "$@" 2>&1 | tee "$OUT/gpu-bench.log"

if [ "${COMPILE:-0}" = 1 ]; then
    echo "== CUDA-only test: compiled encoder inside the captured step"
    timeout 150 python3 -m pytest -q -x -p no:cacheprovider -o addopts="--import-mode=importlib" \
        tests/train/test_compile_cuda.py > "$OUT/gpu-compile-tests.log" 2>&1
    echo "pytest exit $?" | tee -a "$OUT/gpu-compile-tests.log"
    tail -5 "$OUT/gpu-compile-tests.log"
    echo "== python -m benchmarks gpu --compile (train only)"
    python3 -m benchmarks gpu --out "$OUT" --parts train --compile --budget-s 150 --tag compile 2>&1 | tee "$OUT/gpu-compile.log"
fi
