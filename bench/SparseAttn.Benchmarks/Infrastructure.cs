using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace SparseAttn.Benchmarks;

/// <summary>Floating-point operations of one invocation, for the GFLOP/s column.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class FlopsAttribute(double flops) : Attribute
{
    /// <summary>Operations per invocation.</summary>
    public double Flops { get; } = flops;
}

/// <summary>A column with the throughput of benchmarks marked with <see cref="FlopsAttribute"/>.</summary>
public sealed class GflopsColumn : IColumn
{
    /// <inheritdoc />
    public string Id => nameof(GflopsColumn);

    /// <inheritdoc />
    public string ColumnName => "GFLOP/s";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Custom;

    /// <inheritdoc />
    public int PriorityInCategory => 0;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Effective throughput: 4 * B * H * D * allowed pairs / mean time";

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var flops = benchmarkCase.Descriptor.WorkloadMethod
            .GetCustomAttributes(typeof(FlopsAttribute), false).OfType<FlopsAttribute>().FirstOrDefault();
        var meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        return flops is null || meanNs is null or <= 0 ? "-" : (flops.Flops / meanNs.Value).ToString("F1");
    }

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}

/// <summary>In-process runs (the native library is found from the build tree), few iterations for long calls.</summary>
public sealed class LongCallConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public LongCallConfig() =>
        AddJob(Job.Dry.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(1).WithIterationCount(3)
            .WithLaunchCount(1).WithId("InProcess-Long"));
}

/// <summary>In-process runs with the default statistics, for short calls.</summary>
public sealed class ShortCallConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public ShortCallConfig() =>
        AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("InProcess-Short"));
}

/// <summary>In-process runs with BenchmarkDotNet's automatic iteration counts, for overhead measurements.</summary>
public sealed class PreciseCallConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public PreciseCallConfig() =>
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithId("InProcess"));
}
