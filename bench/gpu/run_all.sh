#!/usr/bin/env bash
# One device call for everything: the dense benchmark with anchors and sanitizers
# (run_dense.sh), then every test on the GPU (run_gpu_tests.sh: ctest, the NUnit suite from
# the self-contained bundle, compute-sanitizer over the native GPU tests) on the same build.
# Results land in $OUT: run_dense's files plus gpu-tests.tar.gz; the summary prints last.
set -uo pipefail
OUT=${OUT:-/tmp/sparseattn-out}
mkdir -p "$OUT"
bash bench/gpu/run_dense.sh > "$OUT/run_dense.stdout" 2>&1
tail -40 "$OUT/run_dense.stdout"
bash bench/gpu/run_gpu_tests.sh --build /tmp/sparseattn-build --results /tmp/sparseattn-gpu-results \
  --tests-tar "${TESTS_TAR:-artifacts/gpu-bundle/tests-linux-x64.tar.gz}" "$@"
tar -C /tmp/sparseattn-gpu-results -czf "$OUT/gpu-tests.tar.gz" .
rm -f "$OUT/run_dense.stdout"
