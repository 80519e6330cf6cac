#!/usr/bin/env bash
# SparseAttn build driver. Usage: ./build.sh <verb> [args]
#   native      configure and build the native library (CUDA backend when nvcc is found)
#   demo        the main job: run attention on the best device and check it (builds first)
#   test        native C ABI tests (ctest) + NUnit tests; ends with "N passed, N failed, N skipped"
#   bench       BenchmarkDotNet suite (CPU backend, call overhead, mask builders); args go to it
#   gpu-bench   native GPU benchmark + anchors in one go (on a machine with a GPU and PyTorch)
#   gpu-bundle  publish the test executable self-contained for linux-x64 and pack what a GPU
#               machine needs to build the native library with its own nvcc and run the tests
#   pack        NuGet packages into artifacts/packages
#   clean       remove build outputs
# Environment: SPARSEATTN_CUDA=AUTO|ON|OFF (default AUTO), CONFIG=Release|Debug (default Release),
#              CUDA_ARCHS (CMake CUDA architectures, default from cmake/SparseAttnCuda.cmake),
#              JOBS (parallel build jobs, default: all cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
CONFIG="${CONFIG:-Release}"
SPARSEATTN_CUDA="${SPARSEATTN_CUDA:-AUTO}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
NATIVE_BUILD="$ROOT/build/native"
ARTIFACTS="$ROOT/artifacts"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

native_lib_path() {
  for f in "$NATIVE_BUILD/native/libsparseattn.so" "$NATIVE_BUILD/native/libsparseattn.dylib"; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

build_native() {
  log "native build ($CONFIG, SPARSEATTN_CUDA=$SPARSEATTN_CUDA) in build/native"
  local args=(-S "$ROOT" -B "$NATIVE_BUILD" -DCMAKE_BUILD_TYPE="$CONFIG" -DSPARSEATTN_CUDA="$SPARSEATTN_CUDA")
  [ -n "${CUDA_ARCHS:-}" ] && args+=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS")
  command -v ninja >/dev/null 2>&1 && [ ! -f "$NATIVE_BUILD/Makefile" ] && args+=(-G Ninja)
  cmake "${args[@]}" >/dev/null
  cmake --build "$NATIVE_BUILD" -j "$JOBS"
  export SPARSEATTN_NATIVE_PATH
  SPARSEATTN_NATIVE_PATH="$(native_lib_path)"
}

verb_demo() {
  build_native
  log "demo"
  dotnet run -c "$CONFIG" --project src/SparseAttn.Demo -- "$@"
}

# Prints "passed failed skipped" from a JUnit XML (ctest) or TRX (Microsoft.Testing.Platform) file.
count_results() {
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
tag = root.tag.split('}')[-1]
p = f = s = 0
if tag == 'TestRun':  # TRX
    for r in root.iter():
        if r.tag.split('}')[-1] == 'UnitTestResult':
            o = r.get('outcome', '')
            if o == 'Passed': p += 1
            elif o in ('NotExecuted', 'Inconclusive', 'Skipped'): s += 1
            else: f += 1
else:  # JUnit
    for case in root.iter('testcase'):
        kids = {c.tag for c in case}
        if 'failure' in kids or 'error' in kids: f += 1
        elif 'skipped' in kids or case.get('status') in ('notrun', 'disabled'): s += 1
        else: p += 1
print(p, f, s)
PY
}

verb_test() {
  build_native
  local results="$ROOT/build/test-results"
  rm -rf "$results"; mkdir -p "$results"
  local total_p=0 total_f=0 total_s=0 p f s rc=0

  log "native C ABI tests (ctest)"
  ctest --test-dir "$NATIVE_BUILD" --output-on-failure -j "$JOBS" --output-junit "$results/ctest.xml" || rc=1
  if [ -f "$results/ctest.xml" ]; then
    read -r p f s < <(count_results "$results/ctest.xml")
    echo "ctest: $p passed, $f failed, $s skipped"
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
  else
    echo "ctest produced no results"; total_f=$((total_f + 1))
  fi

  local proj name
  for proj in tests/*/*.csproj; do
    name="$(basename "$proj" .csproj)"
    log "NUnit tests: $name (dotnet test)"
    dotnet test --project "$proj" -c "$CONFIG" \
      --results-directory "$results/$name" --report-trx --report-trx-filename "$name.trx" "$@" || rc=1
    if [ -f "$results/$name/$name.trx" ]; then
      read -r p f s < <(count_results "$results/$name/$name.trx")
      echo "$name: $p passed, $f failed, $s skipped"
      total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
    else
      echo "$name produced no results"; total_f=$((total_f + 1))
    fi
  done

  echo "$total_p passed, $total_f failed, $total_s skipped"
  [ "$total_f" -eq 0 ] && [ "$rc" -eq 0 ]
}

verb_bench() {
  build_native
  log "BenchmarkDotNet suite"
  dotnet run -c Release --project bench/SparseAttn.Benchmarks -- "${@:---filter *}"
}

verb_gpu_bench() {
  exec bash "$ROOT/bench/gpu/run_dense.sh" "$@"
}

verb_gpu_bundle() {
  local out="$ARTIFACTS/gpu-bundle"
  rm -rf "$out"; mkdir -p "$out"
  log "publishing the test executable self-contained for linux-x64"
  dotnet publish tests/SparseAttn.Tests -c "$CONFIG" -r linux-x64 --self-contained true \
    -p:PublishSingleFile=false -o "$ARTIFACTS/tests-linux-x64" >/dev/null
  tar -C "$ARTIFACTS" -czf "$out/tests-linux-x64.tar.gz" tests-linux-x64
  log "packing sources for the GPU machine's nvcc"
  git -C "$ROOT" archive --format=tar.gz -o "$out/sources.tar.gz" HEAD \
    CMakeLists.txt VERSION cmake native bench/native bench/gpu
  cp "$ROOT/bench/gpu/run_gpu_tests.sh" "$out/"
  du -sh "$out"/*
  echo "bundle: $out (see README, 'Testing on a GPU machine')"
}

verb_pack() {
  build_native
  mkdir -p "$ARTIFACTS/packages"
  log "NuGet packages"
  dotnet pack bindings/SparseAttn.Runtime.linux-x64 -c Release -o "$ARTIFACTS/packages" \
    -p:NativeLibraryPath="$(native_lib_path)"
  dotnet pack src/SparseAttn -c Release -o "$ARTIFACTS/packages"
  ls -1 "$ARTIFACTS/packages"
}

verb_clean() { rm -rf "$ROOT/build" "$ARTIFACTS"; }

verb="${1:-}"; shift || true
case "$verb" in
  native) build_native ;;
  demo) verb_demo "$@" ;;
  test) verb_test "$@" ;;
  bench) verb_bench "$@" ;;
  gpu-bench) verb_gpu_bench "$@" ;;
  gpu-bundle) verb_gpu_bundle "$@" ;;
  pack) verb_pack "$@" ;;
  clean) verb_clean ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
