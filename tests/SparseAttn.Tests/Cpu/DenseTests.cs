using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Cpu;

[TestFixture]
public class DenseTests
{
    // (B, Sq, Sk, Hq, Hkv, D): ragged sizes, GQA/MQA, Sq != Sk both ways, D from 1 to 512.
    private static readonly AttentionShape[] Shapes =
    {
        new(1, 1, 1, 1, 1, 1),
        new(2, 7, 13, 4, 2, 16),
        new(1, 33, 17, 3, 3, 40),
        new(2, 64, 64, 2, 1, 64),
        new(1, 5, 70, 8, 1, 32),
        new(1, 70, 5, 2, 2, 8),
        new(1, 129, 131, 1, 1, 128),
        new(1, 3, 9, 2, 1, 512),
    };

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var dt in DataTypes.All)
        foreach (var s in Shapes)
        foreach (bool causal in new[] { false, true })
        {
            var layout = (s.SeqQ + (causal ? 1 : 0)) % 2 == 0 ? Layout.HeadsFirstPadded : Layout.Contiguous;
            yield return new TestCaseData(dt, s.Batch, s.SeqQ, s.SeqK, s.HeadsQ, s.HeadsKv, s.HeadDim, causal, layout);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesOracle(DataType dt, int b, int sq, int sk, int hq, int hkv, int d, bool causal, Layout layout)
    {
        var shape = new AttentionShape(b, sq, sk, hq, hkv, d);
        int seed = TestRandom.SeedFor($"dense {dt} {shape} {causal} {layout}");
        float scale = (sq * 7 + sk) % 3 == 0 ? 0f : 0.37f;
        switch (dt)
        {
            case DataType.Float32: Run<float>(shape, causal, layout, scale, seed); break;
            case DataType.Float16: Run<Half>(shape, causal, layout, scale, seed); break;
            default: Run<BFloat16>(shape, causal, layout, scale, seed); break;
        }
    }

    private static void Run<T>(AttentionShape shape, bool causal, Layout layout, float scale, int seed) where T : unmanaged
    {
        var c = AttentionCase<T>.Create(shape, seed, layout, extra: $"causal={causal} scale={scale}");
        Attention.Dense<T>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span,
            new AttentionOptions { Causal = causal, Scale = scale == 0 ? null : scale });
        PairMask mask = causal ? (_, _, i, j) => ReferenceAttention.CausalAllows(i, j, shape.SeqQ, shape.SeqK) : (_, _, _, _) => true;
        c.CheckAgainstOracle(mask, c.ResolvedScale(scale), checkLse: true);
    }

    [TestCase(DataType.Float32, 2, 7, 13, Layout.Contiguous)]
    [TestCase(DataType.Float32, 1, 70, 5, Layout.HeadsFirstPadded)]
    [TestCase(DataType.BFloat16, 1, 129, 131, Layout.Contiguous)]
    [TestCase(DataType.Float16, 1, 33, 17, Layout.HeadsFirstPadded)]
    [TestCase(DataType.Float32, 1, 40, 40, Layout.Contiguous)]
    public void TopLeftCausalMatchesOracle(DataType dt, int b, int sq, int sk, Layout layout)
    {
        var shape = new AttentionShape(b, sq, sk, 4, 2, 24);
        switch (dt)
        {
            case DataType.Float32: RunTopLeft<float>(shape, layout); break;
            case DataType.Float16: RunTopLeft<Half>(shape, layout); break;
            default: RunTopLeft<BFloat16>(shape, layout); break;
        }
    }

    private static void RunTopLeft<T>(AttentionShape shape, Layout layout) where T : unmanaged
    {
        int seed = TestRandom.SeedFor($"top-left {typeof(T).Name} {shape} {layout}");
        var c = AttentionCase<T>.Create(shape, seed, layout, extra: "causal top-left");
        Attention.Dense<T>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span,
            new AttentionOptions { Causal = true, CausalAlignment = CausalAlignment.TopLeft });
        c.CheckAgainstOracle((_, _, i, j) => j <= i, c.ResolvedScale(null), checkLse: true);
    }

    [Test]
    public void WithoutLseWritesTheSameOutput()
    {
        var shape = new AttentionShape(2, 19, 23, 4, 2, 24);
        int seed = TestRandom.SeedFor(nameof(WithoutLseWritesTheSameOutput));
        var c = AttentionCase<float>.Create(shape, seed);
        Attention.Dense<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span,
            new AttentionOptions { Causal = true });
        c.CheckAgainstOracle((_, _, i, j) => ReferenceAttention.CausalAllows(i, j, 19, 23), c.ResolvedScale(0), checkLse: false);
    }

    [Test]
    public void CausalRowsWithoutKeysGiveZeroAndMinusInfinity()
    {
        var shape = new AttentionShape(1, 6, 2, 1, 1, 4);
        var c = AttentionCase<float>.Create(shape, TestRandom.SeedFor(nameof(CausalRowsWithoutKeysGiveZeroAndMinusInfinity)));
        Attention.Dense<float>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span,
            new AttentionOptions { Causal = true });
        var o = c.Output.ToLogical();
        var lse = c.Lse.ToLogical();
        for (int i = 0; i < 4; i++)
        {
            Assert.That(lse[i], Is.EqualTo(double.NegativeInfinity), $"row {i}; {c.Context}");
            for (int d = 0; d < 4; d++) Assert.That(o[i * 4 + d], Is.EqualTo(0.0), $"row {i}; {c.Context}");
        }
        Assert.That(double.IsFinite(lse[4]) && double.IsFinite(lse[5]), Is.True, c.Context);
    }

    [Test]
    public void ThreadCountDoesNotChangeTheResult()
    {
        var shape = new AttentionShape(2, 45, 77, 4, 2, 32);
        int seed = TestRandom.SeedFor(nameof(ThreadCountDoesNotChangeTheResult));
        var one = AttentionCase<float>.Create(shape, seed);
        var many = AttentionCase<float>.Create(shape, seed);
        Attention.Dense<float>(one.QTensor.ReadOnly, one.KTensor.ReadOnly, one.VTensor.ReadOnly, one.Output.Span,
            new AttentionOptions { Causal = true, NumThreads = 1 });
        Attention.Dense<float>(many.QTensor.ReadOnly, many.KTensor.ReadOnly, many.VTensor.ReadOnly, many.Output.Span,
            new AttentionOptions { Causal = true, NumThreads = 3 });
        Assert.That(many.Output.ToLogical(), Is.EqualTo(one.Output.ToLogical()), one.Context);
    }

    [Test]
    public void DecodeSingleQueryWithLse()
    {
        // Sq = 1 makes the LSE's innermost dim length 1, which TensorSpan gives stride 0.
        var shape = new AttentionShape(2, 1, 37, 4, 1, 16);
        Run<Half>(shape, true, Layout.Contiguous, 0f, TestRandom.SeedFor(nameof(DecodeSingleQueryWithLse)));
    }

    [Test]
    public void LargeCausalPrefill()
    {
        var shape = new AttentionShape(1, 300, 300, 2, 1, 64);
        int seed = TestRandom.SeedFor(nameof(LargeCausalPrefill));
        Run<BFloat16>(shape, true, Layout.Contiguous, 0f, seed);
    }
}
