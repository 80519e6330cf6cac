#!/usr/bin/env pwsh
# SparseAttn build driver for Windows (MSVC + CUDA toolkit). Mirrors build.sh.
# Usage: ./build.ps1 <verb> [args]
#   native      configure and build the native library (CUDA backend when nvcc is found)
#   demo        run attention on the best device and check it (builds first)
#   test        native C ABI tests (ctest) + NUnit tests; ends with "N passed, N failed, N skipped"
#   bench       BenchmarkDotNet suite; extra args go to it
#   gpu-bench   native GPU benchmark (needs bash and PyTorch for the anchors: use build.sh)
#   gpu-bundle  publish the test executable self-contained for win-x64 with the sources
#   pack        NuGet packages (SparseAttn, SparseAttn.Runtime.win-x64) into artifacts/packages
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

switch ($Verb) {
  "native" { Build-Native }
  "demo" { Build-Native; Invoke-Checked dotnet (@("run", "-c", $Config, "--project", "src/SparseAttn.Demo", "--") + $Rest) }
  "test" { Test-All }
  "bench" {
    Build-Native
    $a = if ($Rest.Count -gt 0) { $Rest } else { @("--filter", "*") }
    Invoke-Checked dotnet (@("run", "-c", "Release", "--project", "bench/SparseAttn.Benchmarks", "--") + $a)
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
  "pack" {
    Build-Native
    $pk = Join-Path $Artifacts "packages"
    New-Item -ItemType Directory -Force $pk | Out-Null
    Invoke-Checked dotnet @("pack", "bindings/SparseAttn.Runtime.win-x64", "-c", "Release", "-o", $pk, "-p:NativeLibraryPath=$(Get-NativeLib)")
    Invoke-Checked dotnet @("pack", "src/SparseAttn", "-c", "Release", "-o", $pk)
    Get-ChildItem $pk
  }
  "clean" { foreach ($d in @("build", "artifacts")) { if (Test-Path $d) { Remove-Item -Recurse -Force $d } } }
  default { Get-Content $PSCommandPath | Select-Object -Skip 1 -First 12; exit 2 }
}
