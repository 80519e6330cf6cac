namespace SparseAttn.Tests.Oracle;

/// <summary>A PBS plan: key permutation [B, H, S] and the block mask [B, H, nQ, nK] over permuted key blocks.</summary>
public sealed class PbsReferencePlan
{
    public required int[,,] KeyPermutation { get; init; }
    public required bool[,,,] Mask { get; init; }
    /// <summary>[B, H]: true where a near tie (importance, block score or the tau cut) makes the plan
    /// depend on rounding, so an fp32 planner may legitimately differ.</summary>
    public required bool[,] NearTie { get; init; }
}

/// <summary>The PBS planner of docs/semantics.md, in double precision.</summary>
public static class ReferencePbs
{
    public const double TieMargin = 3e-6;

    public static PbsReferencePlan Plan(double[] q, double[] k, AttentionShape s, int block, int segment,
        double tau, double scale, bool permuteKeys = true)
    {
        if (s.SeqQ != s.SeqK) throw new ArgumentException("PBS plans self-attention (Sq == Sk)");
        int n = s.SeqQ;
        int nBlocks = ReferenceBlockSparse.BlockCount(n, block);
        var perm = new int[s.Batch, s.HeadsQ, n];
        var mask = new bool[s.Batch, s.HeadsQ, nBlocks, nBlocks];
        var nearTie = new bool[s.Batch, s.HeadsQ];
        bool oneSegment = (n + segment - 1) / segment <= 1;

        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.HeadsQ; h++)
        {
            if (oneSegment)
            {
                for (int t = 0; t < n; t++) perm[b, h, t] = t;
                for (int i = 0; i < nBlocks; i++)
                for (int j = 0; j <= i; j++) mask[b, h, i, j] = true;
                continue;
            }
            int hk = s.KvHeadOf(h);
            int fullSegments = n / segment;
            int fullKeys = fullSegments * segment;

            // Importance: mean over the last `block` query rows of their softmax over all full-segment keys.
            var importance = new double[fullKeys];
            int firstRow = Math.Max(0, n - block);
            var row = new double[fullKeys];
            for (int r = firstRow; r < n; r++)
            {
                double max = double.NegativeInfinity;
                for (int t = 0; t < fullKeys; t++)
                {
                    row[t] = Dot(q, s.QIndex(b, r, h), k, s.KIndex(b, t, hk), s.HeadDim) * scale;
                    max = Math.Max(max, row[t]);
                }
                double sum = 0;
                for (int t = 0; t < fullKeys; t++) { row[t] = Math.Exp(row[t] - max); sum += row[t]; }
                for (int t = 0; t < fullKeys; t++) importance[t] += row[t] / sum / (n - firstRow);
            }

            for (int t = 0; t < n; t++) perm[b, h, t] = t;
            for (int sg = 0; sg < fullSegments && permuteKeys; sg++)
            {
                var keys = Enumerable.Range(sg * segment, segment)
                    .OrderByDescending(t => importance[t]).ThenBy(t => t).ToArray();
                for (int x = 0; x < segment; x++) perm[b, h, sg * segment + x] = keys[x];
                for (int x = 1; x < segment; x++)
                    if (Math.Abs(importance[keys[x - 1]] - importance[keys[x]]) <= TieMargin * importance[keys[x - 1]])
                        nearTie[b, h] = true;
            }

            var meanK = new double[nBlocks][];
            for (int j = 0; j < nBlocks; j++)
            {
                if ((j + 1) * block > fullKeys) continue;
                meanK[j] = new double[s.HeadDim];
                for (int x = j * block; x < (j + 1) * block; x++)
                {
                    int ko = s.KIndex(b, perm[b, h, x], hk);
                    for (int d = 0; d < s.HeadDim; d++) meanK[j][d] += k[ko + d] / block;
                }
            }
            int sinkBlock = 0;
            for (int x = 0; x < n; x++) if (perm[b, h, x] == 0) sinkBlock = x / block;

            for (int i = 0; i < nBlocks; i++)
            {
                int rows = Math.Min((i + 1) * block, n) - i * block;
                var meanQ = new double[s.HeadDim];
                for (int r = i * block; r < i * block + rows; r++)
                {
                    int qo = s.QIndex(b, r, h);
                    for (int d = 0; d < s.HeadDim; d++) meanQ[d] += q[qo + d] / rows;
                }
                int si = i * block / segment;
                var candidates = Enumerable.Range(0, nBlocks).Where(j => j * block / segment < si).ToArray();
                if (candidates.Length > 0)
                {
                    var score = candidates.Select(j => Dot(meanQ, 0, meanK[j], 0, s.HeadDim) * scale).ToArray();
                    double max = score.Max();
                    var p = score.Select(x => Math.Exp(x - max)).ToArray();
                    double total = p.Sum();
                    var order = Enumerable.Range(0, candidates.Length)
                        .OrderByDescending(c => p[c]).ThenBy(c => candidates[c]).ToArray();
                    double cumulative = 0;
                    for (int c = 0; c < order.Length; c++)
                    {
                        if (c > 0 && Math.Abs(p[order[c - 1]] - p[order[c]]) <= TieMargin * total) nearTie[b, h] = true;
                        if (tau < 1 && cumulative >= tau) break;
                        mask[b, h, i, candidates[order[c]]] = true;
                        cumulative += p[order[c]] / total;
                        if (tau < 1 && Math.Abs(cumulative - tau) <= TieMargin) nearTie[b, h] = true;
                    }
                }
                mask[b, h, i, sinkBlock] = true;
                // A full own segment is permuted, so any of its blocks may hold a key the query sees;
                // in the unpermuted tail only blocks up to the diagonal do.
                bool ownSegmentFull = permuteKeys && si < fullSegments;
                for (int j = 0; j < nBlocks; j++)
                    if (j * block / segment == si && (ownSegmentFull || j <= i)) mask[b, h, i, j] = true;
            }
        }
        return new PbsReferencePlan { KeyPermutation = perm, Mask = mask, NearTie = nearTie };
    }

    private static double Dot(double[] a, int ao, double[] b, int bo, int n)
    {
        double sum = 0;
        for (int d = 0; d < n; d++) sum += a[ao + d] * b[bo + d];
        return sum;
    }
}
