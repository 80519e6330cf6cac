using System.Numerics.Tensors;
using SparseAttn.Tests.Oracle;
using SparseAttn.Tests.Support;

namespace SparseAttn.Tests.Cpu;

[TestFixture]
public class NeighborhoodTests
{
    public sealed record Spec(string Name, NeighborhoodDim[] Dims)
    {
        public override string ToString() => Name;

        public NeighborhoodConfig ToConfig() => Dims.Length switch
        {
            1 => NeighborhoodConfig.Create1D(Dims[0].Length, Dims[0].Kernel, Dims[0].Dilation, Dims[0].Stride, Dims[0].Causal),
            2 => NeighborhoodConfig.Create2D((Dims[0].Length, Dims[1].Length), (Dims[0].Kernel, Dims[1].Kernel),
                (Dims[0].Dilation, Dims[1].Dilation), (Dims[0].Stride, Dims[1].Stride), (Dims[0].Causal, Dims[1].Causal)),
            _ => NeighborhoodConfig.Create3D((Dims[0].Length, Dims[1].Length, Dims[2].Length),
                (Dims[0].Kernel, Dims[1].Kernel, Dims[2].Kernel), (Dims[0].Dilation, Dims[1].Dilation, Dims[2].Dilation),
                (Dims[0].Stride, Dims[1].Stride, Dims[2].Stride), (Dims[0].Causal, Dims[1].Causal, Dims[2].Causal)),
        };
    }

    private static NeighborhoodDim D(int l, int k, int d = 1, int s = 1, bool c = false) => new(l, k, d, s, c);

    public static readonly Spec[] Specs =
    {
        new("1d blocked L13 k4 s4", new[] { D(13, 4, s: 4) }),
        new("1d causal L10 k4 s2", new[] { D(10, 4, s: 2, c: true) }),
        new("1d sliding odd L37 k7 d3 s2", new[] { D(37, 7, 3, 2) }),
        new("1d causal blocked L50 k8 d2 s8", new[] { D(50, 8, 2, 8, true) }),
        new("1d full kernel is dense L40 k40", new[] { D(40, 40) }),
        new("1d even kernel d5 L29 k5", new[] { D(29, 5, 5) }),
        new("1d causal even kernel L31 k6 s3", new[] { D(31, 6, 1, 3, true) }),
        new("1d single token", new[] { D(1, 1) }),
        new("2d mixed 7x9", new[] { D(7, 3, 1, 2), D(9, 4, 2, 3, true) }),
        new("2d 10x6 causal rows", new[] { D(10, 5, 2, 5, true), D(6, 6, 1, 1) }),
        new("2d blocked 8x8", new[] { D(8, 4, s: 4), D(8, 4, s: 4) }),
        new("2d odd 11x5 k(6,3)", new[] { D(11, 6, 1, 1), D(5, 3, 1, 2, true) }),
        new("3d 4x5x6", new[] { D(4, 3, 1, 1, true), D(5, 2, 2, 2), D(6, 5, 1, 3) }),
        new("3d 3x7x5", new[] { D(3, 3, 1, 3), D(7, 3, 2, 1, true), D(5, 3, 1, 2, true) }),
    };

    [Test]
    public void WindowRuleMatchesTheOracleEverywhere()
    {
        for (int length = 1; length <= 14; length++)
        for (int kernel = 1; kernel <= length; kernel++)
        for (int stride = 1; stride <= kernel; stride++)
        for (int u = 0; u < length; u++)
        foreach (bool causal in new[] { false, true })
        {
            var expected = ReferenceNeighborhood.Window(u, length, kernel, stride, causal);
            var actual = NeighborhoodConfig.WindowRule(u, length, kernel, stride, causal);
            if (actual != expected)
                Assert.Fail($"u={u} L={length} k={kernel} s={stride} causal={causal}: library {actual}, oracle {expected}");
        }
    }

    [Test]
    public void WorkedExamplesOfTheBrief()
    {
        Assert.That(NeighborhoodConfig.WindowRule(12, 13, 4, 4, false), Is.EqualTo((9, 13)));
        Assert.That(NeighborhoodConfig.WindowRule(5, 13, 4, 4, false), Is.EqualTo((4, 8)));
        Assert.That(NeighborhoodConfig.WindowRule(4, 10, 4, 2, true), Is.EqualTo((2, 5)));
        Assert.That(NeighborhoodConfig.WindowRule(5, 10, 4, 2, true), Is.EqualTo((2, 6)));
    }

    [TestCaseSource(nameof(Specs))]
    public void PairCountMatchesTheOracle(Spec spec)
    {
        Assert.That(spec.ToConfig().PairCount, Is.EqualTo(ReferenceNeighborhood.PairCount(spec.Dims)), spec.Name);
    }

    private static IEnumerable<TestCaseData> AttentionCases()
    {
        int n = 0;
        foreach (var spec in Specs)
        {
            var dt = DataTypes.All[n % 3];
            var layout = n % 4 == 3 ? Layout.HeadsFirstPadded : Layout.Contiguous;
            (int b, int hq, int hkv, int d) = (n % 3) switch { 0 => (2, 2, 1, 16), 1 => (1, 4, 2, 24), _ => (1, 3, 3, 8) };
            yield return new TestCaseData(spec, dt, b, hq, hkv, d, layout);
            n++;
        }
        // Every spec in fp32 as well, so each configuration is checked at tight tolerance.
        foreach (var spec in Specs) yield return new TestCaseData(spec, DataType.Float32, 1, 2, 2, 8, Layout.Contiguous);
    }

    [TestCaseSource(nameof(AttentionCases))]
    public void MatchesOracle(Spec spec, DataType dt, int b, int hq, int hkv, int d, Layout layout)
    {
        switch (dt)
        {
            case DataType.Float32: Run<float>(spec, b, hq, hkv, d, layout); break;
            case DataType.Float16: Run<Half>(spec, b, hq, hkv, d, layout); break;
            default: Run<BFloat16>(spec, b, hq, hkv, d, layout); break;
        }
    }

    private static void Run<T>(Spec spec, int b, int hq, int hkv, int d, Layout layout) where T : unmanaged
    {
        int s = ReferenceNeighborhood.TokenCount(spec.Dims);
        var shape = new AttentionShape(b, s, s, hq, hkv, d);
        int seed = TestRandom.SeedFor($"gna {spec.Name} {typeof(T).Name} {hq}");
        var c = AttentionCase<T>.Create(shape, seed, layout, extra: spec.Name + " " + string.Join(" ", spec.Dims));
        Attention.Neighborhood<T>(c.QTensor.ReadOnly, c.KTensor.ReadOnly, c.VTensor.ReadOnly, c.Output.Span, c.Lse.Span,
            spec.ToConfig());
        var pairs = ReferenceNeighborhood.PairMatrix(spec.Dims);
        c.CheckAgainstOracle((_, _, i, j) => pairs[i, j], c.ResolvedScale(0), checkLse: true);
    }

    [Test]
    public void AdditionalKeysAreMergedWithTheWindows()
    {
        // A 2-D window plus 9 global tokens: the oracle attends over both key sets at once.
        var spec = new Spec("2d 6x7 k(3,3) d(1,2)", new[] { D(6, 3), D(7, 3, 2) });
        const int b = 2, hq = 4, hkv = 2, d = 16, extra = 9;
        int s = ReferenceNeighborhood.TokenCount(spec.Dims);
        var rng = new Random(TestRandom.SeedFor("gna additional keys"));
        float[] Fill(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] q = Fill(b * s * hq * d), k = Fill(b * s * hkv * d), v = Fill(b * s * hkv * d);
        float[] ek = Fill(b * extra * hkv * d), ev = Fill(b * extra * hkv * d);
        var output = new float[b * s * hq * d];
        Attention.NeighborhoodWithExtraKeys<float>(new ReadOnlyTensorSpan<float>(q, [b, s, hq, d], default),
            new ReadOnlyTensorSpan<float>(k, [b, s, hkv, d], default), new ReadOnlyTensorSpan<float>(v, [b, s, hkv, d], default),
            new ReadOnlyTensorSpan<float>(ek, [b, extra, hkv, d], default), new ReadOnlyTensorSpan<float>(ev, [b, extra, hkv, d], default),
            new TensorSpan<float>(output, [b, s, hq, d], default), spec.ToConfig());

        // Keys of one sequence: its window keys, then the additional ones.
        var shape = new AttentionShape(b, s, s + extra, hq, hkv, d);
        var kAll = new double[shape.KeyCount];
        var vAll = new double[shape.KeyCount];
        for (int bi = 0; bi < b; bi++)
        for (int j = 0; j < s + extra; j++)
        for (int h = 0; h < hkv; h++)
        for (int x = 0; x < d; x++)
        {
            int src = j < s ? ((bi * s + j) * hkv + h) * d + x : ((bi * extra + j - s) * hkv + h) * d + x;
            kAll[shape.KIndex(bi, j, h) + x] = j < s ? k[src] : ek[src];
            vAll[shape.KIndex(bi, j, h) + x] = j < s ? v[src] : ev[src];
        }
        var pairs = ReferenceNeighborhood.PairMatrix(spec.Dims);
        var expected = ReferenceAttention.Attend(q.Select(x => (double)x).ToArray(), kAll, vAll, shape,
            ReferenceAttention.DefaultScale(d), (_, _, i, j) => j >= s || pairs[i, j]);
        for (int n = 0; n < output.Length; n++)
            Assert.That(output[n], Is.EqualTo(expected.Output[n]).Within(1e-5), $"element {n}");
    }

    [Test]
    public void AdditionalKeysWithAnotherHeadDimAreRefused()
    {
        var config = NeighborhoodConfig.Create1D(8, 3);
        var q = new float[8 * 2 * 4];
        var ek = new float[3 * 2 * 2];
        var output = new float[q.Length];
        Assert.Throws<ArgumentException>(() => Attention.NeighborhoodWithExtraKeys<float>(
            new ReadOnlyTensorSpan<float>(q, [1, 8, 2, 4], default), new ReadOnlyTensorSpan<float>(q, [1, 8, 2, 4], default),
            new ReadOnlyTensorSpan<float>(q, [1, 8, 2, 4], default), new ReadOnlyTensorSpan<float>(ek, [1, 3, 2, 2], default),
            new ReadOnlyTensorSpan<float>(ek, [1, 3, 2, 2], default), new TensorSpan<float>(output, [1, 8, 2, 4], default), config));
    }

    [Test]
    public void LargerTwoDimensionalGrid()
    {
        var spec = new Spec("2d 17x23 k(7,5) d(2,1) s(3,5)", new[] { D(17, 7, 2, 3), D(23, 5, 1, 5, true) });
        Run<Half>(spec, 1, 2, 1, 32, Layout.Contiguous);
    }

    [TestCaseSource(nameof(Specs))]
    public void BlockMaskFromNeighborhoodCoversExactlyTheTouchedBlocks(Spec spec)
    {
        const int block = 64;
        var dims = spec.Dims;
        var pairs = ReferenceNeighborhood.PairMatrix(dims);
        int s = ReferenceNeighborhood.TokenCount(dims);
        int n = (s + block - 1) / block;
        var expected = new bool[n, n];
        for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++)
            if (pairs[i, j]) expected[i / block, j / block] = true;
        var mask = BlockMask.FromNeighborhood(spec.ToConfig(), block);
        Assert.That(mask.QueryBlocks, Is.EqualTo(n));
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            Assert.That(mask.IsListed(0, 0, i, j), Is.EqualTo(expected[i, j]), $"{spec.Name}: block ({i}, {j})");
    }

    [Test]
    public void BlockMaskFromLargeNeighborhoodIsTight()
    {
        var dims = new[] { D(20, 5, 2, 2), D(30, 7, 1, 7, true) };
        var spec = new Spec("2d 20x30", dims);
        const int block = 64;
        var pairs = ReferenceNeighborhood.PairMatrix(dims);
        int s = 600, n = (s + block - 1) / block;
        var mask = BlockMask.FromNeighborhood(spec.ToConfig(), block);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            bool any = false;
            for (int p = i * block; p < Math.Min(s, (i + 1) * block) && !any; p++)
            for (int t = j * block; t < Math.Min(s, (j + 1) * block) && !any; t++)
                any = pairs[p, t];
            Assert.That(mask.IsListed(0, 0, i, j), Is.EqualTo(any), $"block ({i}, {j})");
        }
    }
}
