#!/usr/bin/env bash
# The GPU checks of issue 13 as one prepared run (~6-8 minutes on an H100/H200):
#   1. the CUDA tests (tests/study/train/test_cuda.py: fast path = CUDA graph and equal to the eager
#      loop, packs on CUDA equal to unpacked trials, no host sync per step, bf16 runs);
#   2. bench/step_overhead.py --device cuda (INSGD/SGD step ratio, INSGD's no-sync check),
#      fp32 and bf16;
#   3. bench/gpu_throughput.py (eager / fast / packs of 4, 16, 64, SGD and INSGD; Ray rows
#      when ray is installed; vmap vs hand-fused at K=16), fp32, then bf16 for the fast path
#      and packs.
# Every figure goes to $OUT (the device tool's output folder) or ./bench-results: env.txt,
# summary.txt, cuda_tests.txt, step_overhead.txt, throughput.txt, throughput_*.json.
#
# Usage: bash bench/gpu_check.sh            (python: $PYTHON, else python3 with torch)
# The GPU image has torch but not ray/mlflow/pydantic: nothing here needs them (the Ray row
# is skipped without ray). A failing step does not stop the later ones.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-bench-results}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"
step() { echo "== $(date +%T) $*" | tee -a "$SUMMARY"; }
status() { echo "   exit $1" | tee -a "$SUMMARY"; }

step "environment"
{ nvidia-smi; "$PY" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } > "$OUT_DIR/env.txt" 2>&1
status $?
tail -n 2 "$OUT_DIR/env.txt" | tee -a "$SUMMARY"

step "CUDA tests"
timeout 240 "$PY" -m pytest -q -rs -p no:cacheprovider -o addopts="" \
    tests/study/train/test_cuda.py \
    "tests/study/train/test_train.py::test_device_cuda_when_unavailable_or_available" \
    > "$OUT_DIR/cuda_tests.txt" 2>&1
status $?
tail -n 3 "$OUT_DIR/cuda_tests.txt" | tee -a "$SUMMARY"

step "INSGD step overhead on CUDA (fp32, bf16)"
{
    timeout 90 "$PY" bench/step_overhead.py --device cuda --blocks 12
    timeout 90 "$PY" bench/step_overhead.py --device cuda --blocks 12 --bf16
} > "$OUT_DIR/step_overhead.txt" 2>&1
status $?
grep -E "^cuda|sync check" "$OUT_DIR/step_overhead.txt" | tee -a "$SUMMARY"

step "throughput, fp32"
timeout 300 "$PY" bench/gpu_throughput.py --device cuda --packs 4,16,64 --ray-trials 4 \
    --fusion 16 --json "$OUT_DIR/throughput_fp32.json" > "$OUT_DIR/throughput.txt" 2>&1
status $?

step "throughput, bf16 (fast path and packs, INSGD)"
timeout 150 "$PY" bench/gpu_throughput.py --device cuda --precision bf16 --rows fast,pack \
    --packs 16,64 --optimizers insgd --json "$OUT_DIR/throughput_bf16.json" \
    >> "$OUT_DIR/throughput.txt" 2>&1
status $?
grep -vE "Warning|warn" "$OUT_DIR/throughput.txt" | tee -a "$SUMMARY"
step "done"
