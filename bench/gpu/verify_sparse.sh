#!/usr/bin/env bash
# One device call: build, ctest, the NUnit bundle, compute-sanitizer over the tests matching
# SAN_FILTER (default pbs), then the sparse suites (SUITES, default "na bs") and their anchors.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
B=/tmp/b
SANITIZE_TOOLS="memcheck racecheck" bash bench/gpu/run_gpu_tests.sh --build $B --results "$OUT/tests" \
  --tests-tar artifacts/gpu-bundle/tests-linux-x64.tar.gz --sanitize-filter "${SAN_FILTER:-pbs}" \
  --sanitize-timeout "${SAN_T:-100}" > "$OUT/tests.stdout" 2>&1
tail -25 "$OUT/tests.stdout"
grep -E "Failed|failed" "$OUT/tests/ctest.log" | head
LIB=$B/native/libsparseattn.so
cuobjdump -res-usage "$LIB" 2>&1 | grep -A1 -E 'fwd_sm(80|90)_kernel' | grep -E 'Function|REG' | paste - - |
  sed -E 's/.*Function ([^ :]+).*REG:([0-9]+) STACK:([0-9]+).*/\1 REG \2 STACK \3/' | c++filt | sed -E 's/\(sa::cuda::fast::FwdParams\)//; s/sa::cuda::fast:://g' | sort -u > "$OUT/regs.txt"
SB=$B/bench/native/sparseattn_bench_sparse
for s in ${SUITES:-na bs}; do
  timeout 200 "$SB" --suite $s --check 1 --json "$OUT/sparse-$s.json" > "$OUT/sparse-$s.log" 2>&1
  echo "== $s rc=$?"; cat "$OUT/sparse-$s.log" | tail -20
done
for a in ${ANCH:-na bs}; do timeout 200 python3 bench/gpu/anchors_sparse.py $a 2>&1 | grep -v Warning | tee -a "$OUT/anchors.txt"; done
