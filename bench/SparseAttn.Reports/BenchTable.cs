using System.Globalization;
using System.Text;

namespace SparseAttn.Reports;

/// <summary>The Markdown benchmark table of the README, from the recorded results.</summary>
internal static class BenchTable
{
    public const string StartMarker = "<!-- bench-table:start -->";
    public const string EndMarker = "<!-- bench-table:end -->";

    /// <summary>Replaces what lies between the markers of the README with the table.</summary>
    public static void WriteIntoReadme(string resultsFolder, string readmePath)
    {
        var readme = File.ReadAllText(readmePath);
        var start = readme.IndexOf(StartMarker, StringComparison.Ordinal);
        var end = readme.IndexOf(EndMarker, StringComparison.Ordinal);
        if (start < 0 || end < start)
        {
            throw new InvalidDataException($"{readmePath}: needs the markers {StartMarker} and {EndMarker}, in that order");
        }
        var table = Build(resultsFolder);
        var updated = readme[..(start + StartMarker.Length)] + "\n" + table + readme[end..];
        if (updated != readme)
        {
            File.WriteAllText(readmePath, updated);
        }
        Console.WriteLine($"table: {(updated != readme ? "updated" : "unchanged")} in {readmePath}");
    }

    public static string Build(string resultsFolder)
    {
        var text = new StringBuilder();
        var recorded = RecordedTable.LoadAll(resultsFolder).LastOrDefault();
        if (recorded is not null)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"**{recorded.Title}.** Effective TFLOP/s (4·B·H·D·pairs / median time), ours and the anchors in one " +
                $"device run; source: [`bench/results/{Path.GetFileName(recorded.Path)}`](bench/results/{Path.GetFileName(recorded.Path)}).\n\n");
            text.Append(recorded.ToMarkdown());
        }
        var sweep = SweepFile.LoadAll(resultsFolder).LastOrDefault();
        if (sweep is not null)
        {
            if (text.Length > 0)
            {
                text.Append('\n');
            }
            text.Append(SweepTable(sweep));
        }
        if (text.Length == 0)
        {
            text.Append("No recorded results yet: see `bench/results/README.md`.\n");
        }
        return text.ToString();
    }

    /// <summary>Dense TFLOP/s per sequence length and implementation, with our ratio to the best anchor.</summary>
    private static string SweepTable(SweepFile sweep)
    {
        var dense = sweep.Results.Where(r => r.Family == "dense").ToList();
        var impls = dense.Select(r => r.Impl).Distinct().OrderBy(Impls.Rank).ToList();
        var text = new StringBuilder();
        var name = Path.GetFileName(sweep.Path);
        text.Append(CultureInfo.InvariantCulture,
            $"Sequence-length sweep on {sweep.Device}{(sweep.Date is null ? "" : $", {sweep.Date}")}, dense forward, effective TFLOP/s " +
            $"(source: [`bench/results/{name}`](bench/results/{name}); plots in `bench/plots/`).\n\n");
        text.Append("| case | ").Append(string.Join(" | ", impls.Select(Impls.Label))).Append(" | ours / best other |\n");
        text.Append("|---|").Append(string.Concat(impls.Select(_ => "---|"))).Append("---|\n");
        foreach (var shape in dense.GroupBy(r => (r.Batch, r.Heads, r.SeqlenQ, r.Dim, r.Dtype, r.Causal))
                     .OrderBy(g => g.Key.Causal).ThenBy(g => g.Key.SeqlenQ))
        {
            var k = shape.Key;
            text.Append(CultureInfo.InvariantCulture, $"| {k.Dtype} B{k.Batch} H{k.Heads} S{k.SeqlenQ} D{k.Dim} {(k.Causal ? "causal" : "full")} |");
            foreach (var impl in impls)
            {
                var r = shape.FirstOrDefault(x => x.Impl == impl);
                text.Append(r is null ? " - |" : string.Create(CultureInfo.InvariantCulture, $" {r.Tflops:F1} |"));
            }
            var ours = shape.FirstOrDefault(x => x.Impl == "sparseattn");
            var best = shape.Where(x => x.Impl != "sparseattn").MaxBy(x => x.Tflops);
            text.Append(ours is not null && best is not null
                ? string.Create(CultureInfo.InvariantCulture, $" {ours.Tflops / best.Tflops:F2} ({Impls.Label(best.Impl)}) |\n")
                : " - |\n");
        }
        return text.ToString();
    }
}

/// <summary>
/// A ratio table recorded in bench/results/*.md: the first Markdown table whose header starts with
/// "case" and has an "ours" column; the title is the file's first heading.
/// </summary>
internal sealed record RecordedTable(string Path, string Title, string[] Header, List<string[]> Rows)
{
    public static List<RecordedTable> LoadAll(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*.md").Where(f => !System.IO.Path.GetFileName(f).Equals("README.md", StringComparison.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal).Select(TryLoad).OfType<RecordedTable>().ToList()
            : [];

    public static RecordedTable? TryLoad(string path)
    {
        var lines = File.ReadAllLines(path);
        var title = lines.FirstOrDefault(l => l.StartsWith("# ", StringComparison.Ordinal))?[2..].Trim()
                    ?? System.IO.Path.GetFileNameWithoutExtension(path);
        for (var i = 0; i + 1 < lines.Length; i++)
        {
            var header = Cells(lines[i]);
            if (header is null || header.Length < 2 || !header[0].StartsWith("case", StringComparison.OrdinalIgnoreCase) ||
                !header.Contains("ours", StringComparer.OrdinalIgnoreCase) || Cells(lines[i + 1]) is not { } rule ||
                !rule.All(c => c.Trim('-', ':').Length == 0))
            {
                continue;
            }
            var rows = new List<string[]>();
            for (var j = i + 2; j < lines.Length && Cells(lines[j]) is { } row; j++)
            {
                if (row.Length != header.Length)
                {
                    throw new InvalidDataException($"{path}:{j + 1}: {row.Length} cells, the header has {header.Length}");
                }
                rows.Add(row);
            }
            return new RecordedTable(path, title, header, rows);
        }
        return null;
    }

    private static string[]? Cells(string line)
    {
        var t = line.Trim();
        return t.Length >= 2 && t[0] == '|' && t[^1] == '|' ? t[1..^1].Split('|').Select(c => c.Trim()).ToArray() : null;
    }

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.Append("| ").Append(string.Join(" | ", Header)).Append(" |\n");
        text.Append('|').Append(string.Concat(Header.Select(_ => "---|"))).Append('\n');
        foreach (var row in Rows)
        {
            text.Append("| ").Append(string.Join(" | ", row)).Append(" |\n");
        }
        return text.ToString();
    }
}
