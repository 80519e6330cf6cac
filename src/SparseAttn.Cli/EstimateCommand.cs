using System.CommandLine;
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

        public double Speedup => AllowedPairs == 0 ? double.PositiveInfinity : (double)DensePairs / AllowedPairs;
    }

    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("estimate", "Allowed pairs, density and FLOP-bound speedup over dense attention.");
        command.Add(CreateNeighborhood(console));
        command.Add(CreateBlockMask(console));
        return command;
    }

    private static Command CreateNeighborhood(IAnsiConsole console)
    {
        var grid = new Option<string>("--grid") { Description = "Token grid, e.g. 4096 or 64x64 or 8x32x32.", Required = true };
        var kernel = new Option<string>("--kernel") { Description = "Window per dimension, e.g. 13x13.", Required = true };
        var dilation = new Option<string?>("--dilation") { Description = "Dilation per dimension (default 1)." };
        var stride = new Option<string?>("--stride") { Description = "Stride per dimension (default 1)." };
        var causal = new Option<string?>("--causal-dims") { Description = "Causal flag per dimension, e.g. 1x0 (default 0)." };
        var command = new Command("neighborhood", "Estimate a generalized neighborhood attention configuration.")
        {
            grid, kernel, dilation, stride, causal,
        };
        command.SetAction(parse => CliApp.Guard(console, () =>
        {
            var config = CliApp.Neighborhood(parse.GetValue(grid)!, parse.GetValue(kernel), parse.GetValue(dilation),
                parse.GetValue(stride), parse.GetValue(causal));
            Print(console, ForNeighborhood(config));
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
        var command = new Command("block-mask", "Estimate a block mask: random density, sliding window or causal.")
        {
            seq, block, pattern, density, window, causal, seed,
        };
        command.SetAction(parse => CliApp.Guard(console, () =>
        {
            var estimate = ForBlockMask(parse.GetValue(seq), parse.GetValue(block), parse.GetValue(pattern)!,
                parse.GetValue(density), parse.GetValue(window), parse.GetValue(causal), parse.GetValue(seed));
            Print(console, estimate);
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
            allCausal, null);
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

    private static void Print(IAnsiConsole console, Estimate estimate)
    {
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
        Row("FLOP-bound speedup", $"{estimate.Speedup:F2}x over {(estimate.CausalBaseline ? "causal dense" : "dense")}");
        console.Write(table);
    }
}
