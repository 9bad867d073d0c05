#!/usr/bin/env bash
# The CUDA checks, as one script for a borrowed GPU machine (its Python already holds torch): the CUDA
# test module, the interleaved harness/bare benchmarks, and full-size runs on the APSIPA 2025 metadata
# with synthetic 10 s audio (training under two protocols, then predict on the 1,100 eval clips).
# Results go to $OUT (default ./gpu-out).
#   bash benchmarks/gpu_check.sh
#   GPU_CHECK_VARIANTS="fp32+off+training" bash benchmarks/gpu_check.sh   (precision+compile+benchmark filter)
# Packages the machine lacks travel as wheels in .whl/ (soundfile, cffi, pycparser, torchinfo).
set -uo pipefail
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 || {
    cat "$OUT/install.log"; exit 1; }
nvidia-smi -L
python3 -c "import torch, ascbench; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'ascbench', ascbench.__version__)"
export ASCBENCH_BENCH_CACHE=/tmp/bench-cache PYTHONUNBUFFERED=1
step() { echo "== $1 ($(date +%T))"; }

step "CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_device.py 2>&1 | tail -3

# Each variant: precision+compile+the benchmarks' -k filter (words joined by '+')+timeout seconds.
variants="${GPU_CHECK_VARIANTS:-fp32+off+training+or+inference+or+data+200 bf16+off+training+or+inference+120 fp32+default+training+and+not+se-trans+170}"
for variant in $variants; do
    IFS=+ read -r precision compile rest <<<"$variant"
    limit="${rest##*+}"
    filter="${rest%+*}"
    step "benchmarks on cuda: precision $precision, compile $compile"
    ASCBENCH_BENCH_DEVICE=cuda ASCBENCH_BENCH_PRECISION=$precision ASCBENCH_BENCH_COMPILE=$compile \
        timeout "$limit" python3 -m pytest -q -p no:cacheprovider benchmarks/test_training_bench.py \
        -k "${filter//+/ }" --benchmark-json="$OUT/bench-cuda-$precision-$compile.json" \
        > "$OUT/bench-cuda-$precision-$compile.log" 2>&1
    sed -n '/harness \/ bare-PyTorch ratios/,/^-* benchmark/p' "$OUT/bench-cuda-$precision-$compile.log" | head -12
done

step "full-size runs on cuda (8,700 dev rows, synthetic 10 s audio), then predict the 1,100 eval clips"
timeout "${GPU_CHECK_FULL_S:-200}" python3 benchmarks/full_size_run.py --device cuda --workers 16
step "done"
