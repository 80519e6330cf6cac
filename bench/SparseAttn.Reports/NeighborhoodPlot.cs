using System.Globalization;
using System.Text.RegularExpressions;
using ScottPlot;

namespace SparseAttn.Reports;

/// <summary>One neighborhood case: its speedup over cuDNN dense on the same tokens and its bounds.</summary>
/// <param name="PairBound">Dense pairs / attended pairs: the JSON's <c>pair_bound</c>, or, when the JSON has none,
/// tokens / window volume (every query of a neighborhood call attends exactly the window's keys).</param>
/// <param name="SpeedupLow">Speedup at the slowest repetition (<c>ms_max</c>), when recorded.</param>
/// <param name="SpeedupHigh">Speedup at the fastest repetition (<c>ms_min</c>), when recorded.</param>
internal sealed record NeighborhoodPoint(string Case, int Rank, string Variant, long Tokens, double PairBound,
    bool PairBoundDerived, double TileBound, double Speedup, double? SpeedupLow, double? SpeedupHigh);

/// <summary>FlexAttention with the neighborhood mask, from the anchors log of the same run.</summary>
internal sealed record NeighborhoodFlexPoint(string Case, long Tokens, double PairBound, double Speedup);

/// <summary>
/// Neighborhood attention against its FLOP bound: for each case of <c>sparseattn_bench_sparse --suite na</c>, the
/// speedup over cuDNN dense on the same token count (both from one device run: the newest
/// <c>*-na-vN.json</c> and the <c>*-na-vN.anchors.txt</c> of <c>anchors_sparse.py na</c> beside it) against the
/// pairs bound (dense pairs / attended pairs), with the line y = x where the speedup equals the bound.
/// The speedup is cuDNN's median time / ours; the JSON's own <c>speedup</c> field is over our dense kernel
/// and is not used here. The bench JSON does not record the head count: a cuDNN line is matched on the token
/// count only (the anchors script runs cuDNN at the bench's head count: H16 for 1-D, H24 for 2-D and 3-D).
/// </summary>
internal static partial class NeighborhoodPlot
{
    public const string FileName = "neighborhood-speedup.png";
    private const int Width = 900, Height = 600;

    [GeneratedRegex(@"^NA ([1-3])-D ([0-9]+(?:x[0-9]+)*) w([0-9]+(?:x[0-9]+)*)(?: (.+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex OursName();

    [GeneratedRegex(@"^cudnn dense B\d+ H\d+ S(\d+) D\d+ causal=False$", RegexOptions.CultureInvariant)]
    private static partial Regex CudnnName();

    [GeneratedRegex(@"^flex NA([1-3])D ([0-9]+(?:x[0-9]+)*) k(\d+)\b", RegexOptions.CultureInvariant)]
    private static partial Regex FlexName();

    private static long Volume(string dims) =>
        dims.Split('x').Aggregate(1L, (p, d) => p * long.Parse(d, CultureInfo.InvariantCulture));

    /// <summary>cuDNN dense non-causal median time per token count (the first line of each count).</summary>
    public static Dictionary<long, double> CudnnByTokens(IEnumerable<AnchorLine> anchors)
    {
        var cudnn = new Dictionary<long, double>();
        foreach (var a in anchors)
        {
            var m = CudnnName().Match(a.Name);
            if (m.Success)
            {
                cudnn.TryAdd(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), a.Ms);
            }
        }
        return cudnn;
    }

    /// <summary>Our cases and FlexAttention's, each with a cuDNN line on its token count; the rest is left out.</summary>
    public static (List<NeighborhoodPoint> Ours, List<NeighborhoodFlexPoint> Flex) Build(
        IEnumerable<SparseBenchRow> rows, IReadOnlyList<AnchorLine> anchors)
    {
        var cudnn = CudnnByTokens(anchors);
        var ours = new List<NeighborhoodPoint>();
        foreach (var row in rows)
        {
            var m = OursName().Match(row.Name);
            if (!m.Success)
            {
                continue;
            }
            var tokens = Volume(m.Groups[2].Value);
            if (!cudnn.TryGetValue(tokens, out var dense))
            {
                continue;
            }
            var derived = row.PairBound <= 0;
            var bound = derived ? (double)tokens / Volume(m.Groups[3].Value) : row.PairBound;
            ours.Add(new NeighborhoodPoint(row.Name["NA ".Length..], int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                m.Groups[4].Success ? m.Groups[4].Value : "", tokens, bound, derived, row.TileBound, dense / row.Ms,
                row.MsMax is { } slow ? dense / slow : null, row.MsMin is { } fast ? dense / fast : null));
        }
        var flex = new List<NeighborhoodFlexPoint>();
        foreach (var a in anchors)
        {
            var m = FlexName().Match(a.Name);
            if (!m.Success)
            {
                continue;
            }
            var tokens = Volume(m.Groups[2].Value);
            var rank = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var window = Math.Pow(long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), rank);
            if (cudnn.TryGetValue(tokens, out var dense))
            {
                flex.Add(new NeighborhoodFlexPoint($"{rank}-D {m.Groups[2].Value} w{m.Groups[3].Value}", tokens, tokens / window, dense / a.Ms));
            }
        }
        return (ours, flex);
    }

    public static void Render(string resultsFolder, string plotsFolder)
    {
        var json = RecordedRuns.NewestWithAnchors(resultsFolder, "na");
        if (json is null)
        {
            Console.WriteLine($"  no neighborhood run with its anchors (*-na-vN.json + *-na-vN.anchors.txt): {FileName} skipped");
            return;
        }
        var (ours, flex) = Build(SparseBenchRow.Load(json), AnchorLog.Load(RecordedRuns.AnchorsOf(json)));
        if (ours.Count == 0)
        {
            Console.WriteLine($"  {Path.GetFileName(json)}: no neighborhood rows with a cuDNN dense line on their token count: {FileName} skipped");
            return;
        }
        var plot = new Plot();
        Color[] rankColors = [Colors.C0, Colors.C1, Colors.C2];
        foreach (var p in ours.OrderBy(p => p.Rank).ThenBy(p => p.Variant, StringComparer.Ordinal))
        {
            var color = rankColors[p.Rank - 1];
            var point = plot.Add.Scatter(p.PairBound, p.Speedup, color);
            point.MarkerShape = p.Variant switch
            {
                "" => MarkerShape.FilledCircle,
                "blocked" => MarkerShape.FilledTriangleUp,
                _ when p.Variant.StartsWith('s') => MarkerShape.FilledSquare,
                _ => MarkerShape.FilledDiamond,
            };
            point.MarkerSize = 11;
            point.LegendText = string.Create(CultureInfo.InvariantCulture,
                $"{p.Case}: {p.Speedup:0.0}x (pairs bound {p.PairBound:0.0}x, tiles {p.TileBound:0.0}x)");
            Spread.AddVertical(plot, [p.PairBound], [p.Speedup], [p.SpeedupLow], [p.SpeedupHigh], color);
        }
        foreach (var f in flex)
        {
            var point = plot.Add.Scatter(f.PairBound, f.Speedup, Colors.Black);
            point.MarkerShape = MarkerShape.Eks;
            point.MarkerSize = 13;
            point.MarkerLineWidth = 2.5f;
            point.LegendText = string.Create(CultureInfo.InvariantCulture, $"FlexAttention {f.Case}, same mask: {f.Speedup:0.0}x");
        }
        var top = Math.Ceiling(Math.Max(ours.Max(p => Math.Max(p.PairBound, p.SpeedupHigh ?? p.Speedup)),
            flex.Select(f => f.PairBound).DefaultIfEmpty(0).Max()) * 1.1);
        var bound = plot.Add.Line(0, 0, top, top);
        bound.LegendText = "speedup = pairs bound (dense pairs / attended pairs)";
        bound.LinePattern = LinePattern.Dashed;
        bound.LineColor = Colors.Gray;
        bound.LineWidth = 1.5f;
        plot.Axes.SetLimits(0, top, 0, top);
        plot.Title("Neighborhood forward (bf16, D128): speedup over cuDNN dense on the same tokens\n" +
                   $"source: {Path.GetFileName(json)} + {Path.GetFileName(RecordedRuns.AnchorsOf(json))}");
        plot.XLabel(ours.Any(p => p.PairBoundDerived)
            ? "FLOP bound: dense pairs / attended pairs (tokens / window volume where the JSON has no pair_bound)"
            : "FLOP bound: dense pairs / attended pairs");
        plot.YLabel("speedup over cuDNN dense (median times)");
        plot.ShowLegend(Alignment.UpperLeft);
        Directory.CreateDirectory(plotsFolder);
        var file = Path.Combine(plotsFolder, FileName);
        plot.SavePng(file, Width, Height);
        Console.WriteLine($"  wrote {file}");
    }
}
