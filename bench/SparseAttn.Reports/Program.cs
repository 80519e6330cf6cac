using SparseAttn.Reports;

// Verbs: report (plots + README table, the default), plots, table, apidocs.
// Paths default to the repository that holds this project; --root overrides it.
try
{
    var verb = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "report";
    var options = CommandLine.Parse(args.SkipWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray());
    var root = options.TryGetValue("root", out var r) ? r[0] : RepositoryRoot.Find();
    var results = Path.Combine(root, "bench", "results");
    switch (verb)
    {
        case "report":
            SweepPlots.Render(results, Path.Combine(root, "bench", "plots"), options.GetValueOrDefault("sweep")?[0]);
            RecordedPlots(results, Path.Combine(root, "bench", "plots"));
            BenchTable.WriteIntoReadme(results, Path.Combine(root, "README.md"));
            return 0;
        case "plots":
            SweepPlots.Render(results, Path.Combine(root, "bench", "plots"), options.GetValueOrDefault("sweep")?[0]);
            RecordedPlots(results, Path.Combine(root, "bench", "plots"));
            return 0;
        case "table":
            Console.WriteLine(BenchTable.Build(results));
            return 0;
        case "apidocs":
            var assemblies = options.GetValueOrDefault("assembly")
                ?? throw new ArgumentException("apidocs needs --assembly PATH.dll (its XML documentation file beside it)");
            ApiDocs.Generate(assemblies, options.GetValueOrDefault("out")?[0] ?? Path.Combine(root, "docs", "api"));
            return 0;
        default:
            Console.Error.WriteLine("usage: SparseAttn.Reports [report|plots|table|apidocs] [--root DIR] [--sweep FILE.json] " +
                                    "[--assembly A.dll ...] [--out DIR]");
            return 2;
    }
}
catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or UnauthorizedAccessException
                              or System.Text.Json.JsonException or System.Xml.XmlException)
{
    Console.Error.WriteLine($"reports: {e.Message}");
    return 1;
}

// The plots from raw bench JSON and anchor logs, each on its own: a file it cannot read skips that plot only.
static void RecordedPlots(string results, string plots)
{
    foreach (var (name, render) in new (string, Action<string, string>)[]
             {
                 ("block-sparse-h200.png", BlockSparsePlot.Render),
                 (NeighborhoodPlot.FileName, NeighborhoodPlot.Render),
                 (DenseKernelsPlot.FileName, DenseKernelsPlot.Render),
             })
    {
        try
        {
            render(results, plots);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or FormatException
                                      or InvalidOperationException or KeyNotFoundException or System.Text.Json.JsonException)
        {
            Console.WriteLine($"  {name} skipped: {e.Message}");
        }
    }
}

namespace SparseAttn.Reports
{
    /// <summary>Options of the form --name value [value ...].</summary>
    internal static class CommandLine
    {
        public static Dictionary<string, string[]> Parse(string[] args)
        {
            var options = new Dictionary<string, string[]>(StringComparer.Ordinal);
            for (var i = 0; i < args.Length;)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new ArgumentException($"unexpected argument '{args[i]}'");
                }
                var name = args[i][2..];
                var values = args.Skip(i + 1).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
                if (values.Length == 0)
                {
                    throw new ArgumentException($"--{name} needs a value");
                }
                options[name] = options.TryGetValue(name, out var earlier) ? [.. earlier, .. values] : values;
                i += 1 + values.Length;
            }
            return options;
        }
    }

    internal static class RepositoryRoot
    {
        /// <summary>The nearest folder above the working directory that holds VERSION and SparseAttn.sln.</summary>
        public static string Find()
        {
            for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "VERSION")) && File.Exists(Path.Combine(dir.FullName, "SparseAttn.sln")))
                {
                    return dir.FullName;
                }
            }
            throw new ArgumentException("not inside the SparseAttn repository: pass --root DIR");
        }
    }
}
