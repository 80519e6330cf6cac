using System.Text.Json;
using Spectre.Console;

namespace SparseAttn.Cli.Tests;

/// <summary>Tile-level estimates, the dense comparison of runs, JSON output, --grid as S, and piped output.</summary>
[TestFixture]
public class CliOutputTests
{
    private static (int ExitCode, string Output) Run(int width, params string[] args)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = width;
        var code = CliApp.Run(args, console, writer);
        return (code, writer.ToString());
    }

    private static (int ExitCode, string Output) Run(params string[] args) => Run(200, args);

    [Test]
    public void BlockedWindowOnWholeTilesHasTheTileBoundOfThePairBound()
    {
        // 1-D, L = 4096, blocks of 64 tokens: each 64-query tile sees exactly one 64-key tile.
        var estimate = EstimateCommand.ForNeighborhood(NeighborhoodConfig.Create1D(4096, 64, stride: 64));
        var mma = estimate.TileBounds.Single(t => t.Kernel == "CUDA mma.sync");
        Assert.That(mma.TileRows, Is.EqualTo(64));
        Assert.That(mma.TilesVisited, Is.EqualTo(64));
        Assert.That(mma.DenseTiles, Is.EqualTo(64 * 64));
        Assert.That(mma.TileBoundSpeedup, Is.EqualTo(64).Within(1e-9));
        Assert.That(estimate.Speedup, Is.EqualTo(64).Within(1e-9));
    }

    [Test]
    public void SlidingWindowTileBoundIsBelowThePairBound()
    {
        var estimate = EstimateCommand.ForNeighborhood(NeighborhoodConfig.Create2D((64, 64), (13, 13)));
        Assert.That(estimate.TileBounds.Select(t => t.Kernel), Is.EquivalentTo(new[] { "CUDA mma.sync", "CUDA Hopper wgmma", "CPU" }));
        foreach (var t in estimate.TileBounds)
        {
            Assert.That(t.TileBoundSpeedup, Is.GreaterThan(1).And.LessThan(estimate.Speedup), t.Kernel);
            Assert.That(t.PredictedSpeedup, Is.LessThanOrEqualTo(t.TileBoundSpeedup), t.Kernel);
        }
        var cpu = estimate.TileBounds.Single(t => t.Kernel == "CPU");
        Assert.That(cpu.QueryBox, Is.EqualTo(new[] { 8, 8 }), "the CPU grows 64-token boxes dimension by dimension");
    }

    [Test]
    public void CausalConfigurationsAreBoundedAgainstCausalDenseTiles()
    {
        Assert.That(EstimateCommand.CausalDenseTiles(128, 64, 64), Is.EqualTo(3));
        Assert.That(EstimateCommand.CausalDenseTiles(100, 64, 64), Is.EqualTo(3));
        Assert.That(EstimateCommand.CausalDenseTiles(256, 128, 64), Is.EqualTo(2 + 4));
        var estimate = EstimateCommand.ForNeighborhood(NeighborhoodConfig.Create1D(4096, 256, causal: true));
        var mma = estimate.TileBounds.Single(t => t.Kernel == "CUDA mma.sync");
        Assert.That(mma.DenseTiles, Is.EqualTo(64 * 65 / 2));
    }

    [Test]
    public void EstimateTablePrintsBothBounds()
    {
        var (code, output) = Run("estimate", "neighborhood", "--grid", "64x64", "--kernel", "13x13");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        Assert.That(output, Does.Contain("pair-level bound (FLOPs)").And.Contain("tile-level bound, CUDA mma.sync (64 x 64 tiles)")
            .And.Contain("tile-level bound, CUDA Hopper wgmma (128 x 128 tiles)"));
    }

    [Test]
    public void EstimateJsonIsOneObjectWithTheTileBounds()
    {
        var (code, output) = Run("estimate", "neighborhood", "--grid", "4096", "--kernel", "64", "--stride", "64", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("allowedPairs").GetInt64(), Is.EqualTo(4096L * 64));
        Assert.That(root.GetProperty("pairBoundSpeedup").GetDouble(), Is.EqualTo(64).Within(1e-9));
        var first = root.GetProperty("tileBounds")[0];
        Assert.That(first.GetProperty("kernel").GetString(), Is.EqualTo("CUDA mma.sync"));
        Assert.That(first.GetProperty("tileBoundSpeedup").GetDouble(), Is.EqualTo(64).Within(1e-9));
    }

    [Test]
    public void BlockMaskEstimateJson()
    {
        var (code, output) = Run("estimate", "block-mask", "--seq", "1000", "--pattern", "causal", "--causal", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var doc = JsonDocument.Parse(output);
        Assert.That(doc.RootElement.GetProperty("causalBaseline").GetBoolean(), Is.True);
        Assert.That(doc.RootElement.GetProperty("pairBoundSpeedup").GetDouble(), Is.EqualTo(1.0).Within(1e-12));
    }

    [Test]
    public void GridSetsTheSequenceLength()
    {
        var (code, output) = Run("run", "neighborhood", "--grid", "16x16", "--kernel", "5x5", "--heads", "2", "--head-dim", "16",
            "--reps", "1", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var doc = JsonDocument.Parse(output);
        Assert.That(doc.RootElement.GetProperty("queryShape").EnumerateArray().Select(e => e.GetInt64()),
            Is.EqualTo(new long[] { 1, 256, 2, 16 }));
    }

    [Test]
    public void GridAndADifferentSeqAreRefused()
    {
        var (code, output) = Run("run", "neighborhood", "--grid", "16x16", "--seq", "200", "--kernel", "5x5", "--reps", "1");
        Assert.That(code, Is.EqualTo(ExitCodes.BadArguments), output);
        Assert.That(output, Does.Contain("256 tokens but S = 200"));
    }

    [Test]
    public void SparseRunsAreComparedWithDenseOnTheSameShape()
    {
        var (code, output) = Run("run", "block-sparse", "--seq", "256", "--block", "64", "--density", "0.2", "--causal",
            "--heads", "2", "--head-dim", "16", "--reps", "3", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("baseline").GetString(), Is.EqualTo("dense, causal"));
        Assert.That(root.GetProperty("baselineMedianMilliseconds").GetDouble(), Is.GreaterThan(0));
        var speedup = root.GetProperty("speedupOverBaseline").GetDouble();
        Assert.That(root.GetProperty("slowerThanBaseline").GetBoolean(), Is.EqualTo(speedup < 1));
    }

    [Test]
    public void TheTableSaysWhetherSparseBeatsDense()
    {
        var (code, output) = Run("run", "neighborhood", "--grid", "256", "--kernel", "255", "--heads", "1", "--head-dim", "16",
            "--reps", "3");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        Assert.That(output, Does.Contain("against dense"));
        Assert.That(output, Does.Match("faster than dense|SLOWER than dense"));
        if (output.Contains("SLOWER", StringComparison.Ordinal))
        {
            Assert.That(output, Does.Contain("slower than dense on this shape"));
        }
    }

    [Test]
    public void DenseRunsAndNoCompareSkipTheComparison()
    {
        var (_, dense) = Run("run", "dense", "--seq", "64", "--heads", "1", "--head-dim", "16", "--reps", "1", "--json");
        using (var doc = JsonDocument.Parse(dense))
        {
            Assert.That(doc.RootElement.GetProperty("baseline").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
        var (_, skipped) = Run("run", "block-sparse", "--seq", "128", "--block", "64", "--heads", "1", "--head-dim", "16",
            "--reps", "1", "--no-compare");
        Assert.That(skipped, Does.Not.Contain("against dense"));
    }

    [Test]
    public void RedirectedOutputIsNotWrappedAtEightyColumns()
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 80;
        CliApp.UnwrapForRedirectedOutput(console);
        var code = CliApp.Run(["estimate", "neighborhood", "--grid", "64x64", "--kernel", "13x13", "--dilation", "2x2"], console, writer);
        Assert.That(code, Is.EqualTo(ExitCodes.Ok));
        var row = writer.ToString().Split('\n').Single(l => l.Contains("tile-level bound, CUDA mma.sync", StringComparison.Ordinal));
        Assert.That(row.Length, Is.GreaterThan(80), "the row must stay on one line");
        Assert.That(row, Does.Contain("predicted"));
    }

    [Test]
    public void PbsAccuracyMetricsOfKnownOutputs()
    {
        float[] dense = [1, -2, 3, 0.5f];
        var same = PbsAccuracy.Measure(dense, dense, [0f, 1f], [0f, 1f], 0.4);
        Assert.That(same.RelativeL1, Is.EqualTo(0));
        Assert.That(same.Cosine, Is.EqualTo(1).Within(1e-12));
        Assert.That(same.MassMean, Is.EqualTo(1).Within(1e-12));
        Assert.That(same.CausalDensity, Is.EqualTo(0.4));
        // Row 0 keeps half its mass, row 1 all of it, row 2 has no key in dense attention (not counted).
        float[] sparse = [1, -2, 3, 1.5f];
        var half = PbsAccuracy.Measure(sparse, dense, [(float)Math.Log(0.5), 2f, float.NegativeInfinity],
            [0f, 2f, float.NegativeInfinity], 0.4);
        Assert.That(half.MassMean, Is.EqualTo(0.75).Within(1e-6));
        Assert.That(half.MassMin, Is.EqualTo(0.5).Within(1e-6));
        Assert.That(half.RowsBelow90Percent, Is.EqualTo(0.5));
        Assert.That(half.RelativeL1, Is.EqualTo(1 / 6.5).Within(1e-9));
        var dot = 1 + 4 + 9 + 0.75;
        Assert.That(half.Cosine, Is.EqualTo(dot / Math.Sqrt((1 + 4 + 9 + 2.25) * (1 + 4 + 9 + 0.25))).Within(1e-9));
    }

    [Test]
    public void PbsRunReportsAccuracyWithAndWithoutThePermutation()
    {
        // tau 1 keeps every earlier block: the plan covers all of causal attention, so its output is dense causal's.
        var (code, output) = Run("run", "pbs", "--seq", "512", "--heads", "2", "--head-dim", "32", "--block", "64",
            "--segment", "128", "--tau", "1", "--reps", "1", "--compare-permutation", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var doc = JsonDocument.Parse(output);
        foreach (var name in new[] { "accuracy", "accuracyWithoutPermutation" })
        {
            var a = doc.RootElement.GetProperty(name);
            Assert.That(a.GetProperty("causalDensity").GetDouble(), Is.EqualTo(1).Within(1e-9), name);
            Assert.That(a.GetProperty("massMean").GetDouble(), Is.GreaterThan(0.99999), name);
            Assert.That(a.GetProperty("relativeL1").GetDouble(), Is.LessThan(1e-4), name);
            Assert.That(a.GetProperty("cosine").GetDouble(), Is.GreaterThan(0.99999), name);
        }
        var off = doc.RootElement.GetProperty("accuracyWithoutPermutation");
        Assert.That(off.GetProperty("planMilliseconds").GetDouble(), Is.GreaterThan(0));
        Assert.That(off.GetProperty("runMilliseconds").GetDouble(), Is.GreaterThan(0));

        // A low tau drops blocks: less than all of causal, and the mass it reports is below one.
        (code, output) = Run("run", "pbs", "--seq", "512", "--heads", "2", "--head-dim", "32", "--block", "64",
            "--segment", "128", "--tau", "0.3", "--reps", "1");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        Assert.That(output, Does.Contain("against dense causal").And.Contain("attention mass mean"));
        Assert.That(output, Does.Not.Contain("key permutation off"));
    }

    [Test]
    public void ComparePermutationNeedsAPbsRun()
    {
        var (code, output) = Run("run", "dense", "--seq", "64", "--compare-permutation", "--reps", "1");
        Assert.That(code, Is.EqualTo(ExitCodes.BadArguments), output);
        Assert.That(output, Does.Contain("--compare-permutation applies to pbs"));
    }

    [Test]
    public void TopLeftCausalRunsAreCheckedAgainstTheTopLeftMask()
    {
        // S_q 64 < S_k 160: top-left query i sees keys 0..i (bottom-right would see 0..i + 96).
        var (code, output) = Run("run", "dense", "--seq", "64", "--seq-k", "160", "--causal", "--causal-alignment", "top-left",
            "--heads", "2", "--head-dim", "16", "--reps", "1", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var doc = JsonDocument.Parse(output);
        Assert.That(doc.RootElement.GetProperty("allowedPairs").GetInt64(), Is.EqualTo(2L * 64 * 65 / 2));
        Assert.That(doc.RootElement.GetProperty("passed").GetBoolean(), Is.True);
        (code, output) = Run("run", "block-sparse", "--seq", "64", "--seq-k", "160", "--pattern", "causal", "--block", "64",
            "--causal", "--causal-alignment", "top-left", "--heads", "2", "--head-dim", "16", "--reps", "1", "--json");
        Assert.That(code, Is.EqualTo(ExitCodes.Ok), output);
        using var sparse = JsonDocument.Parse(output);
        Assert.That(sparse.RootElement.GetProperty("allowedPairs").GetInt64(), Is.EqualTo(2L * 64 * 65 / 2));
        Assert.That(sparse.RootElement.GetProperty("passed").GetBoolean(), Is.True);
        Assert.That(CliApp.DensePairsTopLeft(5, 3), Is.EqualTo(3 * 4 / 2 + 2 * 3));
    }
}
