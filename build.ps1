#!/usr/bin/env pwsh
# SparseAttn build driver for Windows (MSVC + CUDA toolkit). Mirrors build.sh.
# Usage: ./build.ps1 <verb> [args]
#   native      configure and build the native library (CUDA backend when nvcc is found)
#   demo        run attention on the best device and check it (builds first)
#   test        native C ABI tests (ctest) + NUnit tests; ends with "N passed, N failed, N skipped"
#   bench       BenchmarkDotNet suite; extra args go to it
#   cpu-bench   CPU backend against libtorch's CPU attention (TorchSharp-cpu) in one process; args go to it
#   gpu-bench   native GPU benchmark (needs bash and PyTorch for the anchors: use build.sh)
#   gpu-bundle  publish the test executable self-contained for win-x64 with the sources
#   pack        NuGet packages (SparseAttn, SparseAttn.Runtime.win-x64, ...) into artifacts/packages
#   sample      pack, then restore and run samples/HelloAttention from those packages
#   docs        regenerate the API reference docs/api/*.md from the XML doc comments
#   report      benchmark plots (bench/plots) and the README table from bench/results
#   clean       remove build outputs
# Environment: SPARSEATTN_CUDA=AUTO|ON|OFF, CONFIG=Release|Debug, CUDA_ARCHS, JOBS.
param(
  [Parameter(Position = 0)][string]$Verb = "",
  [Parameter(Position = 1, ValueFromRemainingArguments = $true)][string[]]$Rest = @()
)
$ErrorActionPreference = "Stop"
$Root = $PSScriptRoot
Set-Location $Root
$Config = if ($env:CONFIG) { $env:CONFIG } else { "Release" }
$Cuda = if ($env:SPARSEATTN_CUDA) { $env:SPARSEATTN_CUDA } else { "AUTO" }
$Jobs = if ($env:JOBS) { $env:JOBS } else { [Environment]::ProcessorCount }
$NativeBuild = Join-Path $Root "build/native"
$Artifacts = Join-Path $Root "artifacts"
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"

function Log($msg) { Write-Host "==> $msg" -ForegroundColor Cyan }
function Invoke-Checked([string]$exe, [string[]]$argv) {
  & $exe @argv
  if ($LASTEXITCODE -ne 0) { throw "$exe exited with $LASTEXITCODE" }
}

function Get-NativeLib {
  foreach ($c in @("native/$Config/sparseattn.dll", "native/sparseattn.dll", "bin/$Config/sparseattn.dll")) {
    $p = Join-Path $NativeBuild $c
    if (Test-Path $p) { return (Resolve-Path $p).Path }
  }
  throw "sparseattn.dll not found under $NativeBuild"
}

function Build-Native {
  Log "native build ($Config, SPARSEATTN_CUDA=$Cuda) in build/native"
  $argv = @("-S", $Root, "-B", $NativeBuild, "-DSPARSEATTN_CUDA=$Cuda")
  if ($env:CUDA_ARCHS) { $argv += "-DCMAKE_CUDA_ARCHITECTURES=$($env:CUDA_ARCHS)" }
  Invoke-Checked cmake $argv
  Invoke-Checked cmake @("--build", $NativeBuild, "--config", $Config, "-j", "$Jobs")
  $env:SPARSEATTN_NATIVE_PATH = Get-NativeLib
}

function Get-Counts([string]$file) {
  [xml]$x = Get-Content $file
  $p = 0; $f = 0; $s = 0
  if ($x.DocumentElement.LocalName -eq "TestRun") {
    foreach ($r in $x.GetElementsByTagName("UnitTestResult")) {
      switch ($r.outcome) { "Passed" { $p++ } { $_ -in "NotExecuted", "Inconclusive", "Skipped" } { $s++ } default { $f++ } }
    }
  } else {
    foreach ($c in $x.GetElementsByTagName("testcase")) {
      if ($c.failure -or $c.error) { $f++ } elseif ($c.skipped -or $c.status -eq "notrun") { $s++ } else { $p++ }
    }
  }
  return @($p, $f, $s)
}

function Test-All {
  Build-Native
  $results = Join-Path $Root "build/test-results"
  if (Test-Path $results) { Remove-Item -Recurse -Force $results }
  New-Item -ItemType Directory -Force $results | Out-Null
  $tp = 0; $tf = 0; $ts = 0; $ok = $true
  Log "native C ABI tests (ctest)"
  & ctest --test-dir $NativeBuild -C $Config --output-on-failure --output-junit (Join-Path $results "ctest.xml")
  if ($LASTEXITCODE -ne 0) { $ok = $false }
  $j = Join-Path $results "ctest.xml"
  if (Test-Path $j) { $c = Get-Counts $j; $tp += $c[0]; $tf += $c[1]; $ts += $c[2] } else { $tf++ }
  Log "NUnit tests (dotnet test)"
  & dotnet test --project tests/SparseAttn.Tests -c $Config --results-directory (Join-Path $results "nunit") --report-trx --report-trx-filename nunit.trx @Rest
  if ($LASTEXITCODE -ne 0) { $ok = $false }
  $t = Join-Path $results "nunit/nunit.trx"
  if (Test-Path $t) { $c = Get-Counts $t; $tp += $c[0]; $tf += $c[1]; $ts += $c[2] } else { $tf++ }
  Write-Output "$tp passed, $tf failed, $ts skipped"
  if (-not $ok -or $tf -gt 0) { exit 1 }
}

function Invoke-Pack {
  # The packaged library: its own build dir, every GPU from sm_80 (sm_90a with CUDA 12+).
  $dir = Join-Path $Root "build/native-pack"
  $argv = @("-S", $Root, "-B", $dir, "-DSPARSEATTN_BUILD_TESTS=OFF", "-DSPARSEATTN_BUILD_BENCH=OFF")
  $nvcc = Get-Command nvcc -ErrorAction SilentlyContinue
  if ($Cuda -ne "OFF" -and $nvcc) {
    $major = [int]([regex]::Match((& nvcc --version | Out-String), 'release (\d+)\.').Groups[1].Value)
    $archs = if ($env:CUDA_ARCHS) { $env:CUDA_ARCHS } elseif ($major -ge 12) { "80;90a" } else { "80;90" }
    $argv += @("-DSPARSEATTN_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=$archs")
    $nativeCuda = "true"
  } elseif ($Cuda -eq "ON") { throw "SPARSEATTN_CUDA=ON but nvcc is not on PATH" } else { $argv += "-DSPARSEATTN_CUDA=OFF"; $nativeCuda = "false" }
  # The runtime packages SparseAttn depends on (as in build.sh): this machine's unless SPARSEATTN_RUNTIME_IDS says more.
  $rids = if ($env:SPARSEATTN_RUNTIME_IDS) { $env:SPARSEATTN_RUNTIME_IDS } else { "win-x64" }
  Log "native library for the packages in build/native-pack"
  Invoke-Checked cmake $argv
  Invoke-Checked cmake @("--build", $dir, "--config", "Release", "-j", "$Jobs")
  $lib = Join-Path $dir "native/Release/sparseattn.dll"
  if (-not (Test-Path $lib)) { throw "no $lib after the build" }
  $dumpbin = Get-Command dumpbin -ErrorAction SilentlyContinue
  if ($dumpbin -and ((& dumpbin /dependents $lib | Out-String) -match 'cudart')) { throw "$lib depends on the shared CUDA runtime" }
  $pk = Join-Path $Artifacts "packages"
  New-Item -ItemType Directory -Force $pk | Out-Null
  $keep = @($rids -split ';' | Where-Object { $_ -and $_ -ne "win-x64" } | ForEach-Object { "SparseAttn.Runtime.$_.$((Get-Content (Join-Path $Root 'VERSION')).Trim()).nupkg" })
  Get-ChildItem $pk -Include "*.nupkg", "*.snupkg" -Recurse | Where-Object { $keep -notcontains $_.Name } | Remove-Item -Force
  foreach ($k in $keep) { if (-not (Test-Path (Join-Path $pk $k))) { throw "SPARSEATTN_RUNTIME_IDS lists a runtime whose package $k is not in artifacts/packages" } }
  Invoke-Checked dotnet @("pack", "bindings/SparseAttn.Runtime.win-x64", "-c", "Release", "-o", $pk, "-p:NativeLibraryPath=$lib",
    "-p:SparseAttnNativeCuda=$nativeCuda")
  # README and LICENSE go into every package, also from projects that do not list them (same file as build.sh).
  $filesTargets = Join-Path $Root "build/pack/PackageFiles.targets"
  New-Item -ItemType Directory -Force (Split-Path $filesTargets) | Out-Null
  $bash = Get-Content (Join-Path $Root "build.sh") -Raw
  $m = [regex]::Match($bash, "(?s)<<'XML'\r?\n(.*?)\r?\nXML")
  Set-Content -Path $filesTargets -Value $m.Groups[1].Value
  foreach ($p in @("src/SparseAttn", "src/SparseAttn.TorchSharp", "src/SparseAttn.Cli")) {
    if (-not (Test-Path "$p/$(Split-Path $p -Leaf).csproj")) { Write-Output "skipping $p (no project yet)"; continue }
    Invoke-Checked dotnet @("pack", $p, "-c", "Release", "-o", $pk, "-p:IncludeSymbols=true", "-p:SymbolPackageFormat=snupkg",
      "-p:CustomAfterMicrosoftCommonTargets=$filesTargets", "-p:SparseAttnToolNativeLibrary=$lib", "-p:SparseAttnToolRid=win-x64",
      "-p:SparseAttnToolNativeName=sparseattn.dll", "-p:SparseAttnNativeCuda=$nativeCuda", "-p:SparseAttnRuntimeIds=$($rids -replace ';', '%3B')")
  }
  Get-ChildItem $pk
}

switch ($Verb) {
  "native" { Build-Native }
  "demo" { Build-Native; Invoke-Checked dotnet (@("run", "-c", $Config, "--project", "src/SparseAttn.Demo", "--") + $Rest) }
  "test" { Test-All }
  "bench" {
    Build-Native
    $a = if ($Rest.Count -gt 0) { $Rest } else { @("--filter", "*") }
    Invoke-Checked dotnet (@("run", "-c", "Release", "--project", "bench/SparseAttn.Benchmarks", "--") + $a)
  }
  "cpu-bench" {
    Build-Native
    Invoke-Checked dotnet (@("run", "-c", "Release", "--project", "bench/SparseAttn.CpuVsTorch", "--") + $Rest)
  }
  "gpu-bench" { throw "gpu-bench runs the PyTorch anchors through bash: use ./build.sh gpu-bench on Linux" }
  "gpu-bundle" {
    $out = Join-Path $Artifacts "gpu-bundle"
    if (Test-Path $out) { Remove-Item -Recurse -Force $out }
    New-Item -ItemType Directory -Force $out | Out-Null
    Invoke-Checked dotnet @("publish", "tests/SparseAttn.Tests", "-c", $Config, "-r", "win-x64", "--self-contained", "true", "-o", (Join-Path $Artifacts "tests-win-x64"))
    Compress-Archive -Path (Join-Path $Artifacts "tests-win-x64") -DestinationPath (Join-Path $out "tests-win-x64.zip") -Force
    Invoke-Checked git @("archive", "--format=zip", "-o", (Join-Path $out "sources.zip"), "HEAD", "CMakeLists.txt", "VERSION", "cmake", "native", "bench/native", "bench/gpu")
    Get-ChildItem $out
  }
  "pack" { Invoke-Pack }
  "sample" {
    Invoke-Pack
    Log "sample: samples/HelloAttention on the SparseAttn package"
    Get-ChildItem (Join-Path $Root "build/sample-packages") -Filter "sparseattn*" -ErrorAction SilentlyContinue | Remove-Item -Recurse -Force
    Invoke-Checked dotnet @("restore", "samples/HelloAttention", "--force")
    Remove-Item Env:SPARSEATTN_NATIVE_PATH -ErrorAction SilentlyContinue
    Invoke-Checked dotnet (@("run", "-c", "Release", "--no-restore", "--project", "samples/HelloAttention", "--") + $Rest)
  }
  "docs" {
    Log "API reference (docs/api) from the XML documentation comments"
    $dlls = @()
    foreach ($p in @("src/SparseAttn", "src/SparseAttn.TorchSharp")) {
      $name = Split-Path $p -Leaf
      if (-not (Test-Path "$p/$name.csproj")) { continue }
      Invoke-Checked dotnet @("build", $p, "-c", "Release", "-v", "quiet")
      $dlls += (Join-Path $Root "$p/bin/Release/net10.0/$name.dll")
    }
    Invoke-Checked dotnet (@("run", "-c", "Release", "--project", "bench/SparseAttn.Reports", "--", "apidocs", "--assembly") + $dlls + @("--out", "docs/api"))
  }
  "report" {
    Log "benchmark report: plots into bench/plots, table into README.md (from bench/results)"
    Invoke-Checked dotnet (@("run", "-c", "Release", "--project", "bench/SparseAttn.Reports", "--", "report") + $Rest)
  }
  "clean" { foreach ($d in @("build", "artifacts")) { if (Test-Path $d) { Remove-Item -Recurse -Force $d } } }
  default { Get-Content $PSCommandPath | Select-Object -Skip 1 -First 15; exit 2 }
}
