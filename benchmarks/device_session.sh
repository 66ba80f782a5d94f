#!/usr/bin/env bash
# The GPU checks of the latency model (issue 13), prepared as one command for a session that is
# lent a GPU through the `device` tool (see /work/.library/device/README.md; 15 minutes of
# device time in all, so run this once, with a timeout that leaves room for a rerun).
#
# What it measures, on whatever GPU it runs on (random weights at the presets' real shapes:
# latency depends on shapes, not values; nothing is downloaded):
#   1. environment.txt      the GPU, driver, torch / transformers / numba versions
#   2. overhead-target.json adaspec-calibrate overhead: decode passes of $TARGET at batch
#      overhead-draft.json  $BATCHES, $CONTEXT cached tokens each: pass time, the kernels' own
#                           time, the rest (the per-pass overhead this engine pays, eager)
#   3. overhead_vs_model.txt benchmarks/overhead_vs_model.py: those passes priced by the
#                           simulator's latency model on the matching GPU preset (kernels only,
#                           overhead 0) against the measured kernel time
#   4. profile.json         adaspec-calibrate latency on the $GRID grid: a calibrated profile
#                           of $TARGET + $DRAFT (adaspec-sim --profile reads it)
#   5. gpu-tests.txt        the GPU-marked tests (realrun on CUDA, the overhead's kernels)
#   log.txt                 everything the steps printed
# Record the numbers in the repository (docs/latency_model.md, "The per-pass overhead"), with
# the GPU named, and commit the JSON documents under docs/validation/.
#
# Before the call, once, in the repository's root on the developer's machine (the device has
# no simpy; everything else the steps need is in its image: torch, transformers, numba,
# numpy, scipy, pandas, tqdm, pytest, hypothesis):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl simpy==4.1.2
# Then call the device tool's `run` with carry [".whl"], timeout_s 540 and the command
#   bash benchmarks/device_session.sh
# Defaults: TARGET=random:vicuna-7b DRAFT=random:vicuna-68m DEVICE=cuda DTYPE=bfloat16
# BATCHES=1,2,4,8,16,32,64 CONTEXT=512 REPEATS=20 GRID=small; each may be set in the
# environment (DEVICE=cpu with the tiny presets runs every step on a CPU, as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
TARGET=${TARGET:-random:vicuna-7b}
DRAFT=${DRAFT:-random:vicuna-68m}
DEVICE=${DEVICE:-cuda}
DTYPE=${DTYPE:-bfloat16}
BATCHES=${BATCHES:-1,2,4,8,16,32,64}
CONTEXT=${CONTEXT:-512}
REPEATS=${REPEATS:-20}
GRID=${GRID:-small}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
exec > >(tee "$OUT/log.txt") 2>&1
step() { echo "== $(date -u +%H:%M:%S) $*"; }

step environment
{
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    fi
    $PY -c "import platform, torch, transformers, numba, numpy
print('python', platform.python_version(), '| torch', torch.__version__, '| cuda',
      torch.version.cuda, '| transformers', transformers.__version__, '| numba',
      numba.__version__, '| numpy', numpy.__version__)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(p.name, p.multi_processor_count, 'SMs', round(p.total_memory / 2**30), 'GiB')"
} | tee "$OUT/environment.txt"

step "per-pass overhead: $TARGET and $DRAFT on $DEVICE ($DTYPE)"
for which in target draft; do
    spec=$TARGET; [ "$which" = draft ] && spec=$DRAFT
    $PY -m calibrate.cli overhead --target "$spec" --device "$DEVICE" --dtype "$DTYPE" \
        --batches "$BATCHES" --context "$CONTEXT" --repeats "$REPEATS" \
        --out "$OUT/overhead-$which.json" --quiet
done

step "the simulator's kernels against the measured ones"
GPU_ARG=()
[ "$DEVICE" = cpu ] && GPU_ARG=(--gpu "${GPU_PRESET:-H100}")
$PY benchmarks/overhead_vs_model.py "$OUT/overhead-target.json" "$OUT/overhead-draft.json" \
    "${GPU_ARG[@]}" | tee "$OUT/overhead_vs_model.txt"

step "calibrated profile of $TARGET + $DRAFT ($GRID grid)"
$PY -m calibrate.cli latency --target "$TARGET" --draft "$DRAFT" --device "$DEVICE" \
    --dtype "$DTYPE" --grid "$GRID" --out "$OUT/profile.json" --quiet

step "GPU-marked tests"
$PY -m pytest -q -p no:cacheprovider -m gpu tests/realrun/test_realrun_cli.py \
    tests/calibrate/test_calibrate_overhead.py 2>&1 | tee "$OUT/gpu-tests.txt" || true

step "done: $OUT"
