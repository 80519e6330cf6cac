using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ScottPlot;

namespace SparseAttn.Reports;

/// <summary>One row of <c>sparseattn_bench --json</c>: the shape, the median time, TFLOP/s at the median and the spread.</summary>
internal sealed record DenseBenchRow(string Dtype, int Batch, int Heads, int HeadsKv, long SeqlenQ, long SeqlenK, int Dim,
    bool Causal, double Ms, double? MsMin, double? MsMax, double Tflops)
{
    public (int Batch, int Heads, long Seqlen, int Dim, bool Causal) Key => (Batch, Heads, SeqlenQ, Dim, Causal);

    public string Label => string.Create(CultureInfo.InvariantCulture,
        $"B{Batch} H{Heads} S{SweepPlots.FormatLength(SeqlenQ)} D{Dim} {(Causal ? "causal" : "full")}");

    /// <summary>The JSON's kernel field (<c>auto</c> or <c>portable</c>) and its rows.</summary>
    public static (string Kernel, string Device, List<DenseBenchRow> Rows) Load(string path) => Parse(File.ReadAllText(path));

    public static (string Kernel, string Device, List<DenseBenchRow> Rows) Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var rows = new List<DenseBenchRow>();
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("results", out var results) ||
            results.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException("bench JSON without a results array");
        }
        foreach (var r in results.EnumerateArray())
        {
            int Int(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : 0;
            string? Str(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            var ms = SparseBenchRow.Field(r, "ms");
            var tflops = SparseBenchRow.Field(r, "tflops");
            if (ms is null || tflops is null)
            {
                continue;
            }
            var sq = SparseBenchRow.Field(r, "seqlen_q") ?? 0;
            var sk = SparseBenchRow.Field(r, "seqlen_k") ?? sq;
            rows.Add(new DenseBenchRow(Str("dtype") ?? "bf16", Int("batch"), Int("heads"),
                Int("heads_kv") is var hkv and > 0 ? hkv : Int("heads"), (long)sq, (long)sk, Int("dim"), Int("causal") != 0,
                ms.Value, SparseBenchRow.Field(r, "ms_min"), SparseBenchRow.Field(r, "ms_max"), tflops.Value));
        }
        var kernel = root.TryGetProperty("kernel", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "auto";
        var device = root.TryGetProperty("device", out var dv) && dv.ValueKind == JsonValueKind.String ? dv.GetString()! : "";
        return (kernel, device, rows);
    }
}

/// <summary>
/// Dense forward TFLOP/s per shape of one device run: our auto kernel choice (the wgmma kernel for D64/D128 on
/// sm_90a), the portable mma.sync kernel (<c>--kernel portable</c>, what pre-Hopper GPUs run) and the anchors
/// of the same run (SDPA flash (FA2), cuDNN, FlexAttention). Reads the newest <c>X-dense-portable.json</c> with
/// <c>X-dense.json</c> beside it; the anchors come from <c>X-anchors-dense.txt</c> when present, and then only
/// the shapes the anchors measured are shown (bf16, square, heads_kv = heads). TFLOP/s at the median time; where
/// the JSON records <c>ms_min</c> (and <c>ms_max</c>), error bars reach the TFLOP/s of the fastest (slowest)
/// repetition. The anchors log records medians only.
/// </summary>
internal static partial class DenseKernelsPlot
{
    public const string FileName = "dense-kernels.png";
    private const int Width = 1100, Height = 600;

    [GeneratedRegex(@"^(sdpa FLASH_ATTENTION|sdpa CUDNN_ATTENTION|flex) B(\d+) H(\d+) S(\d+) D(\d+) causal=(True|False)$", RegexOptions.CultureInvariant)]
    private static partial Regex AnchorName();

    /// <summary>Anchor TFLOP/s per implementation and shape (bf16, square, heads_kv = heads).</summary>
    public static Dictionary<string, Dictionary<(int Batch, int Heads, long Seqlen, int Dim, bool Causal), double>> Anchors(
        IEnumerable<AnchorLine> lines)
    {
        var byImpl = new Dictionary<string, Dictionary<(int, int, long, int, bool), double>>();
        foreach (var a in lines)
        {
            var m = AnchorName().Match(a.Name);
            if (!m.Success)
            {
                continue;
            }
            var impl = m.Groups[1].Value switch
            {
                "sdpa FLASH_ATTENTION" => "sdpa-flash",
                "sdpa CUDNN_ATTENTION" => "sdpa-cudnn",
                _ => "flex",
            };
            int I(int g) => int.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);
            var key = (I(2), I(3), long.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture), I(5), m.Groups[6].Value == "True");
            if (!byImpl.TryGetValue(impl, out var shapes))
            {
                byImpl[impl] = shapes = [];
            }
            shapes.TryAdd(key, a.Tflops);
        }
        return byImpl;
    }

    /// <summary>The newest <c>X-dense-portable.json</c> with <c>X-dense.json</c> beside it, or null.</summary>
    public static string? NewestPortable(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*-dense-portable.json").Order(StringComparer.Ordinal)
                .LastOrDefault(p => File.Exists(AutoOf(p)))
            : null;

    private static string SpreadLegend(IEnumerable<DenseBenchRow> rows) =>
        rows.Any(r => r.MsMax is not null) ? "spread: slowest to fastest repetition" : "spread: up to the fastest repetition (ms_min)";

    public static string AutoOf(string portable) => portable[..^"-dense-portable.json".Length] + "-dense.json";

    public static string AnchorsOf(string portable) => portable[..^"-dense-portable.json".Length] + "-anchors-dense.txt";

    public static void Render(string resultsFolder, string plotsFolder)
    {
        var portablePath = NewestPortable(resultsFolder);
        if (portablePath is null)
        {
            Console.WriteLine($"  no portable-kernel run with its auto run beside it (X-dense-portable.json + X-dense.json): {FileName} skipped");
            return;
        }
        var (_, device, auto) = DenseBenchRow.Load(AutoOf(portablePath));
        var (_, _, portable) = DenseBenchRow.Load(portablePath);
        var anchorsPath = AnchorsOf(portablePath);
        var anchors = File.Exists(anchorsPath) ? Anchors(AnchorLog.Load(anchorsPath)) : [];
        var shapes = auto
            .Where(r => r.Dtype == "bf16" && r.SeqlenQ == r.SeqlenK && r.HeadsKv == r.Heads)
            .Where(r => portable.Any(p => p.Dtype == r.Dtype && p.HeadsKv == p.Heads && p.SeqlenK == p.SeqlenQ && p.Key == r.Key))
            .Where(r => anchors.Count == 0 || anchors.Values.Any(a => a.ContainsKey(r.Key)))
            .DistinctBy(r => r.Key)
            .ToList();
        if (shapes.Count == 0)
        {
            Console.WriteLine($"  {Path.GetFileName(portablePath)}: no bf16 shape in both kernels' runs{(anchors.Count > 0 ? " and the anchors" : "")}: {FileName} skipped");
            return;
        }
        var series = new List<(string Label, Func<DenseBenchRow, DenseBenchRow?> Ours, string? Anchor)>
        {
            ("SparseAttn, auto (wgmma kernel)", s => s, null),
            ("SparseAttn, portable (mma.sync kernel)",
                s => portable.First(p => p.Dtype == s.Dtype && p.HeadsKv == p.Heads && p.SeqlenK == p.SeqlenQ && p.Key == s.Key), null),
        };
        foreach (var impl in Impls.Order.Where(anchors.ContainsKey))
        {
            series.Add((Impls.Label(impl), _ => null, impl));
        }
        var plot = new Plot();
        var groupWidth = series.Count + 1.0;
        var top = 0.0;
        var spreads = new List<Action>();
        var legendShown = false;
        for (var j = 0; j < series.Count; ++j)
        {
            var (label, oursOf, anchor) = series[j];
            var color = plot.Add.Palette.GetColor(j);
            var bars = new List<Bar>();
            var xs = new List<double>();
            var ys = new List<double>();
            var lows = new List<double?>();
            var highs = new List<double?>();
            for (var i = 0; i < shapes.Count; ++i)
            {
                var x = i * groupWidth + j;
                double value;
                if (anchor is null)
                {
                    var row = oursOf(shapes[i])!;
                    value = row.Tflops;
                    xs.Add(x);
                    ys.Add(value);
                    // TFLOP/s is inversely proportional to time: the fastest repetition gives the upper end.
                    highs.Add(row.MsMin is { } fast ? value * row.Ms / fast : null);
                    lows.Add(row.MsMax is { } slow ? value * row.Ms / slow : null);
                    top = Math.Max(top, highs[^1] ?? value);
                }
                else if (anchors[anchor].TryGetValue(shapes[i].Key, out var t))
                {
                    value = t;
                }
                else
                {
                    continue;
                }
                top = Math.Max(top, value);
                bars.Add(new Bar { Position = x, Value = value, FillColor = color, Size = 0.9 });
            }
            var plottable = plot.Add.Bars(bars);
            plottable.LegendText = label;
            // Error bars go on after every bar series, so that they draw on top and list last in the legend.
            spreads.Add(() => legendShown |= Spread.AddVertical(plot, xs, ys, lows, highs, Colors.Black,
                legendShown ? null : SpreadLegend(auto.Concat(portable))));
        }
        foreach (var add in spreads)
        {
            add();
        }
        plot.Axes.Bottom.SetTicks(
            shapes.Select((_, i) => i * groupWidth + (series.Count - 1) / 2.0).ToArray(),
            shapes.Select(s => s.Label).ToArray());
        plot.Axes.SetLimits(-1, shapes.Count * groupWidth - 1, 0, top * 1.25);
        var stem = Path.GetFileName(portablePath)[..^"-dense-portable.json".Length];
        plot.Title($"Dense forward, bf16, {device}: our two kernels and the anchors of the same run\n" +
                   $"source: {stem}-dense.json, -dense-portable.json{(anchors.Count > 0 ? ", -anchors-dense.txt" : "")}");
        plot.YLabel("effective TFLOP/s at the median time");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Legend.Orientation = Orientation.Horizontal;
        Directory.CreateDirectory(plotsFolder);
        var file = Path.Combine(plotsFolder, FileName);
        plot.SavePng(file, Width, Height);
        Console.WriteLine($"  wrote {file}");
    }
}
