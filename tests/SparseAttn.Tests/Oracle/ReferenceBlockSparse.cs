namespace SparseAttn.Tests.Oracle;

/// <summary>
/// Block-sparse reference: a dense boolean block mask per (batch, query head) over permuted
/// query and key blocks, optional permutations (permuted position -> original position), and
/// the causal rule on original positions.
/// </summary>
public sealed class BlockSparseSpec
{
    public required int BlockQ { get; init; }
    public required int BlockK { get; init; }
    /// <summary>[B, H, nQ, nK]</summary>
    public required bool[,,,] Mask { get; init; }
    /// <summary>[B, H, Sk] or null for identity.</summary>
    public int[,,]? KeyPermutation { get; init; }
    /// <summary>[B, H, Sq] or null for identity.</summary>
    public int[,,]? QueryPermutation { get; init; }
    public bool Causal { get; init; }
    public CausalAlignment Alignment { get; init; }
}

public static class ReferenceBlockSparse
{
    public static int BlockCount(int length, int block) => (length + block - 1) / block;

    public static int[] Inverse(int[,,] perm, int b, int h, int n)
    {
        var inv = new int[n];
        for (int p = 0; p < n; p++) inv[perm[b, h, p]] = p;
        return inv;
    }

    public static PairMask Mask(BlockSparseSpec spec, AttentionShape s)
    {
        var invK = new int[s.Batch, s.HeadsQ][];
        var invQ = new int[s.Batch, s.HeadsQ][];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.HeadsQ; h++)
        {
            invK[b, h] = spec.KeyPermutation is null ? Enumerable.Range(0, s.SeqK).ToArray() : Inverse(spec.KeyPermutation, b, h, s.SeqK);
            invQ[b, h] = spec.QueryPermutation is null ? Enumerable.Range(0, s.SeqQ).ToArray() : Inverse(spec.QueryPermutation, b, h, s.SeqQ);
        }
        return (b, h, i, j) =>
        {
            if (spec.Causal && !ReferenceAttention.CausalAllows(i, j, s.SeqQ, s.SeqK, spec.Alignment)) return false;
            return spec.Mask[b, h, invQ[b, h][i] / spec.BlockQ, invK[b, h][j] / spec.BlockK];
        };
    }

    public static AttentionResult Attend(double[] q, double[] k, double[] v, AttentionShape s, BlockSparseSpec spec,
        double scale, Precision precision = Precision.Double) =>
        ReferenceAttention.Attend(q, k, v, s, scale, Mask(spec, s), precision);

    /// <summary>Allowed pairs with identity permutations (honours causal and ragged ends).</summary>
    public static long PairCount(bool[,] blockMask, int seqQ, int seqK, int blockQ, int blockK, bool causal)
    {
        long n = 0;
        for (int i = 0; i < seqQ; i++)
        for (int j = 0; j < seqK; j++)
            if (blockMask[i / blockQ, j / blockK] && (!causal || ReferenceAttention.CausalAllows(i, j, seqQ, seqK))) n++;
        return n;
    }
}
