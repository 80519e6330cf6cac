#!/usr/bin/env bash
# One device call: build (nvcc, sm_90a, Ninja), sanitizers on small shapes, the fast dense
# tests, the dense and decode benchmark suites, the anchors, and a ratio table printed last.
# Run from the repository root on the GPU machine; logs and JSON go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/sparseattn-out}
mkdir -p "$OUT"
ROOT=$(pwd)
BUILD=/tmp/sparseattn-build
LOG="$OUT/run.log"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
SUITES=${SUITES:-"decode dense"}
KERNELS=${KERNELS:-"auto portable"}  # auto: Hopper wgmma kernel where covered; portable: mma.sync
log() { echo "== $*" | tee -a "$LOG"; }

log "device"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee -a "$LOG"
nvcc --version | tail -2 | tee -a "$LOG"

log "build"
if ! { cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90a -DSPARSEATTN_BUILD_TESTS=ON -DSPARSEATTN_BUILD_BENCH=ON &&
       cmake --build "$BUILD" -j16; } >> "$LOG" 2>&1; then
    # Keep going past a broken file so every target that can build does.
    ninja -C "$BUILD" -k 0 >> "$LOG" 2>&1
    grep -E "error" "$LOG" | head -20
fi
BENCH="$BUILD/bench/native/sparseattn_bench"
[ -x "$BENCH" ] || { echo "benchmark did not build"; tail -40 "$LOG"; exit 1; }

log "fast kernels: registers, stack, spills (device nvcc)"
LIB=$(find "$BUILD" -name 'libsparseattn*.so*' -type f | head -1)
[ -n "$LIB" ] && cuobjdump -res-usage "$LIB" 2>&1 | grep -A1 -E 'fwd_sm(80|90)_kernel' | grep -E 'Function|REG' |
    paste - - | sed -E 's/.*Function ([^ :]+).*REG:([0-9]+) STACK:([0-9]+).*/\1 REG \2 STACK \3/' | c++filt |
    sed -E 's/void sa::cuda::fast::fwd_//; s/\(sa::cuda::fast::FwdParams\)//; s/sa::cuda::fast:://g; s/__nv_bfloat16/bf16/; s/__half/f16/' |
    sort -u | tee -a "$LOG"
[ -n "$LIB" ] && echo "HGMMA in the library: $(cuobjdump -sass "$LIB" 2>/dev/null | grep -c HGMMA)" | tee -a "$LOG"
grep -E "C75[0-9][0-9]|wgmma" "$LOG" | grep -iE "warn|serializ" | sort -u | head -10 | tee -a "$OUT/ptxas_wgmma_warnings.txt"

log "compute-sanitizer (small shapes)"
for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 "$BENCH" --suite small > "$OUT/san_$tool.log" 2>&1
    echo "$tool exit $? : $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san_$tool.log" | tail -1)" | tee -a "$LOG"
done
cat "$OUT/san_memcheck.log" >> "$LOG"; cat "$OUT/san_racecheck.log" >> "$LOG"; rm -f "$OUT"/san_*.log

if [ -x "$BUILD/native/tests/sparseattn_native_tests" ]; then
    log "fast kernel tests"
    (cd "$BUILD" && ctest -R '^fast_' --output-on-failure 2>&1 | tail -25) | tee -a "$LOG"
fi


for suite in $SUITES; do
    for kernel in $KERNELS; do
        log "bench $suite ($kernel)"
        json="$OUT/$suite.json"; [ "$kernel" = auto ] || json="$OUT/$suite-$kernel.json"
        "$BENCH" --suite "$suite" --kernel "$kernel" --json "$json" 2>&1 | tee -a "$LOG"
    done
done


SBENCH="$BUILD/bench/native/sparseattn_bench_sparse"
for suite in ${SPARSE_SUITES:-}; do
    for kernel in ${SPARSE_KERNELS:-auto}; do
        log "bench sparse $suite ($kernel)"
        "$SBENCH" --suite "$suite" --kernel "$kernel" --check "${SPARSE_CHECK:-1}" --json "$OUT/sparse-$suite-$kernel.json" 2>&1 | tee -a "$LOG"
    done
done
if [ -n "${SPARSE_SUITES:-}" ]; then
    log "sparse anchors (cuDNN dense on the same tokens, FlexAttention)"
    python3 bench/gpu/anchors_sparse.py "${SPARSE_ANCHORS:-all}" 2>&1 | grep -v Warning | tee "$OUT/anchors_sparse.txt" | tee -a "$LOG"
fi

# The dense ratio table reads the "dense" suite, or the "bar" suite (its six anchor shapes).
DENSE=""
for suite in dense bar; do
    [[ " $SUITES " == *" $suite "* ]] && [ -z "$DENSE" ] && DENSE=$suite
done
if [ -f .anchors/anchors_bench.py ] && [ -n "$DENSE" ]; then
    log "anchors"
    python3 .anchors/anchors_bench.py dense 2>&1 | grep -v Warning | tee "$OUT/anchors.txt" | tee -a "$LOG"
    log "ratio table"
    python3 bench/gpu/ratio_table.py "$OUT/$DENSE.json" "$OUT/anchors.txt" \
        $([ -f "$OUT/decode.json" ] && echo "$OUT/decode.json") 2>&1 | tee -a "$LOG"
    if [ -f "$OUT/$DENSE-portable.json" ]; then
        log "ratio table (portable mma.sync kernel)"
        python3 bench/gpu/ratio_table.py "$OUT/$DENSE-portable.json" "$OUT/anchors.txt" 2>&1 | tee -a "$LOG"
    fi
fi
