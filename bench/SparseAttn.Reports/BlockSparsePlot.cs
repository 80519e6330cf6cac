using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ScottPlot;

namespace SparseAttn.Reports;

/// <summary>
/// Block-sparse speedup over cuDNN dense against density, log-log: ours (with and without a random key
/// permutation) and FlexAttention with the same masks, beside the FLOP bound. Reads the newest
/// <c>*-bs-v*.json</c> of <c>sparseattn_bench_sparse --suite bs</c> in the results folder and the anchors
/// log of the same device run beside it (<c>*-bs-v*.anchors.txt</c>, from <c>anchors_bench.py bs</c>).
/// </summary>
internal static partial class BlockSparsePlot
{
    private const int Width = 900, Height = 560;

    [GeneratedRegex(@"^flex blocksparse S(\d+) H(\d+) density=([0-9.]+)\s+([0-9.]+) ms")]
    private static partial Regex FlexLine();

    [GeneratedRegex(@"^\s*dense cudnn S(\d+) D(\d+)\s+([0-9.]+) ms")]
    private static partial Regex CudnnLine();

    [GeneratedRegex(@"^block-sparse S(\d+) H(\d+) density ([0-9.]+)( key-perm)?$")]
    private static partial Regex OursName();

    public static void Render(string resultsFolder, string plotsFolder)
    {
        var json = Directory.Exists(resultsFolder)
            ? Directory.GetFiles(resultsFolder, "*-bs-v*.json").Order(StringComparer.Ordinal).LastOrDefault()
            : null;
        var anchors = json is null ? null : Path.ChangeExtension(json, ".anchors.txt");
        if (json is null || !File.Exists(anchors))
        {
            Console.WriteLine("  no block-sparse run with its anchors (*-bs-vN.json + *-bs-vN.anchors.txt): block-sparse-h200.png skipped");
            return;
        }
        var ours = new List<(double Density, bool Permuted, double Ms)>();
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            foreach (var row in doc.RootElement.GetProperty("results").EnumerateArray())
            {
                var m = OursName().Match(row.GetProperty("name").GetString() ?? "");
                if (m.Success)
                {
                    ours.Add((double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), m.Groups[4].Success,
                        row.GetProperty("ms").GetDouble()));
                }
            }
        }
        var flex = new List<(double Density, double Ms)>();
        double? cudnnMs = null;
        foreach (var line in File.ReadLines(anchors))
        {
            var f = FlexLine().Match(line);
            if (f.Success)
            {
                flex.Add((double.Parse(f.Groups[3].Value, CultureInfo.InvariantCulture), double.Parse(f.Groups[4].Value, CultureInfo.InvariantCulture)));
            }
            var c = CudnnLine().Match(line);
            if (c.Success)
            {
                cudnnMs = double.Parse(c.Groups[3].Value, CultureInfo.InvariantCulture);
            }
        }
        if (ours.Count == 0 || cudnnMs is null)
        {
            Console.WriteLine($"  {Path.GetFileName(json)}: no block-sparse rows or no cuDNN dense anchor: block-sparse-h200.png skipped");
            return;
        }
        var plot = new Plot();
        void Series(IEnumerable<(double Density, double Ms)> points, string label, LinePattern pattern)
        {
            var sorted = points.OrderBy(p => p.Density).ToArray();
            var line = plot.Add.Scatter(sorted.Select(p => Math.Log10(p.Density)).ToArray(),
                sorted.Select(p => Math.Log10(cudnnMs.Value / p.Ms)).ToArray());
            line.LegendText = label;
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LinePattern = pattern;
        }
        Series(ours.Where(o => !o.Permuted).Select(o => (o.Density, o.Ms)), "SparseAttn", LinePattern.Solid);
        Series(ours.Where(o => o.Permuted).Select(o => (o.Density, o.Ms)), "SparseAttn, random key permutation", LinePattern.Solid);
        if (flex.Count > 0)
        {
            Series(flex, "FlexAttention (same masks)", LinePattern.Solid);
        }
        var all = ours.Select(o => o.Density).Concat(flex.Select(f => f.Density)).ToArray();
        double low = all.Min(), high = Math.Max(all.Max(), 1.0);
        var xs = Enumerable.Range(0, 40).Select(i => Math.Log10(low) + (Math.Log10(high) - Math.Log10(low)) * i / 39.0).ToArray();
        var bound = plot.Add.Scatter(xs, xs.Select(x => -x).ToArray());
        bound.LegendText = "FLOP bound at cuDNN's dense rate (1 / density)";
        bound.MarkerSize = 0;
        bound.LinePattern = LinePattern.Dashed;
        bound.Color = Colors.Gray;
        double[] xticks = [0.05, 0.1, 0.25, 0.5, 1.0];
        plot.Axes.Bottom.SetTicks(xticks.Select(Math.Log10).ToArray(), xticks.Select(x => x.ToString("0.##", CultureInfo.InvariantCulture)).ToArray());
        double[] yticks = [0.5, 1, 2, 5, 10, 20];
        plot.Axes.Left.SetTicks(yticks.Select(Math.Log10).ToArray(), yticks.Select(y => y.ToString("0.#", CultureInfo.InvariantCulture) + "x").ToArray());
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
