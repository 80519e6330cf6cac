using TorchSharp;
using static TorchSharp.torch;

namespace SparseAttn.TorchSharp.Tests.Support;

/// <summary>Torch's own attention and explicit token masks, the reference side of the comparisons.</summary>
public static class TorchReference
{
    /// <summary>
    /// Fresh seed every run, printed with each failure; SPARSEATTN_TEST_SEED fixes it to replay a run.
    /// </summary>
    public static readonly int Seed = ReadSeed();

    private static int ReadSeed()
    {
        var fixedSeed = Environment.GetEnvironmentVariable("SPARSEATTN_TEST_SEED");
        return fixedSeed is not null && int.TryParse(fixedSeed, out var seed) ? seed : System.Random.Shared.Next();
    }

    /// <summary>Seeds torch for one test from the run seed and the test name.</summary>
    public static void SeedFor(string testName)
    {
        unchecked
        {
            var h = Seed;
            foreach (var c in testName)
            {
                h = h * 31 + c;
            }
            torch.manual_seed(h & int.MaxValue);
        }
    }

    /// <summary>Uniform values in [-1, 1), never all zero.</summary>
    public static Tensor Random(ScalarType dtype, params long[] shape) => (torch.rand(shape) * 2 - 1).to(dtype);

    /// <summary>
    /// torch's scaled_dot_product_attention on [B, H, S, D] float32 tensors, with K/V heads repeated for
    /// GQA, an optional boolean mask (true = attend) and an optional scale (applied by scaling q).
    /// </summary>
    public static Tensor Sdpa(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false, double? scale = null)
    {
        var group = q.shape[1] / k.shape[1];
        if (group > 1)
        {
            k = k.repeat_interleave(group, 1);
            v = v.repeat_interleave(group, 1);
        }
        if (scale is { } s)
        {
            q = q * (s * Math.Sqrt(q.shape[3]));
        }
        return nn.functional.scaled_dot_product_attention(q.to(ScalarType.Float32), k.to(ScalarType.Float32),
            v.to(ScalarType.Float32), mask, 0.0, causal);
    }

    /// <summary>log-sum-exp [B, H, S_q] of the scaled scores of [B, H, S, D] tensors, over keys the mask allows.</summary>
    public static Tensor Lse(Tensor q, Tensor k, Tensor? mask = null, double? scale = null)
    {
        var group = q.shape[1] / k.shape[1];
        if (group > 1)
        {
            k = k.repeat_interleave(group, 1);
        }
        var s = scale ?? 1.0 / Math.Sqrt(q.shape[3]);
        var scores = torch.matmul(q.to(ScalarType.Float64), k.to(ScalarType.Float64).transpose(2, 3)) * s;
        if (mask is not null)
        {
            scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
        }
        return torch.logsumexp(scores, -1).to(ScalarType.Float32);
    }

    /// <summary>Bottom-right causal token mask [S_q, S_k]: query i sees key j iff j &lt;= i + S_k - S_q.</summary>
    public static Tensor CausalMask(long seqQ, long seqK) =>
        torch.ones(new[] { seqQ, seqK }, ScalarType.Bool).tril(seqK - seqQ);

    /// <summary>
    /// The token mask [B, H, S_q, S_k] of a block mask (listed blocks, optionally causal bottom-right),
    /// over keys in permuted order when <paramref name="keyPermutation"/> ([S_k], shared) is given: column j
    /// is permuted key j.
    /// </summary>
    public static Tensor TokenMask(BlockMask mask, int batch, int heads, int seqQ, int seqK, bool causal,
        int[]? keyPermutation = null)
    {
        var allowed = new bool[(long)batch * heads * seqQ * seqK];
        for (var b = 0; b < batch; b++)
        {
            for (var h = 0; h < heads; h++)
            {
                int mb = mask.Batch == 1 ? 0 : b, mh = mask.Heads == 1 ? 0 : h;
                for (var p = 0; p < seqQ; p++)
                {
                    for (var j = 0; j < seqK; j++)
                    {
                        var original = keyPermutation?[j] ?? j;
                        var listed = mask.IsListed(mb, mh, p / mask.BlockQ, j / mask.BlockK);
                        var visible = !causal || original <= p + (seqK - seqQ);
                        allowed[(((long)b * heads + h) * seqQ + p) * seqK + j] = listed && visible;
                    }
                }
            }
        }
        return torch.tensor(allowed, new long[] { batch, heads, seqQ, seqK });
    }

    /// <summary>The token mask [S, S] of a neighborhood configuration, written from the window rule per dimension.</summary>
    public static Tensor NeighborhoodMask(NeighborhoodConfig config)
    {
        var seq = config.SequenceLength;
        var rank = config.SpatialRank;
        var grid = config.Grid.ToArray();
        var dilation = config.Dilation.ToArray();
        var allowed = new bool[(long)seq * seq];
        var qc = new int[rank];
        var kc = new int[rank];
        for (var p = 0; p < seq; p++)
        {
            Coordinates(p, grid, qc);
            for (var t = 0; t < seq; t++)
            {
                Coordinates(t, grid, kc);
                var ok = true;
                for (var a = 0; a < rank && ok; a++)
                {
                    int d = dilation[a], g = qc[a] % d;
                    if (kc[a] % d != g)
                    {
                        ok = false;
                        break;
                    }
                    var (start, end) = config.Window(a, qc[a] / d, g);
                    var u = kc[a] / d;
                    ok = u >= start && u < end;
                }
                allowed[(long)p * seq + t] = ok;
            }
        }
        return torch.tensor(allowed, new long[] { seq, seq });
    }

    private static void Coordinates(int token, int[] grid, int[] coords)
    {
        for (var a = grid.Length - 1; a >= 0; a--)
        {
            coords[a] = token % grid[a];
            token /= grid[a];
        }
    }

    /// <summary>Largest absolute difference, as a double.</summary>
    public static double MaxError(Tensor actual, Tensor expected) =>
        (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>();
}
