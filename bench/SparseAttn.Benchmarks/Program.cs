using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using SparseAttn.Benchmarks;

// Usage: dotnet run -c Release --project bench/SparseAttn.Benchmarks -- --filter '*'
var config = DefaultConfig.Instance.AddColumn(new GflopsColumn());
BenchmarkSwitcher.FromAssembly(typeof(DenseCpuBenchmarks).Assembly).Run(args, config);
