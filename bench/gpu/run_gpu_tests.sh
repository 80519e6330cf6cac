#!/usr/bin/env bash
# Builds the native library with this machine's nvcc and runs every test on the GPU:
# the native C ABI tests (ctest), the NUnit suite from the self-contained test executable,
# and compute-sanitizer memcheck/racecheck/synccheck over the native GPU tests.
# Usage: run_gpu_tests.sh [--tests-tar FILE] [--sources DIR|FILE.tar.gz] [--results DIR]
#        [--sanitize-filter REGEX] [--nunit-args "..."] [--build DIR] [--sanitize-timeout SECONDS]
# Defaults: sources = the repository this script lives in; tests tar = artifacts/gpu-bundle/
# tests-linux-x64.tar.gz beside it; results = $OUT or ./gpu-results.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../.." 2>/dev/null && pwd)"
tests_tar=""
results="${OUT:-$PWD/gpu-results}"
sanitize_filter="${SANITIZE_FILTER:-cuda|fast}"
nunit_args=""
build=/tmp/sparseattn-gpu-build
sanitize_timeout=240
while [ $# -gt 0 ]; do
  case "$1" in
    --tests-tar) tests_tar="$2"; shift 2 ;;
    --sources) src="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --sanitize-filter) sanitize_filter="$2"; shift 2 ;;
    --nunit-args) nunit_args="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --sanitize-timeout) sanitize_timeout="$2"; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
[ -z "$tests_tar" ] && for c in "$here/tests-linux-x64.tar.gz" "$src/artifacts/gpu-bundle/tests-linux-x64.tar.gz"; do
  [ -f "$c" ] && tests_tar="$c" && break
done
if [ -f "$src" ]; then mkdir -p /tmp/sparseattn-src && tar -C /tmp/sparseattn-src -xzf "$src" && src=/tmp/sparseattn-src; fi
[ -f "$here/sources.tar.gz" ] && [ ! -f "$src/CMakeLists.txt" ] && { mkdir -p /tmp/sparseattn-src; tar -C /tmp/sparseattn-src -xzf "$here/sources.tar.gz"; src=/tmp/sparseattn-src; }
mkdir -p "$results"
summary=()

cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
archs="${CUDA_ARCHS:-${cc:-90}}"; [ "$archs" = "90" ] && archs="90a"
echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1); nvcc $(nvcc --version | grep -o 'release [0-9.]*'); archs $archs"

t0=$(date +%s)
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$archs" -DSPARSEATTN_BUILD_TESTS=ON -DSPARSEATTN_BUILD_BENCH=ON >"$results/cmake.log" 2>&1 \
  && cmake --build "$build" -j "$(nproc)" >>"$results/cmake.log" 2>&1
build_rc=$?
echo "native build rc=$build_rc in $(( $(date +%s) - t0 )) s"
if [ $build_rc -ne 0 ]; then tail -40 "$results/cmake.log"; exit 1; fi
lib="$build/native/libsparseattn.so"

ctest --test-dir "$build" -j 4 --output-junit "$results/ctest.xml" >"$results/ctest.log" 2>&1
summary+=("ctest: $(grep -E 'tests passed|tests failed' "$results/ctest.log" | tail -1)")
grep -E '\*\*\*Failed|Exception|SEGFAULT' "$results/ctest.log" | head -20

if [ -n "$tests_tar" ]; then
  rm -rf /tmp/sparseattn-tests && mkdir -p /tmp/sparseattn-tests && tar -C /tmp/sparseattn-tests -xzf "$tests_tar"
  exe="$(find /tmp/sparseattn-tests -name SparseAttn.Tests -type f | head -1)"
  chmod +x "$exe"
  SPARSEATTN_NATIVE_PATH="$lib" DOTNET_gcServer=0 "$exe" --report-trx --report-trx-filename nunit.trx \
    --results-directory "$results" $nunit_args >"$results/nunit.log" 2>&1
  echo "nunit rc=$?"
  summary+=("nunit: $(grep -iE 'total:|failed:|succeeded:|skipped:' "$results/nunit.log" | tr -s ' \n' ' ' | tail -c 200)")
  grep -E '^\s*failed ' "$results/nunit.log" | head -30
else
  summary+=("nunit: no test bundle given (run ./build.sh gpu-bundle first)")
fi

if command -v compute-sanitizer >/dev/null; then
  bin="$build/native/tests/sparseattn_native_tests"
  names=$("$bin" --list 2>/dev/null | grep -E "$sanitize_filter" | grep -vE 'large|perf' || true)
  deadline=$(( $(date +%s) + sanitize_timeout ))
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
    errs=0; n=0
    for t in $names; do
      [ "$(date +%s)" -ge "$deadline" ] && { echo "$tool: time budget reached after $n tests"; break; }
      n=$((n + 1))
      SPARSEATTN_SANITIZE=1 compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin" --run "$t" >/tmp/sanitizer-one.log 2>&1
      r=$?; cat /tmp/sanitizer-one.log >>"$results/sanitizer-$tool.log"
      # A test that makes no CUDA call leaves the sanitizer nothing to instrument (exit 255).
      grep -q "terminated before first instrumented API call" /tmp/sanitizer-one.log && grep -q "^\[  OK  \]\|^\[ SKIP \]" /tmp/sanitizer-one.log && r=0
      [ $r -ne 0 ] && [ $r -ne 77 ] && { errs=$((errs + 1)); echo "$tool: $t rc=$r"; }
    done
    summary+=("compute-sanitizer $tool: $n tests, $errs with errors")
  done
fi
printf '%s\n' "${summary[@]}" | tee "$results/summary.txt"
