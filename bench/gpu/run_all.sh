#!/usr/bin/env bash
# One device call for everything, correctness first so a time limit cuts the least: every test
# on the GPU (run_gpu_tests.sh: build, ctest, the NUnit suite from the self-contained bundle
# when present, compute-sanitizer over the native GPU tests), then the benchmarks with their
# anchors (run_dense.sh: dense and decode suites, the sparse suites named in SPARSE_SUITES,
# anchors, ratio tables) on the same build. Results land in $OUT; the summaries print last.
set -uo pipefail
OUT=${OUT:-/tmp/sparseattn-out}
mkdir -p "$OUT"
bash bench/gpu/run_gpu_tests.sh --build /tmp/sparseattn-build --results /tmp/sparseattn-gpu-results \
  --tests-tar "${TESTS_TAR:-artifacts/gpu-bundle/tests-linux-x64.tar.gz}" "$@" > "$OUT/gpu_tests.stdout" 2>&1
tar -C /tmp/sparseattn-gpu-results -czf "$OUT/gpu-tests.tar.gz" .
bash bench/gpu/run_dense.sh > "$OUT/run_dense.stdout" 2>&1
tail -60 "$OUT/run_dense.stdout"
tail -15 "$OUT/gpu_tests.stdout"
