#!/usr/bin/env bash
# One short device call: build, the NA suite with checks, the NA anchors (cuDNN dense on the same
# tokens, FlexAttention 2-D), the fast/sparse ctest subset, racecheck on the two fast sparse tests.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
B=/tmp/bf; t0=$(date +%s)
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DSPARSEATTN_BUILD_TESTS=ON -DSPARSEATTN_BUILD_BENCH=ON > "$OUT/build.log" 2>&1 && cmake --build $B -j16 >> "$OUT/build.log" 2>&1
echo "build rc=$? $(( $(date +%s) - t0 )) s"
$B/bench/native/sparseattn_bench_sparse --suite na --check 1 2>&1 | grep -vE "^ +boxes" | tee "$OUT/na.log"
timeout 100 python3 bench/gpu/anchors_sparse.py na 2>&1 | grep -v Warning | tee "$OUT/anchors.txt"
(cd $B && timeout 50 ctest -j8 -R "fast|pbs|sparse|neighborhood" 2>&1 | tail -3) | tee "$OUT/ctest.txt"
bin=$B/native/tests/sparseattn_native_tests
for t in fast_block_sparse_matches_cpu fast_neighborhood_matches_cpu; do
  SPARSEATTN_SANITIZE=1 timeout 35 compute-sanitizer --tool racecheck --error-exitcode 9 $bin --run $t > "$OUT/race_$t.log" 2>&1
  echo "racecheck $t rc=$? $(grep -E 'RACECHECK SUMMARY' "$OUT/race_$t.log")"
done
