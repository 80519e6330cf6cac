using ScottPlot;

namespace SparseAttn.Reports;

/// <summary>
/// PNG plots of the newest sweep: TFLOP/s against sequence length, speedup against density. Where a result
/// records <c>ms_min</c> / <c>ms_max</c>, the TFLOP/s plots show them as error bars (none of the recorded sweeps
/// does so far).
/// </summary>
internal static class SweepPlots
{
    private const int Width = 900, Height = 560;

    public static void Render(string resultsFolder, string plotsFolder, string? sweepPath)
    {
        var sweep = sweepPath is not null
            ? SweepFile.TryLoad(sweepPath) ?? throw new InvalidDataException($"{sweepPath}: not a {SweepFile.SchemaName} file")
            : SweepFile.LoadAll(resultsFolder).LastOrDefault();
        if (sweep is null)
        {
            Console.WriteLine($"plots: no sweep results in {resultsFolder} (JSON with \"schema\": \"{SweepFile.SchemaName}\"); " +
                              "skipped. Run bench/gpu/sweep.sh on a GPU machine and save its JSON there.");
            return;
        }
        Directory.CreateDirectory(plotsFolder);
        Console.WriteLine($"plots: from {sweep.Path} ({sweep.Device})");
        foreach (var causal in new[] { false, true })
        {
            var file = Path.Combine(plotsFolder, causal ? "dense-tflops-causal.png" : "dense-tflops-full.png");
            if (TflopsAgainstLength(sweep, causal, file))
            {
                Console.WriteLine($"  wrote {file}");
            }
        }
        var speedup = Path.Combine(plotsFolder, "block-sparse-speedup.png");
        if (SpeedupAgainstDensity(sweep, speedup))
        {
            Console.WriteLine($"  wrote {speedup}");
        }
    }

    private static bool TflopsAgainstLength(SweepFile sweep, bool causal, string file)
    {
        var cases = sweep.Results.Where(r => r.Family == "dense" && r.Causal == causal && r.SeqlenQ == r.EffectiveSeqlenK).ToList();
        if (cases.Count == 0)
        {
            Console.WriteLine($"  no dense {(causal ? "causal" : "non-causal")} cases: {Path.GetFileName(file)} skipped");
            return false;
        }
        var plot = new Plot();
        foreach (var group in cases.GroupBy(r => r.Impl).OrderBy(g => Impls.Rank(g.Key)))
        {
            // One point per length: the first case of that length in the file.
            var points = group.GroupBy(r => r.SeqlenQ).Select(g => g.First()).OrderBy(r => r.SeqlenQ).ToList();
            var line = plot.Add.Scatter(points.Select(r => Math.Log2(r.SeqlenQ)).ToArray(), points.Select(r => r.Tflops).ToArray());
            line.LegendText = Impls.Label(group.Key);
            line.LineWidth = 2;
            line.MarkerSize = 7;
            // TFLOP/s scales with 1 / time: the fastest repetition is the upper end of the bar.
            Spread.AddVertical(plot, points.Select(r => Math.Log2(r.SeqlenQ)).ToArray(), points.Select(r => r.Tflops).ToArray(),
                points.Select(r => r.MsMax is > 0 ? r.Tflops * r.Ms / r.MsMax : (double?)null).ToArray(),
                points.Select(r => r.MsMin is > 0 ? r.Tflops * r.Ms / r.MsMin : (double?)null).ToArray(), line.Color);
        }
        var lengths = cases.Select(r => r.SeqlenQ).Distinct().Order().ToArray();
        plot.Axes.Bottom.SetTicks(lengths.Select(s => Math.Log2(s)).ToArray(), lengths.Select(FormatLength).ToArray());
        plot.Axes.SetLimitsY(0, cases.Max(r => r.MsMin is > 0 ? r.Tflops * r.Ms / r.MsMin.Value : r.Tflops) * 1.15);
        var first = cases[0];
        plot.Title($"Dense forward{(causal ? ", causal" : "")}: {first.Dtype} D{first.Dim} H{first.Heads}, {sweep.Device}");
        plot.XLabel("sequence length (batch x length fixed where the sweep says so)");
        plot.YLabel("effective TFLOP/s");
        plot.ShowLegend(Alignment.LowerRight);
        plot.SavePng(file, Width, Height);
        return true;
    }

    private static bool SpeedupAgainstDensity(SweepFile sweep, string file)
    {
        var plot = new Plot();
        var densities = new List<double>();
        var maxSpeedup = 1.0;
        foreach (var group in sweep.Results.Where(r => r.Family == "block_sparse").GroupBy(r => r.Impl).OrderBy(g => Impls.Rank(g.Key)))
        {
            // Speedup over the same implementation's dense non-causal run on the same shape.
            var points = group
                .Select(r => (r.Density!.Value, Baseline: sweep.Results.FirstOrDefault(d =>
                    d.Impl == r.Impl && d.Family == "dense" && !d.Causal && d.SameShape(r)), r.Ms))
                .Where(p => p.Baseline is not null)
                .OrderBy(p => p.Value)
                .ToList();
            if (points.Count == 0)
            {
                Console.WriteLine($"  {group.Key}: block-sparse cases without a dense baseline on the same shape, left out");
                continue;
            }
            var speedups = points.Select(p => p.Baseline!.Ms / p.Ms).ToArray();
            var line = plot.Add.Scatter(points.Select(p => p.Value).ToArray(), speedups);
            line.LegendText = $"{Impls.Label(group.Key)} (over its dense)";
            line.LineWidth = 2;
            line.MarkerSize = 7;
            densities.AddRange(points.Select(p => p.Value));
            maxSpeedup = Math.Max(maxSpeedup, speedups.Max());
        }
        if (densities.Count == 0)
        {
            Console.WriteLine($"  no block-sparse cases with a dense baseline: {Path.GetFileName(file)} skipped");
            return false;
        }
        // FLOP bound: time proportional to the listed blocks, so speedup = 1 / density.
        var low = densities.Min();
        var xs = Enumerable.Range(0, 60).Select(i => low + (1 - low) * i / 59.0).ToArray();
        var bound = plot.Add.Scatter(xs, xs.Select(x => 1 / x).ToArray());
        bound.LegendText = "FLOP bound (1 / density)";
        bound.MarkerSize = 0;
        bound.LinePattern = LinePattern.Dashed;
        bound.Color = Colors.Gray;
        var any = sweep.Results.First(r => r.Family == "block_sparse");
        plot.Axes.SetLimits(0, 1.02, 0, Math.Max(maxSpeedup, 1 / low) * 1.08);
        plot.Title($"Block-sparse forward: {any.Dtype} B{any.Batch} H{any.Heads} S{FormatLength(any.SeqlenQ)} D{any.Dim}, " +
                   $"block {any.Block ?? 128}, {sweep.Device}");
        plot.XLabel("density (fraction of key blocks listed)");
        plot.YLabel("speedup over dense");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(file, Width, Height);
        return true;
    }

    public static string FormatLength(long s) => s % 1024 == 0 ? $"{s / 1024}K" : s.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
