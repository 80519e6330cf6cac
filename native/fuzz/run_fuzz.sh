#!/usr/bin/env bash
# Builds the libFuzzer harness over the C ABI (clang-14, AddressSanitizer + UndefinedBehaviorSanitizer,
# CPU backend) in build/fuzz and runs it for a bounded time from a copy of the seed corpus.
#   native/fuzz/run_fuzz.sh [seconds]   (default 60; FUZZ_CXX / FUZZ_CC pick the compiler)
# Exits non-zero when the fuzzer finds a crash, a sanitizer report, a leak or a slow input; the
# reproducer is left in build/fuzz/artifacts/ (rerun it with: build/fuzz/native/fuzz/sparseattn_fuzz FILE).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DURATION="${1:-60}"
BUILD="$ROOT/build/fuzz"
CXX_COMPILER="${FUZZ_CXX:-clang++-14}"
C_COMPILER="${FUZZ_CC:-clang-14}"

args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_COMPILER"
      -DCMAKE_C_COMPILER="$C_COMPILER" -DSPARSEATTN_CUDA=OFF -DSPARSEATTN_BUILD_TESTS=OFF
      -DSPARSEATTN_BUILD_BENCH=OFF -DSPARSEATTN_FUZZ=ON)
command -v ninja >/dev/null 2>&1 && [ ! -f "$BUILD/Makefile" ] && args+=(-G Ninja)
cmake "${args[@]}" >/dev/null
cmake --build "$BUILD" --target sparseattn_fuzz -j "${JOBS:-$(nproc 2>/dev/null || echo 2)}"

# The fuzzer adds what it finds to its corpus folder: a copy keeps the checked-in seeds as they are.
corpus="$BUILD/corpus"
rm -rf "$corpus"
mkdir -p "$corpus" "$BUILD/artifacts"
cp "$ROOT"/native/fuzz/corpus/* "$corpus/"
echo "==> fuzzing the C ABI for ${DURATION} s"
"$BUILD/native/fuzz/sparseattn_fuzz" "$corpus" -max_total_time="$DURATION" -timeout=10 -rss_limit_mb=2048 \
  -max_len=2048 -print_funcs=0 -artifact_prefix="$BUILD/artifacts/" -print_final_stats=1 2>&1 |
  grep -v -e '^#[0-9]' -e '^"' -e 'recommended dictionary'
exit "${PIPESTATUS[0]}"
