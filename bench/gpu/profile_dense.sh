#!/usr/bin/env bash
# One device call: build the benchmark (nvcc, sm_90a) and profile one launch of the fast dense
# kernel with Nsight Compute on one shape. Writes $OUT/ncu-<kernel>.txt.
#   bash bench/gpu/profile_dense.sh [bench shape arguments...]
# Default shape: bf16 B2 H16 S8192 D128 full. KERNEL_REGEX picks the kernel (default: the
# Hopper wgmma kernel); BENCH_KERNEL=portable profiles the mma.sync one.
set -uo pipefail
OUT=${OUT:-/tmp/sparseattn-out}
mkdir -p "$OUT"
BUILD=/tmp/sparseattn-build
KERNEL_REGEX=${KERNEL_REGEX:-fwd_sm90_kernel}
BENCH_KERNEL=${BENCH_KERNEL:-auto}
[ $# -gt 0 ] || set -- --batch 2 --heads 16 --seqlen-q 8192 --dim 128 --causal 0 --dtype bf16
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DSPARSEATTN_BUILD_TESTS=OFF -DSPARSEATTN_BUILD_BENCH=ON > "$OUT/profile-build.log" 2>&1 &&
    cmake --build "$BUILD" -j16 --target sparseattn_bench >> "$OUT/profile-build.log" 2>&1 ||
    { tail -30 "$OUT/profile-build.log"; exit 1; }
report="$OUT/ncu-$BENCH_KERNEL.txt"
ncu --kernel-name "regex:$KERNEL_REGEX" --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats \
    "$BUILD/bench/native/sparseattn_bench" "$@" --kernel "$BENCH_KERNEL" --reps 3 > "$report" 2>&1
echo "ncu exit $?: $report"
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Issue Slots Busy|No Eligible|Stall|Warp Cycles Per Issued|Executed Ipc|L1/TEX Hit|Shared" "$report" | head -40
