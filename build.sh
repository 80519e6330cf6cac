#!/usr/bin/env bash
# SparseAttn build driver. Usage: ./build.sh <verb> [args]
#   native      configure and build the native library (CUDA backend when nvcc is found)
#   demo        the main job: run attention on the best device and check it (builds first)
#   test        native C ABI tests (ctest) + NUnit tests; ends with "N passed, N failed, N skipped"
#   bench       BenchmarkDotNet suite (CPU backend, call overhead, mask builders); args go to it
#   cpu-bench   CPU backend against libtorch's CPU attention (TorchSharp-cpu) in one process, with
#               a measured FMA peak; args go to it (--reps N, --out FILE, --only SUBSTRING)
#   gpu-bench   native GPU benchmark + anchors in one go (on a machine with a GPU and PyTorch)
#   gpu-bundle  publish the test executable self-contained for linux-x64 and pack what a GPU
#               machine needs to build the native library with its own nvcc and run the tests
#   pack        NuGet packages into artifacts/packages (native library for every GPU from sm_80)
#   win-x64     SparseAttn.Runtime.win-x64 from Linux: CPU backend cross-compiled with MinGW-w64, its
#               native tests under Wine, packed CPU ONLY into artifacts/packages
#   sample      pack, then restore and run samples/HelloAttention from those packages, and
#               samples/HelloTorch as a fresh app outside the repository (TorchSharp-cpu)
#   docs        regenerate the API reference docs/api/*.md from the XML doc comments
#   report      benchmark plots (bench/plots) and the README table from bench/results
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

# Reads a JUnit XML (ctest) or TRX (Microsoft.Testing.Platform) file. Prints "passed failed skipped"
# on the first line, then a summary for people: every failure with its message (the first lines),
# and the skip reasons grouped, each once with its count.
summarize_results() {
  python3 - "$1" <<'PY'
import collections, re, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
local = lambda e: e.tag.split('}')[-1]
passed = 0
failures, skips = [], collections.Counter()
def text_of(e, names):
    for c in e.iter():
        if local(c) in names and c.text and c.text.strip():
            return c.text.strip()
    return ""
if local(root) == 'TestRun':  # TRX
    for r in root.iter():
        if local(r) != 'UnitTestResult':
            continue
        o = r.get('outcome', '')
        if o == 'Passed':
            passed += 1
        elif o in ('NotExecuted', 'Inconclusive', 'Skipped'):
            skips[text_of(r, ('Message',)) or '(no reason given)'] += 1
        else:
            failures.append((r.get('testName', '?'), text_of(r, ('Message',)) + "\n" + text_of(r, ('StackTrace',))))
else:  # JUnit
    for case in root.iter('testcase'):
        kids = {local(c): c for c in case}
        if 'failure' in kids or 'error' in kids:
            e = kids.get('failure', kids.get('error'))
            failures.append((case.get('name', '?'), (e.get('message') or '') + "\n" + text_of(case, ('system-out',))))
        elif 'skipped' in kids or case.get('status') in ('notrun', 'disabled'):
            out = text_of(case, ('system-out',))
            m = re.search(r'skipped: (.*)', out)
            skips[m.group(1).strip() if m else (kids['skipped'].get('message') if 'skipped' in kids else 'not run')] += 1
        else:
            passed += 1
print(passed, len(failures), sum(skips.values()))
for name, detail in failures:
    lines = [l for l in detail.strip().splitlines() if l.strip()]
    print(f"  FAILED {name}")
    for l in lines[:15]:
        print(f"      {l}")
    if len(lines) > 15:
        print(f"      ... ({len(lines) - 15} more lines in the log)")
for reason, n in skips.most_common():
    reason = re.sub(r'^SetUp : ', '', reason.splitlines()[0])
    print(f"  skipped {n}: {reason}")
PY
}

# Runs one test step with its output in a log file: shown whole only when the step produced no
# results (a build error), otherwise summarized from the results file.
run_logged() {
  local log="$1"; shift
  "$@" >"$log" 2>&1
}

add_results() {  # add_results <label> <results file> <log>
  local label="$1" file="$2" log="$3" p f s summary
  if [ -f "$file" ]; then
    summary="$(summarize_results "$file")"
    read -r p f s <<<"$(head -1 <<<"$summary")"
    echo "$label: $p passed, $f failed, $s skipped"
    tail -n +2 <<<"$summary"
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
  else
    echo "$label produced no results; its output ($log):"
    tail -n 60 "$log"
    total_f=$((total_f + 1))
  fi
}

verb_test() {
  build_native
  local results="$ROOT/build/test-results"
  rm -rf "$results"; mkdir -p "$results"
  total_p=0 total_f=0 total_s=0
  local rc=0

  log "native C ABI tests (ctest; output in build/test-results/ctest.log)"
  run_logged "$results/ctest.log" ctest --test-dir "$NATIVE_BUILD" --output-on-failure -j "$JOBS" \
    --output-junit "$results/ctest.xml" || rc=1
  add_results ctest "$results/ctest.xml" "$results/ctest.log"

  local proj name
  for proj in tests/*/*.csproj; do
    name="$(basename "$proj" .csproj)"
    log "NUnit tests: $name (dotnet test; output in build/test-results/$name.log)"
    run_logged "$results/$name.log" dotnet test --project "$proj" -c "$CONFIG" \
      --results-directory "$results/$name" --report-trx --report-trx-filename "$name.trx" "$@" || rc=1
    add_results "$name" "$results/$name/$name.trx" "$results/$name.log"
  done

  [ "$rc" -eq 0 ] || [ "$total_f" -ne 0 ] ||
    echo "a test step exited with an error although no test failed: see its log in build/test-results"
  echo "$total_p passed, $total_f failed, $total_s skipped"
  [ "$total_f" -eq 0 ] && [ "$rc" -eq 0 ]
}

verb_bench() {
  build_native
  log "BenchmarkDotNet suite"
  dotnet run -c Release --project bench/SparseAttn.Benchmarks -- "${@:---filter *}"
}

verb_cpu_bench() {
  build_native
  log "CPU backend against TorchSharp-cpu scaled_dot_product_attention"
  dotnet run -c Release --project bench/SparseAttn.CpuVsTorch -- "$@"
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

# Architectures for the packaged library: sm_80 SASS + PTX (runs on 8.x and later), plus Hopper
# code: sm_90a (wgmma) with CUDA 12+, sm_90 with 11.x.
pack_cuda_archs() {
  local major
  major="$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -1)"
  if [ "${major:-0}" -ge 12 ]; then echo "80;90a"; else echo "80;90"; fi
}

# The packaged native library: its own build dir so the dev build is not replaced, or, with
# SPARSEATTN_PACK_BUILD_DIR, a build tree already configured exactly as the packages need
# (Release, the same SPARSEATTN_CUDA and CUDA architectures), whose library is reused (CI packs
# the library its tests ran on instead of compiling the CUDA backend twice).
build_native_pack() {
  local dir="${SPARSEATTN_PACK_BUILD_DIR:-$ROOT/build/native-pack}" cuda="$SPARSEATTN_CUDA" archs=""
  local args=(-S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_BUILD_TESTS=OFF -DSPARSEATTN_BUILD_BENCH=OFF)
  if [ "$cuda" != "OFF" ] && command -v nvcc >/dev/null 2>&1; then
    cuda=ON
    archs="${CUDA_ARCHS:-$(pack_cuda_archs)}"
    args+=(-DCMAKE_CUDA_ARCHITECTURES="$archs")
  elif [ "$cuda" = "ON" ]; then
    echo "SPARSEATTN_CUDA=ON but nvcc is not on PATH" >&2; return 1
  else
    cuda=OFF
  fi
  args+=(-DSPARSEATTN_CUDA="$cuda")
  PACK_CUDA="$cuda"
  if [ -n "${SPARSEATTN_PACK_BUILD_DIR:-}" ]; then
    local cache="$dir/CMakeCache.txt" want
    [ -f "$cache" ] || { echo "SPARSEATTN_PACK_BUILD_DIR=$dir is not a configured build tree" >&2; return 1; }
    for want in "CMAKE_BUILD_TYPE=Release" "SPARSEATTN_CUDA=$cuda" ${archs:+"CMAKE_CUDA_ARCHITECTURES=$archs"}; do
      grep -qx "${want%%=*}:[A-Z]*=${want#*=}" "$cache" || {
        echo "SPARSEATTN_PACK_BUILD_DIR=$dir is not configured with $want (its cache:" \
          "$(grep -E "^(CMAKE_BUILD_TYPE|SPARSEATTN_CUDA|CMAKE_CUDA_ARCHITECTURES):" "$cache" | tr '\n' ' '))" >&2
        return 1; }
    done
    log "native library for the packages (CUDA $cuda${archs:+, archs $archs}) from $dir"
    cmake --build "$dir" -j "$JOBS" --target sparseattn
  else
    command -v ninja >/dev/null 2>&1 && [ ! -f "$dir/Makefile" ] && args+=(-G Ninja)
    log "native library for the packages (CUDA $cuda${archs:+, archs $archs}) in build/native-pack"
    cmake "${args[@]}" >/dev/null
    cmake --build "$dir" -j "$JOBS"
  fi
  PACK_LIB="$dir/native/libsparseattn.so"
  [ -f "$PACK_LIB" ] || { echo "no $PACK_LIB after the build" >&2; return 1; }
  # The package must run on machines with only a driver: the CUDA runtime is linked statically.
  if readelf -d "$PACK_LIB" | grep NEEDED | grep -q 'libcudart'; then
    echo "$PACK_LIB depends on the shared CUDA runtime:" >&2
    readelf -d "$PACK_LIB" | grep NEEDED >&2
    return 1
  fi
  echo "native dependencies: $(readelf -d "$PACK_LIB" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  if [ "$cuda" = ON ]; then
    # A CUDA package must carry device code for every architecture it was asked for.
    command -v cuobjdump >/dev/null 2>&1 || { echo "cuobjdump (CUDA toolkit) is needed to check the device code" >&2; return 1; }
    local code arch
    code="$(cuobjdump --list-elf --list-ptx "$PACK_LIB" 2>/dev/null | grep -o 'sm_[0-9a-z]*\.\(cubin\|ptx\)' | sort -u | tr '\n' ' ')"
    echo "device code: $code"
    for arch in ${archs//;/ }; do
      [[ " $code " == *" sm_${arch}.cubin "* ]] || { echo "$PACK_LIB has no sm_${arch} code (device code: ${code:-none})" >&2; return 1; }
    done
  fi
}

# SparseAttn.Runtime.win-x64 from Linux: the CPU backend cross-compiled with MinGW-w64 (GCC, C++
# and threads runtimes linked in, so the DLL needs only Windows system DLLs), its native C ABI
# tests run under Wine where installed, packed CPU ONLY into artifacts/packages. Then
# SPARSEATTN_RUNTIME_IDS="linux-x64;win-x64" ./build.sh pack makes SparseAttn depend on it.
verb_win_x64() {
  local dir="$ROOT/build/native-win-x64" results="$ROOT/build/test-results-win-x64" dll deps d
  command -v x86_64-w64-mingw32-g++-posix >/dev/null 2>&1 ||
    { echo "win-x64 needs MinGW-w64 (Debian: apt-get install g++-mingw-w64-x86-64-posix)" >&2; return 1; }
  log "native library for win-x64 (CPU backend, MinGW-w64) in build/native-win-x64"
  local args=(-S "$ROOT" -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/mingw-w64-x86_64.cmake"
              -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=OFF -DSPARSEATTN_BUILD_BENCH=OFF)
  command -v ninja >/dev/null 2>&1 && [ ! -f "$dir/Makefile" ] && args+=(-G Ninja)
  cmake "${args[@]}" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  dll="$dir/bin/sparseattn.dll"
  [ -f "$dll" ] || { echo "no $dll after the build" >&2; return 1; }
  deps="$(x86_64-w64-mingw32-objdump -p "$dll" | sed -n 's/.*DLL Name: //p' | tr '\n' ' ')"
  echo "native dependencies: $deps"
  for d in $deps; do
    case "${d,,}" in
      kernel32.dll|msvcrt.dll|ucrtbase.dll|advapi32.dll|api-ms-win-*) ;;
      *) echo "$dll depends on $d, which Windows does not ship" >&2; return 1 ;;
    esac
  done
  rm -rf "$results"; mkdir -p "$results"
  total_p=0 total_f=0 total_s=0
  if command -v wine >/dev/null 2>&1 && grep -q '^SPARSEATTN_WINE:FILEPATH=/' "$dir/CMakeCache.txt"; then
    log "native C ABI tests of the win-x64 library under Wine (ctest; output in build/test-results-win-x64/ctest.log)"
    # The Wine prefix is set up and one persistent server started before the tests run in
    # parallel: tests that start together would otherwise race to create them.
    export WINEDEBUG=-all WINEPREFIX="${WINEPREFIX:-$ROOT/build/wine}"
    wineboot -i >/dev/null 2>&1 || true
    wineserver -p >/dev/null 2>&1 || true
    run_logged "$results/ctest.log" \
      ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --output-junit "$results/ctest.xml" || true
    wineserver -k >/dev/null 2>&1 || true
    add_results "ctest (win-x64 under Wine)" "$results/ctest.xml" "$results/ctest.log"
  else
    echo "Wine not found: the win-x64 library was built but its tests did not run (Debian: apt-get install wine64)"
  fi
  log "SparseAttn.Runtime.win-x64 (CPU ONLY) into artifacts/packages"
  dotnet pack bindings/SparseAttn.Runtime.win-x64 -c Release -o "$ARTIFACTS/packages" -p:NativeLibraryPath="$dll" \
    -p:SparseAttnNativeCuda=false
  echo "$total_p passed, $total_f failed, $total_s skipped"
  [ "$total_f" -eq 0 ]
}

# Prints the files of a .nupkg (a zip), one per line.
list_package() {
  python3 -c 'import sys, zipfile; [print("  " + n) for n in zipfile.ZipFile(sys.argv[1]).namelist()]' "$1"
}

# Relative links and images of a packaged README point into a repository the package does not carry.
check_package_readme() {
  python3 - "$1" <<'PY'
import re, sys, zipfile
text = zipfile.ZipFile(sys.argv[1]).read("README.md").decode("utf-8")
bad = [m.group(1) for m in re.finditer(r"\]\(([^)\s]+)\)", text)
       if not re.match(r"(https?://|mailto:|#)", m.group(1))]
if bad:
    print("  README.md has repository-relative links: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
}

verb_pack() {
  build_native_pack
  local out="$ARTIFACTS/packages" proj pkg files missing=0 version rid rids keep=()
  version="$(cat "$ROOT/VERSION")"
  # The runtime packages the SparseAttn package depends on (default: this machine's). Packages of
  # other runtimes are packed on their own machines (./build.ps1 pack) and copied into
  # artifacts/packages first; they are kept, and pack fails when one is missing.
  rids="${SPARSEATTN_RUNTIME_IDS:-linux-x64}"
  mkdir -p "$out"
  for rid in ${rids//;/ }; do
    [ "$rid" = linux-x64 ] || keep+=("SparseAttn.Runtime.$rid.$version.nupkg")
  done
  for pkg in "$out"/*.nupkg "$out"/*.snupkg; do
    [ -f "$pkg" ] || continue
    [[ " ${keep[*]} " == *" $(basename "$pkg") "* ]] || rm -f "$pkg"
  done
  for rid in ${rids//;/ }; do
    [ "$rid" = linux-x64 ] || [ -f "$out/SparseAttn.Runtime.$rid.$version.nupkg" ] || {
      echo "SPARSEATTN_RUNTIME_IDS lists $rid but artifacts/packages has no SparseAttn.Runtime.$rid.$version.nupkg" \
        "(pack it on a $rid machine and copy it there)" >&2; return 1; }
  done
  local native_cuda=false
  [ "$PACK_CUDA" = ON ] && native_cuda=true
  log "NuGet packages (version $version, native library: $([ "$native_cuda" = true ] && echo "CPU and CUDA" || echo "CPU ONLY")) into artifacts/packages"
  dotnet pack bindings/SparseAttn.Runtime.linux-x64 -c Release -o "$out" -p:NativeLibraryPath="$PACK_LIB" \
    -p:SparseAttnNativeCuda="$native_cuda"
  # README and LICENSE go into every package, also from projects that do not list them.
  local files_targets="$ROOT/build/pack/PackageFiles.targets"
  mkdir -p "$(dirname "$files_targets")"
  cat > "$files_targets" <<'XML'
<Project>
  <PropertyGroup Condition="'$(IsPackable)' == 'true'">
    <PackageReadmeFile Condition="'$(PackageReadmeFile)' == ''">README.md</PackageReadmeFile>
    <PackageLicenseFile Condition="'$(PackageLicenseFile)' == '' and '$(PackageLicenseExpression)' == ''">LICENSE</PackageLicenseFile>
  </PropertyGroup>
  <ItemGroup Condition="'$(IsPackable)' == 'true'">
    <None Include="$(SparseAttnPackageReadme)" Pack="true" PackagePath="README.md" Visible="false"
          Condition="'$(PackageReadmeFile)' == 'README.md' and '@(None->WithMetadataValue('Filename', 'README'))' == ''" />
    <None Include="$(RepositoryRoot)LICENSE" Pack="true" PackagePath="" Visible="false"
          Condition="'$(PackageLicenseFile)' == 'LICENSE' and '@(None->WithMetadataValue('Filename', 'LICENSE'))' == ''" />
  </ItemGroup>
  <!-- A dotnet tool is self-contained in its package: it carries the native library in the layout the resolver reads. -->
  <ItemGroup Condition="'$(PackAsTool)' == 'true' and '$(SparseAttnToolNativeLibrary)' != ''">
    <None Include="$(SparseAttnToolNativeLibrary)" Pack="true" Visible="false"
          PackagePath="tools/$(TargetFramework)/any/runtimes/$(SparseAttnToolRid)/native/$(SparseAttnToolNativeName)" />
  </ItemGroup>
</Project>
XML
  for proj in src/SparseAttn src/SparseAttn.TorchSharp src/SparseAttn.Cli; do
    [ -f "$proj/$(basename "$proj").csproj" ] || { echo "skipping $proj (no project yet)"; continue; }
    dotnet pack "$proj" -c Release -o "$out" -p:IncludeSymbols=true -p:SymbolPackageFormat=snupkg \
      -p:CustomAfterMicrosoftCommonTargets="$files_targets" \
      -p:SparseAttnToolNativeLibrary="$PACK_LIB" -p:SparseAttnToolRid=linux-x64 \
      -p:SparseAttnToolNativeName=libsparseattn.so \
      -p:SparseAttnNativeCuda="$native_cuda" -p:SparseAttnRuntimeIds="${rids//;/%3B}"
  done
  for pkg in "$out"/*.nupkg "$out"/*.snupkg; do
    [ -f "$pkg" ] || continue
    files="$(list_package "$pkg")"
    echo "$(basename "$pkg"):"; echo "$files"
    case "$pkg" in
      *.nupkg)
        for f in README.md LICENSE; do
          grep -qx "  $f" <<<"$files" || { echo "  MISSING: $f" >&2; missing=1; }
        done
        grep -qx "  README.md" <<<"$files" && { check_package_readme "$pkg" || missing=1; } ;;
    esac
  done
  [ "$missing" -eq 0 ] || { echo "some packages lack README.md or LICENSE, or link into the repository" >&2; return 1; }
  echo "SparseAttn $version depends on the runtime packages of: ${rids//;/, } (SPARSEATTN_RUNTIME_IDS);" \
    "other runtimes get the resolver's message naming their SparseAttn.Runtime.<rid> package"
}

verb_sample() {
  verb_pack
  log "sample: samples/HelloAttention on the SparseAttn $(cat "$ROOT/VERSION") package"
  # Drop the last extraction of our packages: the version does not change between packs.
  rm -rf "$ROOT"/build/sample-packages/sparseattn*
  dotnet restore samples/HelloAttention --force
  # The package's own native library, not a build tree's.
  env -u SPARSEATTN_NATIVE_PATH dotnet run -c Release --no-restore --project samples/HelloAttention -- "$@"
  sample_torch
}

# samples/HelloTorch as a fresh console app outside the repository: it sees no repository file, only
# the packages of the local feed (and TorchSharp from the registry), so the LibTorchSharp loader fix
# must come from the SparseAttn.TorchSharp package itself (its buildTransitive targets).
sample_torch() {
  local version dir packages="$ROOT/build/sample-packages" fallback="" output
  version="$(cat "$ROOT/VERSION")"
  dir="$(mktemp -d "${TMPDIR:-/tmp}/sparseattn-hellotorch.XXXXXX")"
  log "sample: HelloTorch in $dir on the SparseAttn.TorchSharp $version package"
  cp "$ROOT"/samples/HelloTorch/HelloTorch.csproj "$ROOT"/samples/HelloTorch/Program.cs "$dir/"
  # Packages already in the user's cache (TorchSharp, libtorch: ~1 GB) are read from there, never copied.
  [ -d "$HOME/.nuget/packages" ] && fallback="<fallbackPackageFolders><add key=\"user\" value=\"$HOME/.nuget/packages\" /></fallbackPackageFolders>"
  cat > "$dir/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config><add key="globalPackagesFolder" value="$packages" /></config>
  $fallback
  <packageSources>
    <clear />
    <add key="sparseattn-local" value="$ARTIFACTS/packages" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="sparseattn-local"><package pattern="SparseAttn" /><package pattern="SparseAttn.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
  (cd "$dir" && dotnet restore -p:SparseAttnVersion="$version" --force >/dev/null)
  # The SparseAttn packages must be the fresh ones of this pack (extracted into $packages, whose
  # SparseAttn folders verb_sample removed), not copies from another cache.
  [ -d "$packages/sparseattn.torchsharp/$version" ] || {
    echo "HelloTorch did not restore the freshly packed SparseAttn.TorchSharp into $packages" >&2; return 1; }
  output="$(cd "$dir" && env -u SPARSEATTN_NATIVE_PATH dotnet run -c Release --no-restore -p:SparseAttnVersion="$version" 2>&1)" || {
    echo "$output"; echo "HelloTorch failed (its folder is kept: $dir)" >&2; return 1; }
  echo "$output"
  rm -rf "$dir"
}

verb_docs() {
  log "API reference (docs/api) from the XML documentation comments"
  local proj dlls=()
  for proj in src/SparseAttn src/SparseAttn.TorchSharp; do
    [ -f "$proj/$(basename "$proj").csproj" ] || continue
    dotnet build "$proj" -c Release -v quiet
    dlls+=("$proj/bin/Release/net10.0/$(basename "$proj").dll")
  done
  dotnet run -c Release --project bench/SparseAttn.Reports -- apidocs --assembly "${dlls[@]}" --out docs/api
}

verb_report() {
  log "benchmark report: plots into bench/plots, table into README.md (from bench/results)"
  dotnet run -c Release --project bench/SparseAttn.Reports -- report "$@"
}

verb_clean() { rm -rf "$ROOT/build" "$ARTIFACTS"; }

verb="${1:-}"; shift || true
case "$verb" in
  native) build_native ;;
  demo) verb_demo "$@" ;;
  test) verb_test "$@" ;;
  bench) verb_bench "$@" ;;
  cpu-bench) verb_cpu_bench "$@" ;;
  gpu-bench) verb_gpu_bench "$@" ;;
  gpu-bundle) verb_gpu_bundle "$@" ;;
  pack) verb_pack "$@" ;;
  win-x64) verb_win_x64 ;;
  sample) verb_sample "$@" ;;
  docs) verb_docs "$@" ;;
  report) verb_report "$@" ;;
  clean) verb_clean ;;
  *) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 2 ;;
esac
