using SparseAttn.Tests.Oracle;

namespace SparseAttn.Tests.Support;

/// <summary>
/// Random inputs of one attention call, rounded to T (the oracle sees exactly what the library
/// sees), host tensors in a chosen layout, and poisoned outputs.
/// </summary>
public sealed class AttentionCase<T> where T : unmanaged
{
    public required AttentionShape Shape { get; init; }
    public required double[] Q { get; init; }
    public required double[] K { get; init; }
    public required double[] V { get; init; }
    public required HostTensor<T> QTensor { get; init; }
    public required HostTensor<T> KTensor { get; init; }
    public required HostTensor<T> VTensor { get; init; }
    public required HostTensor<T> Output { get; init; }
    public required HostTensor<float> Lse { get; init; }
    public required string Context { get; init; }

    public nint[] QLengths => new nint[] { Shape.Batch, Shape.SeqQ, Shape.HeadsQ, Shape.HeadDim };
    public nint[] KLengths => new nint[] { Shape.Batch, Shape.SeqK, Shape.HeadsKv, Shape.HeadDim };

    public static AttentionCase<T> Create(AttentionShape s, int seed, Layout layout = Layout.Contiguous,
        double amplitude = 1.5, string extra = "")
    {
        var rng = new Random(seed);
        var p = Elements.PrecisionOf<T>();
        var q = Rounding.RoundAll(TestRandom.Uniform(rng, s.QueryCount, amplitude), p);
        var k = Rounding.RoundAll(TestRandom.Uniform(rng, s.KeyCount, amplitude), p);
        var v = Rounding.RoundAll(TestRandom.Uniform(rng, s.KeyCount), p);
        var ql = new nint[] { s.Batch, s.SeqQ, s.HeadsQ, s.HeadDim };
        var kl = new nint[] { s.Batch, s.SeqK, s.HeadsKv, s.HeadDim };
        return new AttentionCase<T>
        {
            Shape = s,
            Q = q,
            K = k,
            V = v,
            QTensor = Layouts.Attention<T>(q, ql, layout),
            KTensor = Layouts.Attention<T>(k, kl, layout),
            VTensor = Layouts.Attention<T>(v, kl, layout),
            Output = Layouts.AttentionOutput<T>(ql, layout),
            Lse = Layouts.Lse(new nint[] { s.Batch, s.HeadsQ, s.SeqQ }, layout),
            Context = $"seed {seed} (base {TestRandom.BaseSeed}), {typeof(T).Name}, {s}, {layout}{(extra.Length > 0 ? ", " + extra : "")}",
        };
    }

    public double ResolvedScale(float scale) => scale == 0 ? ReferenceAttention.DefaultScale(Shape.HeadDim) : scale;

    public double ResolvedScale(float? scale) => scale ?? ReferenceAttention.DefaultScale(Shape.HeadDim);

    /// <summary>Checks output (and LSE when requested) against the oracle under the given mask.</summary>
    public (AttentionResult Exact, AttentionResult Emulated) CheckAgainstOracle(PairMask mask, double scale, bool checkLse)
    {
        Output.AssertWrittenExactlyInside("output", Context);
        var p = Elements.PrecisionOf<T>();
        var exact = ReferenceAttention.Attend(Q, K, V, Shape, scale, mask);
        var emulated = ReferenceAttention.Attend(Q, K, V, Shape, scale, mask, p);
        Tolerance.AssertWithin("output", Output.ToLogical(), exact.Output, emulated.Output, p, Context);
        if (checkLse)
        {
            Lse.AssertWrittenExactlyInside("lse", Context);
            Tolerance.AssertWithin("lse", Lse.ToLogical(), exact.Lse, emulated.Lse, p, Context);
        }
        return (exact, emulated);
    }
}

public static class DataTypes
{
    public static readonly DataType[] All = { DataType.Float32, DataType.Float16, DataType.BFloat16 };
}
