using System.CommandLine;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace SparseAttn.Cli;

/// <summary>
/// <c>sparseattn estimate</c>: allowed (query, key) pairs, density and the FLOP-bound speedup over dense
/// attention of a neighborhood configuration or a block mask.
/// </summary>
internal static class EstimateCommand
{
    /// <summary>The numbers an estimate prints.</summary>
    internal sealed record Estimate(string What, long Tokens, long AllowedPairs, long DensePairs, bool CausalBaseline,
        double? BlockDensity)
    {
        public double Density => (double)AllowedPairs / ((double)Tokens * Tokens);

        /// <summary>The pair-level (FLOP) bound: dense pairs over allowed pairs.</summary>
        [JsonIgnore]
        public double Speedup => AllowedPairs == 0 ? double.PositiveInfinity : (double)DensePairs / AllowedPairs;

        /// <summary>The pair-level bound for JSON (null when no pair is allowed).</summary>
        public double? PairBoundSpeedup => AllowedPairs == 0 ? null : Speedup;

        /// <summary>Tile-level bounds with the tile shapes of the library's kernels (neighborhood only).</summary>
        public IReadOnlyList<TileBound> TileBounds { get; init; } = [];
    }

    /// <summary>
    /// The tiles one kernel family visits: a visited tile costs its whole size, so dense tiles over visited tiles
    /// bounds what a tiled kernel can gain (the pair bound is only the FLOP bound).
    /// </summary>
    internal sealed record TileBound(string Kernel, int TileRows, int TileKeys, IReadOnlyList<int> QueryBox, IReadOnlyList<int> KeyBox,
        double TilesVisited, double DenseTiles, double MaskedFraction, double TileBoundSpeedup, double PredictedSpeedup);

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("estimate", "Allowed pairs, density and FLOP-bound speedup over dense attention.");
        command.Add(CreateNeighborhood(console));
        command.Add(CreateBlockMask(console));
        return command;
    }

    internal static Option<bool> JsonOption() => new("--json") { Description = "Print one JSON object instead of a table." };

    private static Command CreateNeighborhood(IAnsiConsole console)
    {
        var grid = new Option<string>("--grid") { Description = "Token grid, e.g. 4096 or 64x64 or 8x32x32.", Required = true };
        var kernel = new Option<string>("--kernel") { Description = "Window per dimension, e.g. 13x13.", Required = true };
        var dilation = new Option<string?>("--dilation") { Description = "Dilation per dimension (default 1)." };
        var stride = new Option<string?>("--stride") { Description = "Stride per dimension (default 1)." };
        var causal = new Option<string?>("--causal-dims") { Description = "Causal flag per dimension, e.g. 1x0 (default 0)." };
        var json = JsonOption();
        var command = new Command("neighborhood",
            "Estimate a generalized neighborhood attention configuration: the pair-level (FLOP) bound and the tile-level " +
            "bound of the library's kernels (CUDA mma.sync 64x64 tiles, Hopper wgmma 128x128, CPU 64-token boxes).")
        {
            grid, kernel, dilation, stride, causal, json,
        };
        command.SetAction(parse => CliApp.Guard(console, () =>
        {
            var config = CliApp.Neighborhood(parse.GetValue(grid)!, parse.GetValue(kernel), parse.GetValue(dilation),
                parse.GetValue(stride), parse.GetValue(causal));
            Print(console, ForNeighborhood(config), parse.GetValue(json));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateBlockMask(IAnsiConsole console)
    {
        var seq = new Option<int>("--seq") { Description = "Sequence length (queries and keys).", Required = true };
        var block = new Option<int>("--block") { Description = "Rows per block.", DefaultValueFactory = _ => 128 };
        var pattern = new Option<string>("--pattern")
        {
            Description = "random | window | causal.",
            DefaultValueFactory = _ => "random",
        }.AcceptOnlyFromAmong("random", "window", "causal");
        var density = new Option<double>("--density")
        {
            Description = "random: probability that a block is listed (the diagonal always is).",
            DefaultValueFactory = _ => 0.1,
        };
        var window = new Option<int>("--window") { Description = "window: sliding window in tokens.", DefaultValueFactory = _ => 1024 };
        var causal = new Option<bool>("--causal") { Description = "Causal attention (bottom-right); the baseline is causal dense." };
        var seed = new Option<int>("--seed") { Description = "Seed of the random mask.", DefaultValueFactory = _ => 1 };
        var json = JsonOption();
        var command = new Command("block-mask", "Estimate a block mask: random density, sliding window or causal.")
        {
            seq, block, pattern, density, window, causal, seed, json,
        };
        command.SetAction(parse => CliApp.Guard(console, () =>
        {
            var estimate = ForBlockMask(parse.GetValue(seq), parse.GetValue(block), parse.GetValue(pattern)!,
                parse.GetValue(density), parse.GetValue(window), parse.GetValue(causal), parse.GetValue(seed));
            Print(console, estimate, parse.GetValue(json));
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The estimate of a neighborhood configuration; the baseline is causal dense when every dimension is causal.</summary>
    internal static Estimate ForNeighborhood(NeighborhoodConfig config)
    {
        var tokens = (long)config.SequenceLength;
        var allCausal = true;
        foreach (var c in config.Causal)
        {
            allCausal &= c;
        }
        return new Estimate($"neighborhood: {CliApp.Describe(config)}", tokens, config.PairCount, CliApp.DensePairs(tokens, tokens, allCausal),
            allCausal, null) { TileBounds = TileBounds(config, allCausal) };
    }

    /// <summary>
    /// Tile bounds with the kernels' tile shapes: the CUDA mma.sync kernels (every GPU, 64 x 64, box shape chosen
    /// by the kernel), the Hopper wgmma kernels (128 x 128) and the CPU backend (64-token boxes grown dimension by
    /// dimension, last first; given when those sides are powers of two and dilation is 1, where the box grid is
    /// the group grid the estimator tiles).
    /// </summary>
    internal static IReadOnlyList<TileBound> TileBounds(NeighborhoodConfig config, bool causalBaseline)
    {
        var bounds = new List<TileBound>
        {
            Bound(config, "CUDA mma.sync", 64, 64, default, causalBaseline),
            Bound(config, "CUDA Hopper wgmma", 128, 128, default, causalBaseline),
        };
        var box = CpuBox(config);
        if (box is not null)
        {
            bounds.Add(Bound(config, "CPU", box.Aggregate(1, (a, b) => a * b), box.Aggregate(1, (a, b) => a * b), box, causalBaseline));
        }
        return bounds;
    }

    private static TileBound Bound(NeighborhoodConfig config, string kernel, int rows, int keys, ReadOnlySpan<int> box,
        bool causalBaseline)
    {
        var e = config.EstimateTiles(rows, keys, box, box);
        // Against causal dense attention the baseline is the tiles on or below the diagonal.
        var dense = causalBaseline ? CausalDenseTiles(config.SequenceLength, rows, keys) : e.DenseTiles;
        var rebase = e.DenseTiles > 0 ? dense / e.DenseTiles : 0;
        return new TileBound(kernel, rows, keys, e.QueryBox, e.KeyBox, e.TilesVisited, dense, e.MaskedFraction,
            e.TileBoundSpeedup * rebase, e.PredictedSpeedup * rebase);
    }

    /// <summary>Tiles causal dense attention visits: per query tile, the key tiles up to its last query.</summary>
    internal static double CausalDenseTiles(long tokens, int rows, int keys)
    {
        double tiles = 0;
        var keyTiles = (tokens + keys - 1) / keys;
        for (long start = 0; start < tokens; start += rows)
        {
            var last = Math.Min(start + rows, tokens) - 1;
            tiles += Math.Min(keyTiles, last / keys + 1);
        }
        return tiles;
    }

    /// <summary>The CPU backend's box of up to 64 tokens, or null when the tile estimator cannot express it.</summary>
    private static int[]? CpuBox(NeighborhoodConfig config)
    {
        var rank = config.SpatialRank;
        var length = config.Grid.ToArray();
        if (config.Dilation.ToArray().Any(d => d != 1))
        {
            return null;
        }
        var box = Enumerable.Repeat(1, rank).ToArray();
        for (var grew = true; grew;)
        {
            grew = false;
            for (var d = rank - 1; d >= 0; d--)
            {
                if (box[d] < length[d] && box.Aggregate(1, (a, b) => a * b) * 2 <= 64)
                {
                    box[d] = Math.Min(box[d] * 2, length[d]);
                    grew = true;
                }
            }
        }
        return box.All(b => (b & (b - 1)) == 0) ? box : null;
    }

    /// <summary>The estimate of a block mask pattern over one sequence.</summary>
    internal static Estimate ForBlockMask(int seq, int block, string pattern, double density, int window, bool causal, int seed)
    {
        if (seq < 1)
        {
            throw new UsageException($"--seq {seq} must be at least 1.");
        }
        if (block is not (64 or 128))
        {
            throw new UsageException($"--block {block} must be 64 or 128 (the block sizes of block-sparse attention).");
        }
        if (pattern == "random" && !(density >= 0 && density <= 1))
        {
            throw new UsageException($"--density {density} must be in [0, 1].");
        }
        if (pattern == "window" && window < 1)
        {
            throw new UsageException($"--window {window} must be at least 1.");
        }
        BlockMask mask;
        try
        {
            mask = pattern switch
            {
                "window" => BlockMask.SlidingWindow(seq, window, block, causal),
                "causal" => BlockMask.Causal(seq, seq, block, block),
                _ => BlockMask.Random(seq, block, density, seed, causal: causal),
            };
        }
        catch (ArgumentException ex)
        {
            throw new UsageException($"--seq {seq} with --block {block}: {ex.Message}");
        }
        var causalPairs = causal || pattern == "causal";
        var what = pattern switch
        {
            "window" => $"sliding window {window}",
            "causal" => "causal blocks",
            _ => $"random blocks, density {density}",
        };
        return new Estimate($"block mask ({what}), S = {seq}, block {block}", seq, mask.PairCount(seq, seq, causalPairs),
            CliApp.DensePairs(seq, seq, causalPairs), causalPairs, mask.Density);
    }

    private static void Print(IAnsiConsole console, Estimate estimate, bool json)
    {
        if (json)
        {
            CliApp.WriteJson(console, estimate);
            return;
        }
        var table = new Table { Title = new TableTitle(Markup.Escape(estimate.What)) }.AddColumns("quantity", "value");
        void Row(string label, string value) => table.AddRow(new Text(label), new Text(value));
        Row("tokens", estimate.Tokens.ToString());
        Row("allowed pairs", CliApp.Count(estimate.AllowedPairs));
        Row("pair density", $"{estimate.Density:P2} of S x S");
        if (estimate.BlockDensity is { } blocks)
        {
            Row("block density", $"{blocks:P2} of the blocks");
        }
        Row(estimate.CausalBaseline ? "causal dense pairs" : "dense pairs",
            CliApp.Count(estimate.DensePairs));
        var baseline = estimate.CausalBaseline ? "causal dense" : "dense";
        Row("pair-level bound (FLOPs)", $"{estimate.Speedup:F2}x over {baseline}");
        foreach (var t in estimate.TileBounds)
        {
            Row($"tile-level bound, {t.Kernel} ({t.TileRows} x {t.TileKeys} tiles)",
                $"{t.TileBoundSpeedup:F2}x over {baseline} ({CliApp.Count((long)t.TilesVisited)} of {CliApp.Count((long)t.DenseTiles)} " +
                $"tiles, boxes {string.Join("x", t.QueryBox)} / {string.Join("x", t.KeyBox)}, {t.MaskedFraction:P0} masked; " +
                $"predicted {t.PredictedSpeedup:F2}x)");
        }
        console.Write(table);
    }
}
