using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Cpu;

[TestFixture]
public class VarlenTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var dt in DataTypes.All)
        {
            yield return new TestCaseData(dt, new[] { 5, 0, 17, 1 }, new[] { 9, 3, 17, 40 }, 4, 2, 16, true, 0);
            yield return new TestCaseData(dt, new[] { 12, 7 }, new[] { 12, 0 }, 2, 2, 24, false, 3);
            yield return new TestCaseData(dt, new[] { 33 }, new[] { 20 }, 3, 1, 8, true, 1);
            yield return new TestCaseData(dt, new[] { 1, 1, 1 }, new[] { 64, 5, 130 }, 2, 1, 32, true, 0);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesOracle(DataType dt, int[] lengthsQ, int[] lengthsK, int hq, int hkv, int d, bool causal, int rowPadding)
    {
        switch (dt)
        {
            case DataType.Float32: Run<float>(lengthsQ, lengthsK, hq, hkv, d, causal, rowPadding); break;
            case DataType.Float16: Run<Half>(lengthsQ, lengthsK, hq, hkv, d, causal, rowPadding); break;
            default: Run<BFloat16>(lengthsQ, lengthsK, hq, hkv, d, causal, rowPadding); break;
        }
    }

    private static int[] Cumulative(int[] lengths)
    {
        var cu = new int[lengths.Length + 1];
        for (int i = 0; i < lengths.Length; i++) cu[i + 1] = cu[i] + lengths[i];
        return cu;
    }

    private static void Run<T>(int[] lengthsQ, int[] lengthsK, int hq, int hkv, int d, bool causal, int rowPadding)
        where T : unmanaged
    {
        int seed = TestRandom.SeedFor($"varlen {typeof(T).Name} {string.Join(",", lengthsQ)} {string.Join(",", lengthsK)} {causal}");
        string context = $"seed {seed} (base {TestRandom.BaseSeed}), {typeof(T).Name}, q lengths [{string.Join(",", lengthsQ)}], " +
                         $"k lengths [{string.Join(",", lengthsK)}], Hq={hq} Hkv={hkv} D={d} causal={causal} padding={rowPadding}";
        var rng = new Random(seed);
        var p = Elements.PrecisionOf<T>();
        int[] cuQ = Cumulative(lengthsQ), cuK = Cumulative(lengthsK);
        int tq = cuQ[^1], tk = cuK[^1];
        var q = Rounding.RoundAll(TestRandom.Uniform(rng, tq * hq * d, 1.5), p);
        var k = Rounding.RoundAll(TestRandom.Uniform(rng, tk * hkv * d, 1.5), p);
        var v = Rounding.RoundAll(TestRandom.Uniform(rng, tk * hkv * d), p);
        var qT = HostTensor<T>.FromLogical(q, new nint[] { tq, hq, d }, rowPadding: rowPadding);
        var kT = HostTensor<T>.FromLogical(k, new nint[] { tk, hkv, d }, rowPadding: rowPadding);
        var vT = HostTensor<T>.FromLogical(v, new nint[] { tk, hkv, d }, rowPadding: rowPadding);
        var oT = HostTensor<T>.Create(new nint[] { tq, hq, d }, rowPadding: rowPadding);
        var lseT = HostTensor<float>.Create(new nint[] { hq, tq });
        Attention.DenseVarlen<T>(qT.ReadOnly, kT.ReadOnly, vT.ReadOnly, oT.Span, lseT.Span, cuQ, cuK,
            lengthsQ.Max() + 1, lengthsK.Max(), new AttentionOptions { Causal = causal });
        oT.AssertWrittenExactlyInside("output", context);
        lseT.AssertWrittenExactlyInside("lse", context);
        double scale = ReferenceAttention.DefaultScale(d);
        var exact = ReferenceAttention.DenseVarlen(q, k, v, cuQ, cuK, hq, hkv, d, scale, causal);
        var emulated = ReferenceAttention.DenseVarlen(q, k, v, cuQ, cuK, hq, hkv, d, scale, causal, p);
        Tolerance.AssertWithin("output", oT.ToLogical(), exact.Output, emulated.Output, p, context);
        Tolerance.AssertWithin("lse", lseT.ToLogical(), exact.Lse, emulated.Lse, p, context);
    }
}

[TestFixture]
public class MergeLseTests
{
    [TestCase(DataType.Float32)]
    [TestCase(DataType.Float16)]
    [TestCase(DataType.BFloat16)]
    public void MergingTwoKeyRangesMatchesTheOracleMerge(DataType dt)
    {
        switch (dt)
        {
            case DataType.Float32: Run<float>(); break;
            case DataType.Float16: Run<Half>(); break;
            default: Run<BFloat16>(); break;
        }
    }

    private static (HostTensor<T> Output, HostTensor<float> Lse) Partial<T>(AttentionCase<T> c, int from, int to)
        where T : unmanaged
    {
        var s = c.Shape;
        var kPart = new double[s.Batch * (to - from) * s.HeadsKv * s.HeadDim];
        var vPart = new double[kPart.Length];
        int row = s.HeadsKv * s.HeadDim;
        for (int b = 0; b < s.Batch; b++)
        {
            Array.Copy(c.K, (b * s.SeqK + from) * row, kPart, b * (to - from) * row, (to - from) * row);
            Array.Copy(c.V, (b * s.SeqK + from) * row, vPart, b * (to - from) * row, (to - from) * row);
        }
        var kl = new nint[] { s.Batch, to - from, s.HeadsKv, s.HeadDim };
        var o = HostTensor<T>.Create(c.QLengths);
        var lse = HostTensor<float>.Create(new nint[] { s.Batch, s.HeadsQ, s.SeqQ });
        Attention.Dense<T>(c.QTensor.ReadOnly, HostTensor<T>.FromLogical(kPart, kl).ReadOnly,
            HostTensor<T>.FromLogical(vPart, kl).ReadOnly, o.Span, lse.Span);
        return (o, lse);
    }

    private static void Run<T>() where T : unmanaged
    {
        var shape = new AttentionShape(2, 9, 31, 4, 2, 16);
        int seed = TestRandom.SeedFor($"merge {typeof(T).Name}");
        var c = AttentionCase<T>.Create(shape, seed);
        var (o1, l1) = Partial(c, 0, 12);
        var (o2, l2) = Partial(c, 12, 31);
        var merged = HostTensor<T>.Create(c.QLengths, new[] { 0, 2, 1, 3 }, rowPadding: 2);
        var mergedLse = HostTensor<float>.Create(new nint[] { 2, 4, 9 });
        Attention.MergeLse<T>(o1.ReadOnly, l1.ReadOnly, o2.ReadOnly, l2.ReadOnly, merged.Span, mergedLse.Span);
        merged.AssertWrittenExactlyInside("output", c.Context);
        mergedLse.AssertWrittenExactlyInside("lse", c.Context);

        var p = Elements.PrecisionOf<T>();
        var exact = ReferenceAttention.MergeLse(o1.ToLogical(), l1.ToLogical(), o2.ToLogical(), l2.ToLogical(), 2, 9, 4, 16);
        Tolerance.AssertWithin("merged output", merged.ToLogical(), exact.Output, Rounding.RoundAll(exact.Output, p), p, c.Context);
        Tolerance.AssertClose("merged lse", mergedLse.ToLogical(), exact.Lse, 1e-5, c.Context);

        // The merge of the partials is the attention over all keys.
        var whole = ReferenceAttention.Dense(c.Q, c.K, c.V, shape, ReferenceAttention.DefaultScale(16), false);
        var emulated = ReferenceAttention.Dense(c.Q, c.K, c.V, shape, ReferenceAttention.DefaultScale(16), false, p);
        var loose = Tolerance.Bound(whole.Output, emulated.Output, p) * 2;
        Tolerance.AssertClose("merged vs whole", merged.ToLogical(), whole.Output, loose, c.Context);
        Tolerance.AssertClose("merged lse vs whole", mergedLse.ToLogical(), whole.Lse, 1e-4, c.Context);
    }

    [Test]
    public void EmptyPartIsTheIdentityAndBothEmptyGiveZero()
    {
        var o1 = HostTensor<float>.FromLogical(new double[] { 1, 2, 3, 4 }, new nint[] { 1, 2, 1, 2 });
        var o2 = HostTensor<float>.FromLogical(new double[] { 9, 9, 9, 9 }, new nint[] { 1, 2, 1, 2 });
        var l1 = HostTensor<float>.FromLogical(new[] { 0.25, double.NegativeInfinity }, new nint[] { 1, 1, 2 });
        var l2 = HostTensor<float>.FromLogical(new[] { double.NegativeInfinity, double.NegativeInfinity }, new nint[] { 1, 1, 2 });
        var o = HostTensor<float>.Create(new nint[] { 1, 2, 1, 2 });
        var l = HostTensor<float>.Create(new nint[] { 1, 1, 2 });
        Attention.MergeLse<float>(o1.ReadOnly, l1.ReadOnly, o2.ReadOnly, l2.ReadOnly, o.Span, l.Span);
        Assert.That(o.ToLogical(), Is.EqualTo(new double[] { 1, 2, 0, 0 }));
        Assert.That(l.ToLogical(), Is.EqualTo(new[] { 0.25, double.NegativeInfinity }));
    }

    [Test]
    public void OutputMayAliasTheFirstInput()
    {
        int seed = TestRandom.SeedFor(nameof(OutputMayAliasTheFirstInput));
        var rng = new Random(seed);
        var lengths = new nint[] { 2, 3, 2, 8 };
        var a = TestRandom.Uniform(rng, 96);
        var bValues = TestRandom.Uniform(rng, 96);
        var la = TestRandom.Uniform(rng, 12, 3);
        var lb = TestRandom.Uniform(rng, 12, 3);
        var o1 = HostTensor<float>.FromLogical(a, lengths);
        var l1 = HostTensor<float>.FromLogical(la, new nint[] { 2, 2, 3 });
        var o2 = HostTensor<float>.FromLogical(bValues, lengths);
        var l2 = HostTensor<float>.FromLogical(lb, new nint[] { 2, 2, 3 });
        var expected = ReferenceAttention.MergeLse(o1.ToLogical(), l1.ToLogical(), o2.ToLogical(), l2.ToLogical(), 2, 3, 2, 8);
        Attention.MergeLse<float>(o1.ReadOnly, l1.ReadOnly, o2.ReadOnly, l2.ReadOnly, o1.Span, l1.Span);
        Tolerance.AssertClose("aliased output", o1.ToLogical(), expected.Output, 1e-6, $"seed {seed}");
        Tolerance.AssertClose("aliased lse", l1.ToLogical(), expected.Lse, 1e-6, $"seed {seed}");
    }
}
