using System.Text.Json;
using System.Text.Json.Serialization;

namespace SparseAttn.Reports;

/// <summary>
/// One benchmark sweep, as bench/gpu/sweep.sh writes it (schema in bench/results/README.md):
/// every implementation measured in the same device run.
/// </summary>
internal sealed record SweepFile
{
    public const string SchemaName = "sparseattn-bench-sweep/1";

    public required string Schema { get; init; }
    public required string Device { get; init; }
    public string? Date { get; init; }
    public Dictionary<string, string>? Software { get; init; }
    public required List<SweepResult> Results { get; init; }

    [JsonIgnore]
    public string Path { get; private set; } = "";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads a file; null when it is JSON of another schema (e.g. a raw native bench output).</summary>
    public static SweepFile? TryLoad(string path)
    {
        using var stream = File.OpenRead(path);
        using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        if (doc.RootElement.ValueKind != JsonValueKind.Object ||
            !doc.RootElement.TryGetProperty("schema", out var schema) || schema.GetString() != SchemaName)
        {
            return null;
        }
        var file = doc.RootElement.Deserialize<SweepFile>(Json) ?? throw new InvalidDataException($"{path}: empty sweep file");
        foreach (var r in file.Results)
        {
            r.Validate(path);
        }
        return file with { Path = path };
    }

    /// <summary>
    /// Every sweep file under a folder, newest name last (names start with the date). A file that is not valid
    /// JSON is left out with a message: it may be another tool's output, and the other files still count.
    /// </summary>
    public static List<SweepFile> LoadAll(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(TryLoadOrSkip).OfType<SweepFile>().ToList()
            : [];

    private static SweepFile? TryLoadOrSkip(string path)
    {
        try
        {
            return TryLoad(path);
        }
        catch (JsonException e)
        {
            Console.WriteLine($"  {System.IO.Path.GetFileName(path)}: not valid JSON, ignored ({e.Message})");
            return null;
        }
    }
}

/// <summary>One measured case of a sweep.</summary>
internal sealed record SweepResult
{
    /// <summary>sparseattn, sdpa-flash, sdpa-cudnn or flex.</summary>
    public required string Impl { get; init; }
    /// <summary>dense or block_sparse.</summary>
    public required string Family { get; init; }
    public required int Batch { get; init; }
    public required int Heads { get; init; }
    public int HeadsKv { get; init; }
    public required long SeqlenQ { get; init; }
    public long SeqlenK { get; init; }
    public required int Dim { get; init; }
    public string Dtype { get; init; } = "bf16";
    public bool Causal { get; init; }
    /// <summary>Block-sparse: fraction of (query block, key block) pairs listed; null for dense.</summary>
    public double? Density { get; init; }
    public int? Block { get; init; }
    /// <summary>Median time of one forward call, milliseconds.</summary>
    public required double Ms { get; init; }
    /// <summary>Optional: the fastest and the slowest repetition, milliseconds (error bars where present).</summary>
    public double? MsMin { get; init; }
    public double? MsMax { get; init; }
    /// <summary>Effective TFLOP/s: 4·B·H·D·(allowed pairs) / median time.</summary>
    public required double Tflops { get; init; }
    /// <summary>Result check in the same run, when the producer made one.</summary>
    public bool? Ok { get; init; }

    public void Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Impl) || (Family != "dense" && Family != "block_sparse"))
        {
            throw new InvalidDataException($"{path}: result needs impl and family dense|block_sparse (impl '{Impl}', family '{Family}')");
        }
        if (Ms <= 0 || Tflops <= 0 || SeqlenQ <= 0 || Dim <= 0 || Batch <= 0 || Heads <= 0)
        {
            throw new InvalidDataException($"{path}: {Impl} {Family} S{SeqlenQ}: ms, tflops and sizes must be positive");
        }
        if (Family == "block_sparse" && Density is not (> 0 and <= 1))
        {
            throw new InvalidDataException($"{path}: {Impl} block_sparse S{SeqlenQ}: density must be in (0, 1], is {Density}");
        }
    }

    /// <summary>Same problem shape (the dense baseline of a block-sparse case).</summary>
    public bool SameShape(SweepResult o) =>
        Batch == o.Batch && Heads == o.Heads && SeqlenQ == o.SeqlenQ && EffectiveSeqlenK == o.EffectiveSeqlenK && Dim == o.Dim &&
        Dtype == o.Dtype;

    public long EffectiveSeqlenK => SeqlenK > 0 ? SeqlenK : SeqlenQ;
}

/// <summary>Display names of the implementations, in plotting order.</summary>
internal static class Impls
{
    public static readonly string[] Order = ["sparseattn", "sdpa-flash", "sdpa-cudnn", "flex"];

    public static string Label(string impl) => impl switch
    {
        "sparseattn" => "SparseAttn",
        "sdpa-flash" => "SDPA flash (FA2)",
        "sdpa-cudnn" => "cuDNN (SDPA)",
        "flex" => "FlexAttention",
        _ => impl,
    };

    public static int Rank(string impl) => Array.IndexOf(Order, impl) is var i and >= 0 ? i : Order.Length;
}
