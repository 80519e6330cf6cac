using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace SparseAttn.Cli;

/// <summary>Exit codes of the tool.</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>The result did not match the reference.</summary>
    public const int CheckFailed = 1;

    /// <summary>Bad arguments or input files (the message says which).</summary>
    public const int BadArguments = 2;

    /// <summary>The library failed at run time (a CUDA error, out of memory).</summary>
    public const int Failure = 3;
}

/// <summary>A bad command-line value; reported with exit code 2.</summary>
/// <param name="message">What is wrong, naming the option.</param>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Builds the command tree and runs one command line.</summary>
public static class CliApp
{
    /// <summary>Parses and runs <paramref name="args"/>, writing to <paramref name="console"/>.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="console">Where results and messages go.</param>
    /// <param name="helpOutput">Where help text goes (null: standard output).</param>
    public static int Run(string[] args, IAnsiConsole console, TextWriter? helpOutput = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        var root = new RootCommand("sparseattn: dense, neighborhood and block-sparse attention (CPU and CUDA).")
        {
            InfoCommand.Create(console),
            RunCommand.Create(console),
            EstimateCommand.Create(console),
        };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                console.MarkupLineInterpolated($"[red]error:[/] {error.Message}");
            }
            console.MarkupLine("Run [bold]sparseattn --help[/] for usage.");
            return ExitCodes.BadArguments;
        }
        var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (helpOutput is not null)
        {
            configuration.Output = helpOutput;
        }
        return parsed.Invoke(configuration);
    }

    /// <summary>Width given to a console whose output is piped or redirected: wide enough that no row wraps.</summary>
    internal const int RedirectedWidth = 4096;

    /// <summary>
    /// A piped or redirected console has no terminal width, and the renderer would wrap every line at 80 columns:
    /// give it a width no table row reaches, so each row stays one line for grep and scripts.
    /// </summary>
    internal static void UnwrapForRedirectedOutput(IAnsiConsole console) => console.Profile.Width = RedirectedWidth;

    /// <summary>Runs a command body, mapping exceptions to exit codes with a message.</summary>
    internal static int Guard(IAnsiConsole console, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (SparseAttnException ex)
        {
            // A CUDA or internal failure of the native library: the run itself failed, the arguments were fine.
            console.MarkupLineInterpolated($"[red]failure:[/] {ex.Message}");
            return ExitCodes.Failure;
        }
        catch (Exception ex) when (ex is UsageException or ArgumentException or InvalidDataException or FileNotFoundException
                                       or DirectoryNotFoundException or NotSupportedException)
        {
            console.MarkupLineInterpolated($"[red]error:[/] {ex.Message}");
            return ExitCodes.BadArguments;
        }
        catch (Exception ex)
        {
            console.MarkupLineInterpolated($"[red]failure:[/] {ex.Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>Parses per-dimension integers written "32x32", "32,32" or "32".</summary>
    internal static int[] ParseDims(string text, string option)
    {
        var parts = text.Split(['x', 'X', ','], StringSplitOptions.TrimEntries);
        if (parts.Length is < 1 or > 3)
        {
            throw new UsageException($"{option} '{text}' must have 1 to 3 dimensions, e.g. 64 or 32x32.");
        }
        var dims = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i]))
            {
                throw new UsageException($"{option} '{text}' is not a list of non-negative integers (e.g. 32x32).");
            }
        }
        return dims;
    }

    /// <summary>Per-dimension values of an optional option: absent means <paramref name="fallback"/> in every dimension.</summary>
    internal static int[] DimsOrDefault(string? text, string option, int rank, int fallback)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return Enumerable.Repeat(fallback, rank).ToArray();
        }
        var dims = ParseDims(text, option);
        if (dims.Length == 1 && rank > 1)
        {
            return Enumerable.Repeat(dims[0], rank).ToArray();
        }
        if (dims.Length != rank)
        {
            throw new UsageException($"{option} '{text}' has {dims.Length} dimensions but --grid has {rank}.");
        }
        return dims;
    }

    /// <summary>A neighborhood configuration from the --grid, --kernel, --dilation, --stride and --causal-dims texts.</summary>
    internal static NeighborhoodConfig Neighborhood(string grid, string? kernel, string? dilation, string? stride,
        string? causalDims)
    {
        var g = ParseDims(grid, "--grid");
        if (kernel is null)
        {
            throw new UsageException("--kernel is required for neighborhood attention (e.g. --kernel 7x7).");
        }
        var k = DimsOrDefault(kernel, "--kernel", g.Length, 1);
        var d = DimsOrDefault(dilation, "--dilation", g.Length, 1);
        var s = DimsOrDefault(stride, "--stride", g.Length, 1);
        var c = DimsOrDefault(causalDims, "--causal-dims", g.Length, 0);
        if (c.Any(x => x > 1))
        {
            throw new UsageException($"--causal-dims '{causalDims}' takes 0 or 1 per dimension, e.g. 1x0.");
        }
        try
        {
            return NeighborhoodConfig.Create(g, k, d, s, c.Select(x => x == 1).ToArray());
        }
        catch (ArgumentException ex)
        {
            throw new UsageException($"invalid neighborhood configuration: {ex.Message}");
        }
    }

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    /// <summary>Writes <paramref name="value"/> as one JSON object, straight to the output (never wrapped or styled).</summary>
    internal static void WriteJson<T>(IAnsiConsole console, T value)
    {
        var writer = console.Profile.Out.Writer;
        writer.WriteLine(System.Text.Json.JsonSerializer.Serialize(value, JsonOptions));
        writer.Flush();
    }

    /// <summary>A count with separators, and a short form when large: 1234567 -> "1,234,567 (1.23 M)".</summary>
    internal static string Count(long value)
    {
        var full = value.ToString("N0", CultureInfo.InvariantCulture);
        return value switch
        {
            >= 1_000_000_000_000 => $"{full} ({value / 1e12:F2} T)",
            >= 1_000_000_000 => $"{full} ({value / 1e9:F2} G)",
            >= 1_000_000 => $"{full} ({value / 1e6:F2} M)",
            _ => full,
        };
    }

    /// <summary>A one-line description of a neighborhood configuration.</summary>
    internal static string Describe(NeighborhoodConfig config)
    {
        static string Join<T>(ReadOnlySpan<T> values) => string.Join("x", values.ToArray());
        var causal = config.Causal.ToArray().Select(c => c ? 1 : 0).ToArray();
        return $"grid {Join(config.Grid)}, kernel {Join(config.Kernel)}, dilation {Join(config.Dilation)}, " +
               $"stride {Join(config.Stride)}, causal {string.Join("x", causal)}";
    }

    /// <summary>Pairs (query, key) of dense attention, bottom-right causal when asked.</summary>
    /// <summary>Pairs of top-left causal attention: query i sees keys 0..min(i, S_k - 1).</summary>
    internal static long DensePairsTopLeft(long seqQ, long seqK)
    {
        var square = Math.Min(seqQ, seqK);
        return checked((long)((Int128)square * (square + 1) / 2 + (Int128)Math.Max(0, seqQ - seqK) * seqK));
    }

    internal static long DensePairs(long seqQ, long seqK, bool causal)
    {
        if (!causal)
        {
            return seqQ * seqK;
        }
        // Query i sees i + seqK - seqQ + 1 keys (never more than seqK), none before the first query that
        // sees any: an arithmetic series, summed in Int128 so that int-sized lengths cannot overflow.
        var first = Math.Max(0, seqQ - seqK);
        if (first >= seqQ)
        {
            return 0;
        }
        Int128 n = seqQ - first;
        Int128 sum = n * (first + seqK - seqQ + 1 + seqK) / 2;
        return (long)sum;
    }
}
