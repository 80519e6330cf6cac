namespace SparseAttn.Tests.Oracle;

/// <summary>Sizes of one attention call: q [B, Sq, Hq, D], k/v [B, Sk, Hkv, D], out like q, lse [B, Hq, Sq].</summary>
public readonly record struct AttentionShape(int Batch, int SeqQ, int SeqK, int HeadsQ, int HeadsKv, int HeadDim)
{
    public int QueryCount => Batch * SeqQ * HeadsQ * HeadDim;
    public int KeyCount => Batch * SeqK * HeadsKv * HeadDim;
    public int LseCount => Batch * HeadsQ * SeqQ;
    public int KvHeadOf(int h) => h / (HeadsQ / HeadsKv);
    public int QIndex(int b, int s, int h) => ((b * SeqQ + s) * HeadsQ + h) * HeadDim;
    public int KIndex(int b, int s, int h) => ((b * SeqK + s) * HeadsKv + h) * HeadDim;
    public int LseIndex(int b, int h, int s) => (b * HeadsQ + h) * SeqQ + s;
    public override string ToString() => $"B={Batch} Sq={SeqQ} Sk={SeqK} Hq={HeadsQ} Hkv={HeadsKv} D={HeadDim}";
}

/// <summary>Whether original query i of (batch b, query head h) may attend original key j.</summary>
public delegate bool PairMask(int b, int h, int i, int j);

public sealed record AttentionResult(double[] Output, double[] Lse);

/// <summary>
/// The naive reference: materializes each query's score row, softmax, weighted sum of values.
/// In a reduced precision every intermediate is rounded, giving the error of a naive computation
/// done in that precision (the tolerance yardstick).
/// </summary>
public static class ReferenceAttention
{
    public static double DefaultScale(int headDim) => 1.0 / Math.Sqrt(headDim);

    public static AttentionResult Attend(double[] q, double[] k, double[] v, AttentionShape s, double scale,
        PairMask allowed, Precision precision = Precision.Double)
    {
        if (s.HeadsQ % s.HeadsKv != 0) throw new ArgumentException("HeadsQ must be a multiple of HeadsKv");
        var output = new double[s.QueryCount];
        var lse = new double[s.LseCount];
        var scores = new double[s.SeqK];
        var keep = new bool[s.SeqK];
        var acc = new double[s.HeadDim];
        double R(double x) => Rounding.Round(x, precision);

        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.HeadsQ; h++)
        {
            int hk = s.KvHeadOf(h);
            for (int i = 0; i < s.SeqQ; i++)
            {
                int qo = s.QIndex(b, i, h);
                double max = double.NegativeInfinity;
                bool any = false;
                for (int j = 0; j < s.SeqK; j++)
                {
                    keep[j] = allowed(b, h, i, j);
                    if (!keep[j]) continue;
                    any = true;
                    int ko = s.KIndex(b, j, hk);
                    double dot = 0;
                    for (int d = 0; d < s.HeadDim; d++) dot = R(dot + R(q[qo + d] * k[ko + d]));
                    scores[j] = R(dot * scale);
                    if (scores[j] > max) max = scores[j];
                }
                if (!any)
                {
                    for (int d = 0; d < s.HeadDim; d++) output[qo + d] = 0;
                    lse[s.LseIndex(b, h, i)] = double.NegativeInfinity;
                    continue;
                }
                double sum = 0;
                Array.Clear(acc);
                for (int j = 0; j < s.SeqK; j++)
                {
                    if (!keep[j]) continue;
                    double p = R(Math.Exp(R(scores[j] - max)));
                    sum = R(sum + p);
                    int vo = s.KIndex(b, j, hk);
                    for (int d = 0; d < s.HeadDim; d++) acc[d] = R(acc[d] + R(p * v[vo + d]));
                }
                for (int d = 0; d < s.HeadDim; d++) output[qo + d] = R(acc[d] / sum);
                lse[s.LseIndex(b, h, i)] = R(max + R(Math.Log(sum)));
            }
        }
        return new AttentionResult(output, lse);
    }

    /// <summary>Bottom-right aligned causal rule: query i sees key j iff j &lt;= i + (Sk - Sq).</summary>
    public static bool CausalAllows(int i, int j, int seqQ, int seqK) => j <= i + (seqK - seqQ);

    /// <summary>The causal rule in either alignment: bottom-right j &lt;= i + S_k - S_q, top-left j &lt;= i.</summary>
    public static bool CausalAllows(int i, int j, int seqQ, int seqK, CausalAlignment alignment) =>
        alignment == CausalAlignment.TopLeft ? j <= i : CausalAllows(i, j, seqQ, seqK);

    public static AttentionResult Dense(double[] q, double[] k, double[] v, AttentionShape s, double scale,
        bool causal, Precision precision = Precision.Double)
    {
        PairMask mask = causal ? (_, _, i, j) => CausalAllows(i, j, s.SeqQ, s.SeqK) : (_, _, _, _) => true;
        return Attend(q, k, v, s, scale, mask, precision);
    }

    /// <summary>
    /// Packed variable-length batch: q [Tq, Hq, D], k/v [Tk, Hkv, D], lse [Hq, Tq]; each sequence
    /// is an independent dense call (causal bottom-right per sequence).
    /// </summary>
    public static AttentionResult DenseVarlen(double[] q, double[] k, double[] v, int[] cuSeqQ, int[] cuSeqK,
        int headsQ, int headsKv, int headDim, double scale, bool causal, Precision precision = Precision.Double)
    {
        int totalQ = cuSeqQ[^1];
        var output = new double[totalQ * headsQ * headDim];
        var lse = new double[headsQ * totalQ];
        for (int b = 0; b + 1 < cuSeqQ.Length; b++)
        {
            int q0 = cuSeqQ[b], sq = cuSeqQ[b + 1] - q0;
            int k0 = cuSeqK[b], sk = cuSeqK[b + 1] - k0;
            if (sq == 0) continue;
            var shape = new AttentionShape(1, sq, sk, headsQ, headsKv, headDim);
            double[] qs = q.AsSpan(q0 * headsQ * headDim, sq * headsQ * headDim).ToArray();
            double[] ks = k.AsSpan(k0 * headsKv * headDim, sk * headsKv * headDim).ToArray();
            double[] vs = v.AsSpan(k0 * headsKv * headDim, sk * headsKv * headDim).ToArray();
            var r = Dense(qs, ks, vs, shape, scale, causal, precision);
            r.Output.CopyTo(output, q0 * headsQ * headDim);
            for (int h = 0; h < headsQ; h++)
            for (int i = 0; i < sq; i++)
                lse[h * totalQ + q0 + i] = r.Lse[shape.LseIndex(0, h, i)];
        }
        return new AttentionResult(output, lse);
    }

    /// <summary>
    /// Merge of two partial results over disjoint key sets. o1/o2 [B, S, H, D] flattened with
    /// rowLength = D; lse [B, H, S] flattened, indexed through lseIndexOfRow.
    /// </summary>
    public static AttentionResult MergeLse(double[] o1, double[] lse1, double[] o2, double[] lse2,
        int batch, int seq, int heads, int headDim)
    {
        var output = new double[o1.Length];
        var lse = new double[lse1.Length];
        for (int b = 0; b < batch; b++)
        for (int s = 0; s < seq; s++)
        for (int h = 0; h < heads; h++)
        {
            int li = (b * heads + h) * seq + s;
            int oi = ((b * seq + s) * heads + h) * headDim;
            double a = lse1[li], c = lse2[li];
            double m = Math.Max(a, c);
            if (double.IsNegativeInfinity(m))
            {
                lse[li] = double.NegativeInfinity;
                for (int d = 0; d < headDim; d++) output[oi + d] = 0;
                continue;
            }
            double total = m + Math.Log(Math.Exp(a - m) + Math.Exp(c - m));
            double w1 = Math.Exp(a - total), w2 = Math.Exp(c - total);
            lse[li] = total;
            for (int d = 0; d < headDim; d++) output[oi + d] = o1[oi + d] * w1 + o2[oi + d] * w2;
        }
        return new AttentionResult(output, lse);
    }
}
