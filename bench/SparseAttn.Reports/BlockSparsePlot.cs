using System.Globalization;
using System.Text.RegularExpressions;
using ScottPlot;

namespace SparseAttn.Reports;

/// <summary>
/// Block-sparse speedup over cuDNN dense against density, both axes log scale (data plotted as log10, ticks
/// at 1, 2, 5 per decade with minor ticks between): ours (with and without a random key permutation) and
/// FlexAttention with the same masks, beside the FLOP bound 1 / density at cuDNN's dense rate. Reads the
/// newest <c>*-bs-vN.json</c> of <c>sparseattn_bench_sparse --suite bs</c> that has the anchors log of the
/// same device run beside it (<c>*-bs-vN.anchors.txt</c>). Where the JSON records <c>ms_min</c> / <c>ms_max</c>,
/// error bars span the speedups at the fastest and the slowest repetition.
/// </summary>
internal static partial class BlockSparsePlot
{
    private const int Width = 900, Height = 560;

    [GeneratedRegex(@"^flex blocksparse S(\d+) H(\d+) density=([0-9.]+)$")]
    private static partial Regex FlexName();

    // Two spellings: anchors_bench.py bs ("dense cudnn S32768 D128") and anchors_sparse.py bs
    // ("cudnn dense B1 H32 S32768 D128 causal=False"); causal lines are not the baseline.
    [GeneratedRegex(@"^(?:dense cudnn S(\d+) D(\d+)|cudnn dense B\d+ H\d+ S(\d+) D(\d+) causal=False)$")]
    private static partial Regex CudnnName();

    [GeneratedRegex(@"^block-sparse S(\d+) H(\d+) density ([0-9.]+)( key-perm)?$")]
    private static partial Regex OursName();

    /// <summary>One of our cases: density from the name, median time and, where recorded, the fastest and slowest repetition.</summary>
    internal sealed record OursPoint(double Density, bool Permuted, double Ms, double? MsMin, double? MsMax);

    /// <summary>
    /// Our rows without a key permutation and with the random one (the identity and within-block permutations
    /// are left out), FlexAttention's rows and the cuDNN dense time from the anchors log.
    /// </summary>
    internal static (List<OursPoint> Ours, List<(double Density, double Ms)> Flex, double? CudnnMs) Build(
        IEnumerable<SparseBenchRow> rows, IEnumerable<AnchorLine> anchors)
    {
        var ours = new List<OursPoint>();
        foreach (var row in rows)
        {
            var m = OursName().Match(row.Name);
            if (m.Success)
            {
                ours.Add(new OursPoint(AnchorLog.Number(m.Groups[3].Value), m.Groups[4].Success, row.Ms, row.MsMin, row.MsMax));
            }
        }
        var flex = new List<(double Density, double Ms)>();
        double? cudnnMs = null;
        foreach (var a in anchors)
        {
            var f = FlexName().Match(a.Name);
            if (f.Success)
            {
                flex.Add((AnchorLog.Number(f.Groups[3].Value), a.Ms));
            }
            if (cudnnMs is null && CudnnName().IsMatch(a.Name))
            {
                cudnnMs = a.Ms;
            }
        }
        return (ours, flex, cudnnMs);
    }

    public static void Render(string resultsFolder, string plotsFolder)
    {
        var json = RecordedRuns.NewestWithAnchors(resultsFolder, "bs");
        if (json is null)
        {
            Console.WriteLine("  no block-sparse run with its anchors (*-bs-vN.json + *-bs-vN.anchors.txt): block-sparse-h200.png skipped");
            return;
        }
        var (ours, flex, cudnnMs) = Build(SparseBenchRow.Load(json), AnchorLog.Load(RecordedRuns.AnchorsOf(json)));
        if (ours.Count == 0 || cudnnMs is null)
        {
            Console.WriteLine($"  {Path.GetFileName(json)}: no block-sparse rows or no cuDNN dense anchor: block-sparse-h200.png skipped");
            return;
        }
        var plot = new Plot();
        var speedups = new List<double>();
        void Series(IReadOnlyList<OursPoint> points, string label)
        {
            var sorted = points.OrderBy(p => p.Density).ToArray();
            var xs = sorted.Select(p => Math.Log10(p.Density)).ToArray();
            var ys = sorted.Select(p => Math.Log10(cudnnMs.Value / p.Ms)).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = label;
            line.LineWidth = 2;
            line.MarkerSize = 7;
            // Spread over repetitions (log space): up to the fastest repetition, down to the slowest.
            Spread.AddVertical(plot, xs, ys,
                sorted.Select(p => p.MsMax is { } slow ? Math.Log10(cudnnMs.Value / slow) : (double?)null).ToArray(),
                sorted.Select(p => p.MsMin is { } fast ? Math.Log10(cudnnMs.Value / fast) : (double?)null).ToArray(), line.Color);
            speedups.AddRange(sorted.Select(p => cudnnMs.Value / (p.MsMin ?? p.Ms)));
            speedups.AddRange(sorted.Select(p => cudnnMs.Value / (p.MsMax ?? p.Ms)));
        }
        Series(ours.Where(o => !o.Permuted).ToList(), "SparseAttn");
        Series(ours.Where(o => o.Permuted).ToList(), "SparseAttn, random key permutation");
        if (flex.Count > 0)
        {
            Series(flex.Select(f => new OursPoint(f.Density, false, f.Ms, null, null)).ToList(), "FlexAttention (same masks)");
        }
        var all = ours.Select(o => o.Density).Concat(flex.Select(f => f.Density)).ToArray();
        double low = all.Min(), high = Math.Max(all.Max(), 1.0);
        var boundXs = Enumerable.Range(0, 40).Select(i => Math.Log10(low) + (Math.Log10(high) - Math.Log10(low)) * i / 39.0).ToArray();
        var bound = plot.Add.Scatter(boundXs, boundXs.Select(x => -x).ToArray());
        bound.LegendText = "FLOP bound at cuDNN's dense rate (1 / density)";
        bound.MarkerSize = 0;
        bound.LinePattern = LinePattern.Dashed;
        bound.Color = Colors.Gray;
        plot.Axes.Bottom.TickGenerator = LogTicks.Decades(low, high, x => x.ToString("0.###", CultureInfo.InvariantCulture));
        var ylow = Math.Min(speedups.Min(), 1 / high);
        var yhigh = Math.Max(speedups.Max(), 1 / low);
        plot.Axes.Left.TickGenerator = LogTicks.Decades(ylow, yhigh, y => y.ToString("0.##", CultureInfo.InvariantCulture) + "x");
        plot.Axes.SetLimits(Math.Log10(low) - 0.05, Math.Log10(high) + 0.05, Math.Log10(ylow) - 0.08, Math.Log10(yhigh) + 0.08);
        plot.Title($"Block-sparse forward, random 128x128 block masks (source: {Path.GetFileName(json)})");
        plot.XLabel("density (fraction of key blocks listed), log scale");
        plot.YLabel("speedup over cuDNN dense, log scale");
        plot.ShowLegend(Alignment.UpperRight);
        Directory.CreateDirectory(plotsFolder);
        var file = Path.Combine(plotsFolder, "block-sparse-h200.png");
        plot.SavePng(file, Width, Height);
        Console.WriteLine($"  wrote {file}");
    }
}
