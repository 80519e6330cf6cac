using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SparseAttn.Reports;

/// <summary>Finding the files of one recorded device run in the results folder.</summary>
internal static partial class RecordedRuns
{
    /// <summary>The anchors log recorded beside a sparse bench JSON: <c>X.json</c> → <c>X.anchors.txt</c>.</summary>
    public static string AnchorsOf(string json) => Path.ChangeExtension(json, ".anchors.txt");

    /// <summary>
    /// The newest <c>DATE-DEVICE-SUITE-vN.json</c> that has its <c>.anchors.txt</c> beside it, or null.
    /// Newest: the largest name without the version, then the largest N as a number (v10 after v9).
    /// </summary>
    public static string? NewestWithAnchors(string folder, string suite)
    {
        if (!Directory.Exists(folder))
        {
            return null;
        }
        var pattern = new Regex($"^(.*)-{Regex.Escape(suite)}-v(\\d+)$", RegexOptions.CultureInvariant);
        return Directory.GetFiles(folder, $"*-{suite}-v*.json")
            .Select(p => (Path: p, Match: pattern.Match(Path.GetFileNameWithoutExtension(p))))
            .Where(f => f.Match.Success && File.Exists(AnchorsOf(f.Path)))
            .OrderBy(f => f.Match.Groups[1].Value, StringComparer.Ordinal)
            .ThenBy(f => long.Parse(f.Match.Groups[2].Value, CultureInfo.InvariantCulture))
            .Select(f => f.Path)
            .LastOrDefault();
    }
}

/// <summary>One row of an anchors log: the case name, the median time and TFLOP/s on the attended pairs.</summary>
internal sealed record AnchorLine(string Name, double Ms, double Tflops);

/// <summary>
/// The logs of the Python anchor scripts (<c>bench/gpu/anchors_sparse.py</c>, <c>anchors_bench.py</c>): a version
/// line, then one line per case, <c>NAME   12.345 ms   600.1 TFLOP/s</c>. Other lines are ignored.
/// </summary>
internal static partial class AnchorLog
{
    [GeneratedRegex(@"^\s*(\S.*?)\s+([0-9]+(?:\.[0-9]+)?) ms\s+([0-9]+(?:\.[0-9]+)?) TFLOP/s\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Line();

    public static List<AnchorLine> Parse(IEnumerable<string> lines)
    {
        var rows = new List<AnchorLine>();
        foreach (var line in lines)
        {
            var m = Line().Match(line);
            if (m.Success)
            {
                rows.Add(new AnchorLine(m.Groups[1].Value, Number(m.Groups[2].Value), Number(m.Groups[3].Value)));
            }
        }
        return rows;
    }

    public static List<AnchorLine> Load(string path) => Parse(File.ReadLines(path));

    public static double Number(string s) => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
}

/// <summary>One row of <c>sparseattn_bench_sparse --json</c> (fields in bench/results/README.md).</summary>
internal sealed record SparseBenchRow(string Name, double Ms, double? MsMin, double? MsMax, double PairBound, double TileBound)
{
    /// <summary>The rows of a bench JSON; a row without <c>name</c> or a positive <c>ms</c> is left out.</summary>
    public static List<SparseBenchRow> Load(string path) => Parse(File.ReadAllText(path));

    public static List<SparseBenchRow> Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var rows = new List<SparseBenchRow>();
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("results", out var results) ||
            results.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException("bench JSON without a results array");
        }
        foreach (var row in results.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Object)
            {
                continue;
            }
            var name = row.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            var ms = Field(row, "ms");
            if (name is null || ms is not > 0)
            {
                continue;
            }
            rows.Add(new SparseBenchRow(name, ms.Value, Field(row, "ms_min"), Field(row, "ms_max"),
                Field(row, "pair_bound") ?? 0, Field(row, "tile_bound") ?? 0));
        }
        return rows;
    }

    /// <summary>A positive number field, or null when absent, zero or not a number.</summary>
    public static double? Field(JsonElement row, string name) =>
        row.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.GetDouble() > 0 ? v.GetDouble() : null;
}

/// <summary>Error bars around points from the spread over repetitions, where the producer recorded it.</summary>
internal static class Spread
{
    /// <summary>
    /// Adds asymmetric vertical bars: for each point the distance up to <paramref name="high"/> and down to
    /// <paramref name="low"/> (null: no bar on that side). Nothing is added (false) when no point has a spread.
    /// <paramref name="legend"/>: the legend entry of these bars, none when null.
    /// </summary>
    public static bool AddVertical(ScottPlot.Plot plot, IReadOnlyList<double> xs, IReadOnlyList<double> ys,
        IReadOnlyList<double?> low, IReadOnlyList<double?> high, ScottPlot.Color color, string? legend = null)
    {
        if (low.All(v => v is null) && high.All(v => v is null))
        {
            return false;
        }
        var zeros = new double[xs.Count];
        var up = ys.Select((y, i) => high[i] is { } h ? Math.Max(h - y, 0) : 0).ToArray();
        var down = ys.Select((y, i) => low[i] is { } l ? Math.Max(y - l, 0) : 0).ToArray();
        var bars = new ScottPlot.Plottables.ErrorBar(xs.ToArray(), ys.ToArray(), zeros, zeros, up, down)
        {
            Color = color,
            LineWidth = 1.5f,
            CapSize = 5,
        };
        if (legend is not null)
        {
            bars.LegendText = legend;
        }
        plot.Add.Plottable(bars);
        return true;
    }
}
